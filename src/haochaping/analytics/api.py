"""JSON routes for statistics: thin, every figure from analytics/metrics.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from haochaping.analytics import metrics, schemas
from haochaping.core.auth import CurrentPrincipal
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.schemas import Timestamp

router = APIRouter(prefix="/api/v1", tags=["statistics 统计"])

OrgCode = Annotated[str | None, Query(max_length=50, description="机构代码：其下属机构一并统计")]
ItemCode = Annotated[str | None, Query(max_length=64, description="事项实施编码")]
RegionCode = Annotated[
    str | None, Query(max_length=12, description="行政区划代码：其下级区划一并统计")
]
Since = Annotated[Timestamp | None, Query(description="起（含），ISO 8601 带时区")]
Until = Annotated[Timestamp | None, Query(description="止（不含），ISO 8601 带时区")]
PeriodParam = Annotated[
    str | None,
    Query(max_length=10, description="2026-11（月）、2026-Q4（季度）或 2026（年）"),
]
TierParam = Annotated[
    Literal["region", "department", "hall", "window", "staff", "item"],
    Query(description="排名层级"),
]


@dataclass
class NodeFilters:
    """Which node of the tree a statistics question is about: the query parameters every
    statistics route takes (one definition, and one way to pass them on)."""

    org_code: OrgCode = None
    item_code: ItemCode = None
    region_code: RegionCode = None

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RangeFilters(NodeFilters):
    """A node and a time range (`since` inclusive, `until` exclusive)."""

    since: Since = None
    until: Until = None


Node = Annotated[NodeFilters, Depends()]
Range = Annotated[RangeFilters, Depends()]
NOT_FOUND = ["org_not_found", "item_not_found", "region_not_found"]
RANGE = ["invalid_range", "range_too_long"]
FILTERS = {403: "out_of_scope", 404: NOT_FOUND}


@router.get(
    "/stats/summary",
    response_model=schemas.SummaryRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: RANGE}),
)
async def stats_summary(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Range,
):
    """好评率、差评率、平均分 over the ratings that count (invalid and held ones excluded,
    default ratings reported apart), and the bad-review funnel."""
    return await metrics.summary(
        db=db,
        actor=principal,
        **filters.kwargs(),
    )


@router.get(
    "/stats/timeseries",
    response_model=schemas.SeriesRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: RANGE}),
)
async def stats_timeseries(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Range,
    granularity: Literal["day", "week", "month"] = "day",
):
    """The figures per day, week or month (Asia/Shanghai), every period of the range."""
    return await metrics.timeseries(
        db=db,
        actor=principal,
        granularity=granularity,
        **filters.kwargs(),
    )


@router.get(
    "/stats/breakdown",
    response_model=schemas.BreakdownRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: RANGE}),
)
async def stats_breakdown(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Range,
    by: Literal["level", "channel", "reason", "child", "item", "staff"],
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
):
    """The figures per level, channel, reason tag, child node (drill-down), item or staff."""
    return await metrics.breakdown(
        db=db,
        actor=principal,
        by=by,
        **filters.kwargs(),
        limit=limit,
    )


@router.get(
    "/stats/rankings",
    response_model=schemas.RankingsRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: "invalid_period"}),
)
async def stats_rankings(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Node,
    tier: TierParam,
    period: PeriodParam = None,
):
    """A tier's ranking for a month, quarter or year (live current month without a period)."""
    kept = await metrics.kept_rankings_json(
        db=db, actor=principal, tier=tier, period=period, **filters.kwargs()
    )
    if kept is not None:  # a closed period's kept answer, as stored (analytics/snapshots.py)
        return Response(kept, media_type="application/json")
    return await metrics.rankings(
        db=db,
        actor=principal,
        tier=tier,
        period=period,
        **filters.kwargs(),
    )


@router.get(
    "/stats/bottom",
    response_model=schemas.BottomRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: "invalid_period"}),
)
async def stats_bottom(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Node,
    tier: TierParam,
    periods: Annotated[int | None, Query(ge=1, le=24, description="连续期数 K")] = None,
    bottom: Annotated[int | None, Query(ge=1, le=100, description="末位名次数 N")] = None,
    period: PeriodParam = None,
):
    """Units in the bottom N for K periods running, up to `period` or the last complete
    month (K and N default to the region's policy)."""
    return await metrics.bottom(
        db=db,
        actor=principal,
        tier=tier,
        periods=periods,
        bottom=bottom,
        period=period,
        **filters.kwargs(),
    )
