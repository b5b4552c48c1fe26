"""JSON routes for jurisdiction policies (政策参数) and the working-day calendar status."""

from __future__ import annotations

from fastapi import APIRouter, Request

from haochaping.core.auth import CurrentPrincipal, ManagerUser
from haochaping.core.calendar import local_today, missing_warning, status_years
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.schemas import Page
from haochaping.policies import queries as policy_queries
from haochaping.policies import schemas
from haochaping.policies import service as policy_service
from haochaping.policies.models import PolicySet

router = APIRouter(prefix="/api/v1", tags=["policies 政策参数"])


def _read(p: PolicySet, effective: schemas.PolicyValues) -> dict:
    """A published version with the values in effect (the response model keeps its fields)."""
    return {**policy_queries.version_read(p), "effective": effective}


@router.post(
    "/policies",
    status_code=201,
    response_model=schemas.PolicyRead,
    responses=declare(404, 422, codes={404: "region_not_found", 422: "invalid_policy"}),
)
async def create_policy(
    data: schemas.PolicyCreate, request: Request, db: DbSession, user: ManagerUser
):
    """Publish a new version of a region's policy (inherited by its subtree)."""
    policy = await policy_service.create_policy(db=db, actor=user, data=data)
    values, _ = await policy_service.effective(
        db=db, region_code=policy.region_code, on=policy.effective_from
    )
    await db.commit()
    request.app.state.policy_cache.clear()
    return _read(policy, values)


@router.get("/policies", response_model=Page[schemas.PolicyVersionRead])
async def list_policies(
    db: DbSession, _principal: CurrentPrincipal, region_code: str | None = None
):
    """Every version of every region's policy (or one region's), newest first."""
    items = await policy_queries.all_versions(db=db, region_code=region_code)
    return {"items": items, "next_cursor": None}


@router.get(
    "/policies/effective",
    response_model=schemas.PolicyValues,
    responses=declare(404, codes={404: "region_not_found"}),
)
async def effective_policy(region_code: str, db: DbSession, _principal: CurrentPrincipal):
    """The values in force for a region today (defaults ← ancestors ← its own)."""
    values, _ = await policy_service.effective(db=db, region_code=region_code)
    return values


@router.get(
    "/calendar/status", tags=["calendar 工作日历"], response_model=schemas.CalendarStatusRead
)
async def calendar_status(request: Request, db: DbSession, _principal: CurrentPrincipal):
    """Which years the working-day calendar knows, and the warning for missing ones."""
    cal = await request.app.state.calendar_cache.get(db)
    years = list(status_years(local_today()))
    return {
        "years": [
            {"year": y, "known": cal.known_year(y), "source": cal.year_source(y)} for y in years
        ],
        "warning": missing_warning(cal, years),
    }
