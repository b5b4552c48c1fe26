"""Read-side select() builders for reference-data lists."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from haochaping.core.auth import Principal
from haochaping.orgs.models import Item, Org, Region, Staff


def regions(*, parent_code: str | None, tier: int | None) -> Select:
    stmt = select(Region).order_by(Region.code)
    if parent_code:
        stmt = stmt.where(Region.parent_code == parent_code)
    if tier:
        stmt = stmt.where(Region.tier == tier)
    return stmt


def orgs(*, actor: Principal, kind: str | None, parent_code: str | None,
         region_code: str | None, q: str | None) -> Select:
    parent = aliased(Org)
    stmt = (
        select(Org, parent.code)
        .outerjoin(parent, parent.id == Org.parent_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Org.id)
    )
    if kind:
        stmt = stmt.where(Org.kind == kind)
    if parent_code:
        stmt = stmt.where(parent.code == parent_code)
    if region_code:
        stmt = stmt.where(Org.region_code == region_code)
    if q:
        stmt = stmt.where(Org.name.contains(q, autoescape=True))
    return stmt


def staff(*, actor: Principal, org_code: str | None) -> Select:
    stmt = (
        select(Staff, Org.code)
        .join(Org, Org.id == Staff.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Staff.id)
    )
    if org_code:
        stmt = stmt.where(Org.code == org_code)
    return stmt


def items(*, actor: Principal, org_code: str | None, q: str | None) -> Select:
    stmt = (
        select(Item, Org.code)
        .join(Org, Org.id == Item.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Item.id)
    )
    if org_code:
        stmt = stmt.where(Org.code == org_code)
    if q:
        stmt = stmt.where(Item.name.contains(q, autoescape=True))
    return stmt
