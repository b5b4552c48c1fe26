"""JSON routes for reference data: regions, organisations, staff, service items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import aliased

from haochaping.core import pagination
from haochaping.core.auth import CurrentPrincipal, ManagerOrClient
from haochaping.core.db import DbSession
from haochaping.core.errors import NotFound, declare
from haochaping.core.schemas import Limit, Page
from haochaping.orgs import queries, schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item, Org, Region, Staff

router = APIRouter(prefix="/api/v1", tags=["reference data 基础数据"])


def _org_read(org: Org, parent_code: str | None) -> schemas.OrgRead:
    return schemas.OrgRead(
        code=org.code,
        name=org.name,
        kind=org.kind,
        parent_code=parent_code,
        region_code=org.region_code,
        created_at=org.created_at,
    )


@router.post(
    "/regions",
    response_model=schemas.RegionRead,
    status_code=201,
    responses=declare(
        200, codes={404: "region_not_found", 409: "immutable_field", 422: "region_too_deep"}
    ),
)
async def create_region(
    data: schemas.RegionCreate, db: DbSession, actor: ManagerOrClient, response: Response
):
    """Create a region (201) or rename an existing one (200)."""
    region, created = await org_service.create_region(db=db, actor=actor, data=data)
    await db.commit()
    response.status_code = 201 if created else 200
    return region


@router.get("/regions", response_model=Page[schemas.RegionRead])
async def list_regions(
    db: DbSession,
    _actor: CurrentPrincipal,
    parent_code: str | None = None,
    tier: Annotated[int | None, Query(ge=1, le=5)] = None,
    cursor: str | None = None,
    limit: Limit = 100,
):
    stmt = queries.regions(parent_code=parent_code, tier=tier)
    items, nxt = await pagination.page(
        db, stmt, key=Region.code, cursor=cursor, limit=limit, text_key=True, scalars=True
    )
    return {"items": items, "next_cursor": nxt}


@router.get("/regions/{code}", response_model=schemas.RegionRead)
async def get_region(code: str, db: DbSession, _actor: CurrentPrincipal):
    return await org_service.get_region(db=db, code=code)


@router.post(
    "/orgs",
    response_model=schemas.OrgRead,
    status_code=201,
    responses=declare(
        200,
        codes={
            404: ["region_not_found", "org_not_found"],
            409: "immutable_field",
            422: "invalid_parent",
        },
    ),
)
async def create_org(
    data: schemas.OrgCreate, db: DbSession, actor: ManagerOrClient, response: Response
):
    """Create an organisation (201) or update its name and region (200)."""
    org, created = await org_service.create_org(db=db, actor=actor, data=data)
    await db.commit()
    response.status_code = 201 if created else 200
    return _org_read(org, org_service.parent_code(org))


@router.get("/orgs", response_model=Page[schemas.OrgRead])
async def list_orgs(
    db: DbSession,
    actor: CurrentPrincipal,
    kind: schemas.OrgKind | None = None,
    parent_code: str | None = None,
    region_code: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
):
    stmt = queries.orgs(
        actor=actor, kind=kind, parent_code=parent_code, region_code=region_code, q=q
    )
    rows, nxt = await pagination.page(db, stmt, key=Org.id, cursor=cursor, limit=limit)
    return {"items": [_org_read(o, pc) for o, pc in rows], "next_cursor": nxt}


@router.get("/orgs/{code}", response_model=schemas.OrgRead)
async def get_org(code: str, db: DbSession, actor: CurrentPrincipal):
    org = await org_service.get_org(db=db, code=code, field="code")
    actor.require(org.path)
    parent = await db.get(Org, org.parent_id) if org.parent_id else None
    return _org_read(org, parent.code if parent else None)


@router.post(
    "/staff",
    response_model=schemas.StaffRead,
    status_code=201,
    responses=declare(200, codes={404: "org_not_found", 409: "immutable_field"}),
)
async def create_staff(
    data: schemas.StaffCreate, db: DbSession, actor: ManagerOrClient, response: Response
):
    """Create a staff member (201) or update name and organisation (200)."""
    staff, org, created = await org_service.create_staff(db=db, actor=actor, data=data)
    await db.commit()
    response.status_code = 201 if created else 200
    return schemas.StaffRead(staff_no=staff.staff_no, name=staff.name, org_code=org.code)


@router.get("/staff", response_model=Page[schemas.StaffRead])
async def list_staff(
    db: DbSession,
    actor: CurrentPrincipal,
    org_code: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
):
    stmt = queries.staff(actor=actor, org_code=org_code)
    rows, nxt = await pagination.page(db, stmt, key=Staff.id, cursor=cursor, limit=limit)
    return {
        "items": [
            schemas.StaffRead(staff_no=s.staff_no, name=s.name, org_code=oc) for s, oc in rows
        ],
        "next_cursor": nxt,
    }


@router.get("/staff/{staff_no}", response_model=schemas.StaffRead)
async def get_staff(staff_no: str, db: DbSession, actor: CurrentPrincipal):
    row = (
        await db.execute(
            select(Staff, Org).join(Org, Org.id == Staff.org_id).where(Staff.staff_no == staff_no)
        )
    ).first()
    if row is None:
        raise NotFound(f"工作人员 {staff_no} 不存在", code="staff_not_found")
    actor.require(row[1].path)
    return schemas.StaffRead(staff_no=row[0].staff_no, name=row[0].name, org_code=row[1].code)


@router.post(
    "/items",
    response_model=schemas.ItemRead,
    status_code=201,
    responses=declare(200, codes={404: "org_not_found", 409: "immutable_field"}),
)
async def create_item(
    data: schemas.ItemCreate, db: DbSession, actor: ManagerOrClient, response: Response
):
    """Create a service item (201) or update it (200)."""
    item, org, created = await org_service.create_item(db=db, actor=actor, data=data)
    await db.commit()
    response.status_code = 201 if created else 200
    return schemas.ItemRead(
        code=item.code, name=item.name, org_code=org.code, basic_code=item.basic_code
    )


@router.get("/items", response_model=Page[schemas.ItemRead])
async def list_items(
    db: DbSession,
    actor: CurrentPrincipal,
    org_code: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
):
    stmt = queries.items(actor=actor, org_code=org_code, q=q)
    rows, nxt = await pagination.page(db, stmt, key=Item.id, cursor=cursor, limit=limit)
    return {
        "items": [
            schemas.ItemRead(code=i.code, name=i.name, org_code=oc, basic_code=i.basic_code)
            for i, oc in rows
        ],
        "next_cursor": nxt,
    }


@router.get("/items/{code}", response_model=schemas.ItemRead)
async def get_item(code: str, db: DbSession, actor: CurrentPrincipal):
    org_alias = aliased(Org)
    row = (
        await db.execute(
            select(Item, org_alias)
            .join(org_alias, org_alias.id == Item.org_id)
            .where(Item.code == code)
        )
    ).first()
    if row is None:
        raise NotFound(f"事项 {code} 不存在", code="item_not_found")
    actor.require(row[1].path)
    return schemas.ItemRead(
        code=row[0].code, name=row[0].name, org_code=row[1].code, basic_code=row[0].basic_code
    )
