"""Read-side select() builders of appeals."""

from __future__ import annotations

from sqlalchemy import Select, select

from haochaping.appeals.models import Appeal
from haochaping.core.auth import Principal
from haochaping.orgs.models import Org


def appeals(*, actor: Principal, state: str | None = None) -> Select:
    """Appeals in the caller's subtree with their unit's code and name, oldest first (the
    decision queue)."""
    stmt = (
        select(Appeal, Org.code, Org.name)
        .join(Org, Org.id == Appeal.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Appeal.id)
    )
    if state:
        stmt = stmt.where(Appeal.state == state)
    return stmt
