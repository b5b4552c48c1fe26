"""Read side of evaluations: select() builders for lists and the console's page of ratings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.security import mask_text
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.service import IntakeRules, Target, read_from_row
from haochaping.evaluations.standing import EvaluationStanding
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
    """Ratings inside the caller's subtree, the latest rating time first, with the codes an
    answer names."""
    stmt = (
        select(Evaluation, Case.case_no, Org.code, Item.code, Window.code, Staff.staff_no)
        .join(Org, Org.id == Evaluation.org_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .outerjoin(Staff, Staff.id == Evaluation.staff_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Evaluation.evaluated_at.desc(), Evaluation.id.desc())
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


def read_row(row: Any, rules: IntakeRules) -> dict[str, Any]:
    """A row of `evaluations()` (the rating and its codes) as the API answers it."""
    ev, case_no, org_code, item_code, window_code, staff_no = row[:6]
    target = Target(
        case_no=case_no,
        org_code=org_code,
        item_code=item_code,
        window_code=window_code,
        staff_no=staff_no,
        region_code=ev.region_code,
    )
    return read_from_row(row_dict(ev), target, rules)


async def names(db: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    """id -> name of the given organisations or items."""
    if not ids:
        return {}
    return dict((await db.execute(select(model.id, model.name).where(model.id.in_(ids)))).all())


# A scope of at most this many organisations pages through each one's newest ratings
# (PostgreSQL): 20 rows of a hall at 10M ratings in milliseconds instead of a walk through
# everyone's newest ratings (docs/benchmarks.md, "The ratings table at scale").
NARROW_SCOPE = 64


async def narrow_page_ids(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None,
    level: int | None,
    channel: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> Select | None:
    """On PostgreSQL, for a scope of few organisations: the ids of the page's ratings, taken
    per organisation from ix_evaluation_org_evaluated_id (a LATERAL top-N each, merged); None
    where the plain query is the right one (a wide scope, SQLite)."""
    if db.bind.dialect.name != "postgresql":  # type: ignore[union-attr]
        return None
    scope = select(Org.id).where(Org.path.startswith(actor.org_path, autoescape=True))
    if org_code:
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        scope = scope.where(func.substr(Org.path, 1, func.length(sub)) == sub)
    ids = (await db.execute(scope.limit(NARROW_SCOPE + 1))).scalars().all()
    if len(ids) > NARROW_SCOPE:
        return None
    orgs = select(Org.id).where(Org.id.in_(ids)).subquery("scope")
    inner = select(Evaluation.id, Evaluation.evaluated_at).where(Evaluation.org_id == orgs.c.id)
    if level is not None:
        inner = inner.where(Evaluation.level == level)
    if channel:
        inner = inner.where(Evaluation.channel == channel)
    if since:
        inner = inner.where(Evaluation.received_at >= since)
    if until:
        inner = inner.where(Evaluation.received_at < until)
    last = pagination.decode_time_cursor(cursor)
    if last is not None:
        at, last_id = last
        inner = inner.where(
            or_(
                Evaluation.evaluated_at < at,
                and_(Evaluation.evaluated_at == at, Evaluation.id < last_id),
            )
        )
    top = (
        inner.order_by(Evaluation.evaluated_at.desc(), Evaluation.id.desc())
        .limit(limit + 1)
        .lateral("top")
    )
    return (
        select(top.c.id)
        .select_from(orgs.join(top, true()))
        .order_by(top.c.evaluated_at.desc(), top.c.id.desc())
        .limit(limit + 1)
    )


async def evaluation_page(
    *,
    db: AsyncSession,
    actor: Principal,
    rules: IntakeRules,
    case_no: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    level: int | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], str | None]:
    """Ratings in the actor's subtree, the latest rating time (`evaluated_at`) first, the id
    breaking ties, with the names people read and each rating's standing (None: no row, it
    counts); personal data masked, free text too."""
    stmt = evaluations(
        actor=actor,
        case_no=case_no,
        org_code=org_code,
        item_code=item_code,
        level=level,
        channel=channel,
        since=since,
        until=until,
    )
    if not case_no and not item_code:
        narrow = await narrow_page_ids(
            db=db,
            actor=actor,
            org_code=org_code,
            level=level,
            channel=channel,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
        if narrow is not None:
            stmt = stmt.where(Evaluation.id.in_(narrow))
    # A rating's standing when it is not plain valid (no row: it counts).
    stmt = stmt.add_columns(EvaluationStanding.standing).outerjoin(
        EvaluationStanding, EvaluationStanding.evaluation_id == Evaluation.id
    )
    rows, nxt = await pagination.page(
        db,
        stmt,
        key=Evaluation.id,
        time_key=Evaluation.evaluated_at,
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    orgs = await names(
        db, Org, {r[0].org_id for r in rows} | {r[0].window_id for r in rows if r[0].window_id}
    )
    items_by_id = await names(db, Item, {r[0].item_id for r in rows if r[0].item_id})
    out = []
    for row in rows:
        ev, standing = row[0], row[6]
        item = read_row(row, rules)
        item["comment"] = mask_text(item["comment"])
        item["reason_texts"] = [
            rules.tags[c].text if c in rules.tags else c for c in item["reasons"]
        ]
        item["org_name"] = orgs.get(ev.org_id, "")
        item["window_name"] = orgs.get(ev.window_id, "") if ev.window_id else ""
        item["item_name"] = items_by_id.get(ev.item_id, "") if ev.item_id else ""
        item["standing"] = standing
        out.append(item)
    return out, nxt
