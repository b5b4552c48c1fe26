"""JSON routes for statistics."""

from __future__ import annotations

from fastapi import APIRouter, Request

from haochaping.analytics import queries, schemas
from haochaping.core.auth import CurrentPrincipal
from haochaping.core.db import DbSession
from haochaping.core.schemas import Timestamp

router = APIRouter(prefix="/api/v1", tags=["statistics 统计"])


@router.get("/stats/summary", response_model=schemas.SummaryRead)
async def stats_summary(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    org_code: str | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
):
    """好评率、差评率、平均分 over the ratings that count (invalid and held ones excluded,
    default ratings reported apart)."""
    return await queries.summary(
        db=db,
        actor=principal,
        org_code=org_code,
        since=since,
        until=until,
        good_levels=request.app.state.rules.good_levels,
    )
