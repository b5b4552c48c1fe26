"""JSON routes of the text analysis: thin, every answer from `topics/queries.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from haochaping.analytics.api import FILTERS, RANGE, Node, Range
from haochaping.core.auth import CurrentPrincipal
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.topics import queries, schemas

router = APIRouter(prefix="/api/v1", tags=["statistics 统计"])


@router.get(
    "/stats/topics",
    response_model=schemas.TopTermsRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: RANGE}),
)
async def stats_topics(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Range,
    limit: Annotated[int, Query(ge=1, le=100, description="每类最多条数")] = 20,
):
    """The most frequent terms, phrases and reason codes of the bad and 基本满意 ratings of an
    item, a unit or a region over a period (default: the last 30 days), counted per local
    day."""
    return await queries.top_terms(
        db,
        actor=principal,
        **filters.kwargs(),
        limit=limit,
    )


@router.get(
    "/stats/emerging",
    response_model=schemas.EmergingRead,
    responses=declare(403, 404, 422, codes={**FILTERS, 422: "invalid_period"}),
)
async def stats_emerging(
    db: DbSession,
    principal: CurrentPrincipal,
    filters: Node,
    weeks: Annotated[int, Query(description="近期周数（1–12），截至今天")] = 4,
    baseline_weeks: Annotated[int, Query(description="此前对照周数（1–26）")] = 8,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    """Emerging complaint topics (新出现的投诉话题): per item, terms of the bad and 基本满意
    comments whose count per rating rose significantly in the last `weeks` weeks against the
    `baseline_weeks` before, highest score first, with masked example comments."""
    return await queries.emerging(
        db,
        actor=principal,
        **filters.kwargs(),
        weeks=weeks,
        baseline_weeks=baseline_weeks,
        limit=limit,
    )
