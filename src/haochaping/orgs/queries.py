"""Read-side select() builders for reference-data lists."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from haochaping.core.auth import Principal
from haochaping.orgs.models import Item, Org, Region, Staff


def regions(*, parent_code: str | None, tier: int | None, after: str | None,
            limit: int) -> Select:
    stmt = select(Region).order_by(Region.code).limit(limit + 1)
    if parent_code:
        stmt = stmt.where(Region.parent_code == parent_code)
    if tier:
        stmt = stmt.where(Region.tier == tier)
    if after:
        stmt = stmt.where(Region.code > after)
    return stmt


def orgs(*, actor: Principal, kind: str | None, parent_code: str | None,
         region_code: str | None, q: str | None, after: int | None, limit: int) -> Select:
    parent = aliased(Org)
    stmt = (
        select(Org, parent.code)
        .outerjoin(parent, parent.id == Org.parent_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Org.id)
        .limit(limit + 1)
    )
    if kind:
        stmt = stmt.where(Org.kind == kind)
    if parent_code:
        stmt = stmt.where(parent.code == parent_code)
    if region_code:
        stmt = stmt.where(Org.region_code == region_code)
    if q:
        stmt = stmt.where(Org.name.contains(q, autoescape=True))
    if after:
        stmt = stmt.where(Org.id > after)
    return stmt


def staff(*, actor: Principal, org_code: str | None, after: int | None, limit: int) -> Select:
    stmt = (
        select(Staff, Org.code)
        .join(Org, Org.id == Staff.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Staff.id)
        .limit(limit + 1)
    )
    if org_code:
        stmt = stmt.where(Org.code == org_code)
    if after:
        stmt = stmt.where(Staff.id > after)
    return stmt


def items(*, actor: Principal, org_code: str | None, q: str | None, after: int | None,
          limit: int) -> Select:
    stmt = (
        select(Item, Org.code)
        .join(Org, Org.id == Item.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Item.id)
        .limit(limit + 1)
    )
    if org_code:
        stmt = stmt.where(Org.code == org_code)
    if q:
        stmt = stmt.where(Item.name.contains(q, autoescape=True))
    if after:
        stmt = stmt.where(Item.id > after)
    return stmt
