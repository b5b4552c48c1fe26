"""Read-side select() builders for reference-data lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
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


def orgs(
    *,
    actor: Principal,
    kind: str | None,
    parent_code: str | None,
    region_code: str | None,
    q: str | None,
) -> Select:
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


ORG_OPTIONS_MAX = 500  # the longest list of organisations or regions a page offers


def within_reach(stmt: Select, actor: Principal) -> Select:
    """Limit a select over `Org` to the organisations whose figures the person reads: their
    subtree, or, for a reader of a region (an assessor), those located in their region."""
    if actor.region_path is None:
        return stmt.where(Org.path.startswith(actor.org_path, autoescape=True))
    return stmt.join(Region, Region.code == Org.region_code).where(
        Region.path.startswith(actor.region_path, autoescape=True)
    )


async def org_options(*, db: AsyncSession, actor: Principal) -> list[dict[str, Any]]:
    """Departments and halls a work order may be transferred to: the office's whole area,
    a unit's own subtree (a unit may also type another organisation's code); for an assessor
    (who transfers nothing), those of their region, for the dashboard's picker."""
    stmt = within_reach(
        select(Org.code, Org.name, Org.kind, Org.path)
        .where(Org.kind != "window")
        .order_by(Org.path)
        .limit(ORG_OPTIONS_MAX),
        actor,
    )
    rows = (await db.execute(stmt)).all()
    top = min((p.count("/") for *_, p in rows), default=0)
    return [{"code": c, "name": n, "kind": k, "depth": p.count("/") - top} for c, n, k, p in rows]


async def region_options(db: AsyncSession) -> list[dict[str, Any]]:
    """Regions down to the county tier, for choosing whose policy to see."""
    rows = (
        (
            await db.execute(
                select(Region).where(Region.tier <= 4).order_by(Region.path).limit(ORG_OPTIONS_MAX)
            )
        )
        .scalars()
        .all()
    )
    return [{"code": r.code, "name": r.name, "tier": r.tier} for r in rows]


async def user_region_code(db: AsyncSession, actor: Principal) -> str | None:
    """The region of the person's organisation (the policy page starts there)."""
    return (
        await db.execute(select(Org.region_code).where(Org.id == actor.org_id))
    ).scalar_one_or_none()


# --- the dashboard's pickers and trail (console/dashboard_pages.py) -----------------------


async def own_region(db: AsyncSession, actor: Principal) -> Region | None:
    """The region of the person's organisation."""
    return (
        await db.execute(
            select(Region).join(Org, Org.region_code == Region.code).where(Org.id == actor.org_id)
        )
    ).scalar_one_or_none()


PICKER_MAX = 20  # options a picker offers at once (type more of the name to narrow)
PICKER_SCOPES = ("own", "region")


async def region_path_of(db: AsyncSession, actor: Principal) -> str | None:
    """The materialised path of the region of the person's organisation."""
    return (
        await db.execute(
            select(Region.path)
            .join(Org, Org.region_code == Region.code)
            .where(Org.id == actor.org_id)
        )
    ).scalar_one_or_none()


async def own_org(db: AsyncSession, actor: Principal) -> Org | None:
    return (await db.execute(select(Org).where(Org.id == actor.org_id))).scalar_one_or_none()


async def region_subtree_options(
    db: AsyncSession, top: Region, *, deepest_tier: int = 3
) -> list[dict[str, Any]]:
    """Regions inside `top` (itself excluded) down to a tier, in tree order, with depth."""
    rows = (
        (
            await db.execute(
                select(Region)
                .where(
                    Region.path.startswith(top.path, autoescape=True),
                    Region.code != top.code,
                    Region.tier <= deepest_tier,
                )
                .order_by(Region.path)
                .limit(ORG_OPTIONS_MAX)
            )
        )
        .scalars()
        .all()
    )
    return [{"code": r.code, "name": r.name, "depth": r.tier - top.tier - 1} for r in rows]


async def item_options(
    db: AsyncSession, subtree: str, limit: int, region_path: str | None = None
) -> list[dict[str, Any]]:
    """Service items of an organisation subtree (by its path), or of the organisations
    located in a region (by its path), by name, at most `limit`."""
    stmt = select(Item.code, Item.name).join(Org, Org.id == Item.org_id)
    if region_path is None:
        stmt = stmt.where(Org.path.startswith(subtree, autoescape=True))
    else:
        stmt = stmt.join(Region, Region.code == Org.region_code).where(
            Region.path.startswith(region_path, autoescape=True)
        )
    rows = (await db.execute(stmt.order_by(Item.name, Item.code).limit(limit))).all()
    return [{"code": c, "name": n} for c, n in rows]


async def item_name(db: AsyncSession, code: str) -> str | None:
    """The name of a service item (None: unknown). Items are reference data: a hall serves
    the items of departments outside its own subtree."""
    return (await db.execute(select(Item.name).where(Item.code == code))).scalar_one_or_none()


async def region_by_code(db: AsyncSession, code: str) -> Region | None:
    return (await db.execute(select(Region).where(Region.code == code))).scalar_one_or_none()


async def org_by_code(db: AsyncSession, code: str) -> Org | None:
    return (await db.execute(select(Org).where(Org.code == code))).scalar_one_or_none()


async def region_chain(db: AsyncSession, region: Region, below: Region | None) -> list[Region]:
    """The regions from just below `below` (or the top) down to `region`, top first."""
    codes = [c for c in region.path.strip("/").split("/") if c]
    if below is not None:
        if not region.path.startswith(below.path):
            return [region]
        codes = codes[below.path.strip("/").count("/") + 1 :]
    rows = (await db.execute(select(Region).where(Region.code.in_(codes)))).scalars().all()
    by_code = {r.code: r for r in rows}
    return [by_code[c] for c in codes if c in by_code]


async def org_chain(db: AsyncSession, actor: Principal, org: Org) -> list[Org]:
    """The organisations from just below the person's own down to `org`, top first; for an
    assessor, those of the line located in their region."""
    codes = [c for c in org.path.strip("/").split("/") if c]
    stmt = select(Org).where(Org.code.in_(codes))
    if actor.region_path is None:
        stmt = stmt.where(Org.id != actor.org_id)
    rows = (await db.execute(within_reach(stmt, actor))).scalars().all()
    by_code = {o.code: o for o in rows}
    return [by_code[c] for c in codes if c in by_code]


async def pick_orgs(
    *, db: AsyncSession, actor: Principal, q: str, scope: str = "own", kind: str = ""
) -> list[dict[str, Any]]:
    """Active organisations whose name (or code) contains `q`, among those the person may
    reach: `own` — their subtree; `region` — any organisation of their organisation's region,
    of the regions below it and of those above it (a transfer's lead and co-handling units),
    never of a neighbouring region. `kind`: one kind,
    `unit` (departments and halls), or any. Shortest paths first, at most `PICKER_MAX`."""
    parent = aliased(Org)
    stmt = (
        select(Org.code, Org.name, Org.kind, parent.name)
        .outerjoin(parent, parent.id == Org.parent_id)
        .where(Org.active.is_(True))
    )
    if scope == "region":
        region_path = await region_path_of(db, actor)
        if region_path is None:
            return []
        # The region's own line: its subtree (a county's towns) and the regions above it
        # (a county unit may hand an order to a city or province department).
        stmt = stmt.join(Region, Region.code == Org.region_code).where(
            Region.path.startswith(region_path, autoescape=True)
            | literal(region_path, String).startswith(Region.path)
        )
    else:
        stmt = stmt.where(Org.path.startswith(actor.org_path, autoescape=True))
    if kind == "unit":
        stmt = stmt.where(Org.kind != "window")
    elif kind:
        stmt = stmt.where(Org.kind == kind)
    if q:
        stmt = stmt.where(
            Org.name.contains(q, autoescape=True) | Org.code.contains(q, autoescape=True)
        )
    stmt = stmt.order_by(func.length(Org.path), Org.path).limit(PICKER_MAX)
    return [
        {"code": c, "name": n, "kind": k, "parent": p}
        for c, n, k, p in (await db.execute(stmt)).all()
    ]


async def pick_items(*, db: AsyncSession, actor: Principal, q: str) -> list[dict[str, Any]]:
    """Active service items whose name or implementation code contains `q`, of the
    organisations of the person's region line (its regions below and above: a hall serves
    items that a city or province department implements; the catalogue is public anyway),
    with their organisation's name. Shortest names first, at most `PICKER_MAX`."""
    region_path = await region_path_of(db, actor)
    if region_path is None:
        return []
    stmt = (
        select(Item.code, Item.name, Org.name)
        .join(Org, Org.id == Item.org_id)
        .join(Region, Region.code == Org.region_code)
        .where(
            Item.active.is_(True),
            Region.path.startswith(region_path, autoescape=True)
            | literal(region_path, String).startswith(Region.path),
        )
    )
    if q:
        stmt = stmt.where(
            Item.name.contains(q, autoescape=True) | Item.code.contains(q, autoescape=True)
        )
    stmt = stmt.order_by(func.length(Item.name), Item.code).limit(PICKER_MAX)
    return [{"code": c, "name": n, "org": o} for c, n, o in (await db.execute(stmt)).all()]


def admin_orgs(*, actor: Principal, q: str, kind: str, active: bool | None) -> Select:
    """Organisations of the person's subtree for the directory page, in tree order."""
    parent = aliased(Org)
    stmt = (
        select(Org, parent.code, parent.name, Region.name)
        .outerjoin(parent, parent.id == Org.parent_id)
        .join(Region, Region.code == Org.region_code)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Org.path)
    )
    if q:
        stmt = stmt.where(
            Org.name.contains(q, autoescape=True) | Org.code.contains(q, autoescape=True)
        )
    if kind:
        stmt = stmt.where(Org.kind == kind)
    if active is not None:
        stmt = stmt.where(Org.active.is_(active))
    return stmt


def admin_staff(*, actor: Principal, q: str) -> Select:
    stmt = (
        select(Staff, Org.code, Org.name)
        .join(Org, Org.id == Staff.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Org.path, Staff.staff_no)
    )
    if q:
        stmt = stmt.where(
            Staff.name.contains(q, autoescape=True) | Staff.staff_no.contains(q, autoescape=True)
        )
    return stmt


def admin_items(*, actor: Principal, q: str) -> Select:
    stmt = (
        select(Item, Org.code, Org.name)
        .join(Org, Org.id == Item.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Item.code)
    )
    if q:
        stmt = stmt.where(
            Item.name.contains(q, autoescape=True) | Item.code.contains(q, autoescape=True)
        )
    return stmt


def admin_regions(*, q: str) -> Select:
    """Regions in tree order, searched by name or code (shared by every organisation)."""
    stmt = select(Region).order_by(Region.path)
    if q:
        stmt = stmt.where(
            Region.name.contains(q, autoescape=True) | Region.code.contains(q, autoescape=True)
        )
    return stmt
