"""JSON routes of the appraisal (考核): thin, every rule in appraisal/service.py.

Assessors write (schemes, bonus and deduction items); assessors and offices read their
region's; every other role gets 403."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from haochaping.appraisal import exports, queries, schemas, service
from haochaping.appraisal.choices import METRICS, Tier
from haochaping.core.auth import Principal, roles
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.exports import ExportFormat, content_disposition, table_response
from haochaping.core.roles import APPRAISAL_READERS, APPRAISERS
from haochaping.core.schemas import Id, Page
from haochaping.workorders import attachments

router = APIRouter(prefix="/api/v1/appraisal", tags=["appraisal 考核"])

Assessor = Annotated[
    Principal, Depends(roles(*APPRAISERS, message="仅监督查评（考核）人员可维护考核方案与加减分"))
]
Reader = Annotated[
    Principal,
    Depends(roles(*APPRAISAL_READERS, message="仅考核人员和政务服务管理机构可查看考核")),
]
RegionParam = Annotated[str, Query(min_length=2, max_length=12, description="行政区划代码")]
PeriodParam = Annotated[
    str, Query(max_length=10, description="2026-11（月）、2026-Q4（季度）或 2026（年）")
]
TierParam = Annotated[Tier, Query(description="考核对象：department、hall 或 window")]
VersionParam = Annotated[int | None, Query(ge=1, le=100000, description="方案版本，默认最新")]
SCHEME_422 = [
    "unknown_metric",
    "duplicate_indicator",
    "judgements_shape",
    "judgement_scale",
    "judgements_diagonal",
    "judgements_not_reciprocal",
    "inconsistent_judgements",
]
SCORES_CODES = {
    403: "out_of_scope",
    404: ["region_not_found", "scheme_not_found"],
    422: ["invalid_period"],
}


@router.get("/metrics", response_model=Page[schemas.MetricRead])
async def list_metrics(user: Reader):
    """The figures an indicator may draw on, with their direction and meaning."""
    return {"items": list(METRICS.values()), "next_cursor": None}


@router.post(
    "/schemes",
    status_code=201,
    response_model=schemas.SchemeRead,
    responses=declare(
        403, 404, 422, codes={403: "out_of_scope", 404: "region_not_found", 422: SCHEME_422}
    ),
)
async def create_scheme(data: schemas.SchemeCreate, db: DbSession, user: Assessor):
    """A new version of a region's indicator scheme for a year: weights by AHP (principal
    eigenvector of the judgement matrix); a matrix with CR ≥ 0.1 is refused (422
    `inconsistent_judgements`, the CR in details). Earlier versions stay unchanged."""
    scheme = await service.create_scheme(db=db, actor=user, data=data)
    await db.commit()
    return service.scheme_view(scheme)


@router.get(
    "/schemes",
    response_model=Page[schemas.SchemeRead],
    responses=declare(403, 404, codes={403: "out_of_scope", 404: "region_not_found"}),
)
async def list_schemes(
    db: DbSession,
    user: Reader,
    region_code: Annotated[str | None, Query(min_length=2, max_length=12)] = None,
    year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
):
    """Every scheme version of the caller's region and below, newest first."""
    if region_code:
        await service.require_region(db, user, region_code)
    own = await service.own_region(db, user)
    items = await queries.schemes(
        db,
        region_paths=[own.path] if own is not None else ["\x00none"],
        region_code=region_code,
        year=year,
    )
    return {"items": [service.scheme_view(s) for s in items], "next_cursor": None}


@router.get(
    "/schemes/{scheme_id}",
    response_model=schemas.SchemeRead,
    responses=declare(403, 404, codes={403: "out_of_scope", 404: "scheme_not_found"}),
)
async def get_scheme(scheme_id: Id, db: DbSession, user: Reader):
    """One scheme version."""
    return service.scheme_view(await service.get_scheme(db=db, actor=user, scheme_id=scheme_id))


@router.post(
    "/adjustments",
    status_code=201,
    response_model=schemas.AdjustmentRead,
    responses=declare(
        403,
        404,
        413,
        422,
        codes={
            403: "out_of_scope",
            404: "org_not_found",
            413: "attachment_too_large",
            422: [
                "not_appraised",
                "invalid_month",
                "invalid_points",
                "invalid_note",
                "attachment_empty",
                "attachment_type",
                "attachment_disguised",
            ],
        },
    ),
)
async def add_adjustment(
    request: Request,
    db: DbSession,
    user: Assessor,
    org_code: Annotated[str, Form(min_length=1, max_length=50)],
    month: Annotated[str, Form(max_length=10)],
    points: Annotated[float, Form(ge=-1000, le=1000)],
    note: Annotated[str, Form(max_length=500)],
    file: Annotated[UploadFile, File()],
):
    """An elastic bonus (+) or deduction (−) item of a unit for a month (e.g. +2 for a
    commendation, −3 for a 约谈), with a note and an evidence file (PDF or image)."""
    settings = request.app.state.settings
    data = await file.read(settings.attachment_max_bytes + 1)
    item = await service.add_adjustment(
        db=db,
        actor=user,
        org_code=org_code,
        month=month,
        points=points,
        note=note,
        filename=file.filename or "file",
        declared=file.content_type,
        data=data,
        max_bytes=settings.attachment_max_bytes,
        upload_dir=Path(settings.upload_dir),
    )
    view = await service.adjustment_view_of(db, item)
    await db.commit()
    return view


@router.get(
    "/adjustments",
    response_model=Page[schemas.AdjustmentRead],
    responses=declare(
        403, 404, 422, codes={403: "out_of_scope", 404: "region_not_found", 422: "invalid_period"}
    ),
)
async def list_adjustments(
    db: DbSession,
    user: Reader,
    region_code: RegionParam,
    period: Annotated[str | None, Query(max_length=10)] = None,
):
    """The bonus and deduction items of a region's units (of a month, quarter or year)."""
    rows = await service.list_adjustments(db=db, actor=user, region_code=region_code, period=period)
    return {"items": [service.adjustment_view(a, o) for a, o in rows], "next_cursor": None}


@router.get(
    "/adjustments/{adjustment_id}/file",
    responses={
        200: {"content": {t: {} for t in attachments.SIGNATURES}},
        **declare(403, 404, codes={403: "out_of_scope", 404: "adjustment_not_found"}),
    },
)
async def adjustment_file(adjustment_id: Id, request: Request, db: DbSession, user: Reader):
    """The evidence file of a bonus or deduction item."""
    item, data = await service.read_adjustment_file(
        db=db,
        actor=user,
        adjustment_id=adjustment_id,
        upload_dir=Path(request.app.state.settings.upload_dir),
    )
    return Response(
        content=data,
        media_type=item.content_type,
        headers={
            "Content-Disposition": content_disposition(f"{item.id}{Path(item.filename).suffix}"),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/scores",
    response_model=schemas.ScoresRead,
    responses=declare(403, 404, 422, codes=SCORES_CODES),
)
async def get_scores(
    db: DbSession,
    user: Reader,
    region_code: RegionParam,
    period: PeriodParam,
    tier: TierParam = Tier.HALL,
    version: VersionParam = None,
):
    """The units of a tier ranked by their appraisal score for a month, quarter or year,
    with each indicator's value, normalised value, weight and contribution."""
    result = await service.scores(
        db=db, actor=user, region_code=region_code, period=period, tier=tier, version=version
    )
    return service.scores_view(result)


@router.get(
    "/scores/download",
    responses={
        200: {
            "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                "text/csv": {},
            }
        },
        **declare(403, 404, 422, codes=SCORES_CODES),
    },
)
async def download_scores(
    db: DbSession,
    user: Reader,
    region_code: RegionParam,
    period: PeriodParam,
    tier: TierParam = Tier.HALL,
    version: VersionParam = None,
    format: ExportFormat = ExportFormat.XLSX,
):
    """The scores table as an Excel workbook (or CSV)."""
    result = await service.scores(
        db=db, actor=user, region_code=region_code, period=period, tier=tier, version=version
    )
    columns, rows = exports.score_table(result)
    return table_response(
        filename=f"考核得分-{result.region.code}-{result.period.label}-{tier}",
        columns=columns,
        rows=rows,
        fmt=format,
        sheet="考核得分",
    )
