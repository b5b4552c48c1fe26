"""Read-side select() builders for evaluation lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Item, Org, Staff

Window = aliased(Org)


def evaluations(
    *,
    actor: Principal,
    case_no: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    level: int | None = None,
    levels: list[int] | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select:
    """Ratings inside the caller's subtree, newest first, with the codes an answer names."""
    stmt = (
        select(Evaluation, Case.case_no, Org.code, Item.code, Window.code, Staff.staff_no)
        .join(Org, Org.id == Evaluation.org_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .outerjoin(Staff, Staff.id == Evaluation.staff_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Evaluation.id.desc())
    )
    if case_no:
        stmt = stmt.where(Case.case_no == case_no)
    if org_code:
        # The organisation and everything below it. A plain prefix comparison, not LIKE:
        # codes may contain "_", which LIKE would read as a wildcard.
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        stmt = stmt.where(func.substr(Org.path, 1, func.length(sub)) == sub)
    if item_code:
        stmt = stmt.where(Item.code == item_code)
    if level is not None:
        stmt = stmt.where(Evaluation.level == level)
    if levels:
        stmt = stmt.where(Evaluation.level.in_(levels))
    if channel:
        stmt = stmt.where(Evaluation.channel == channel)
    if since:
        stmt = stmt.where(Evaluation.received_at >= since)
    if until:
        stmt = stmt.where(Evaluation.received_at < until)
    return stmt


def row_dict(ev: Evaluation) -> dict[str, Any]:
    """The column values of a loaded evaluation."""
    return {c.key: getattr(ev, c.key) for c in Evaluation.__table__.columns}
