"""JSON routes of the monthly reports: the archive's list and the workbook's download, for
offices, administrators and assessors, each within their region (thin: reports/service.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from haochaping.core.auth import Principal, roles
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.exports import SECURITY_HEADERS, content_disposition
from haochaping.core.roles import Role
from haochaping.core.schemas import Id
from haochaping.reports import schemas
from haochaping.reports import service as report_service

router = APIRouter(prefix="/api/v1", tags=["reports 通报"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Who reads the monthly reports: the offices and assessors of a region (and administrators).
REPORT_READERS = (Role.ADMIN, Role.OFFICE, Role.ASSESSOR)
ReportReader = Annotated[
    Principal,
    Depends(roles(*REPORT_READERS, message="月度通报仅供管理机构和监督查评人员查阅")),
]


@router.get(
    "/reports",
    response_model=schemas.ReportList,
    responses=declare(
        403,
        404,
        422,
        codes={
            403: ["out_of_scope", "role_forbidden"],
            404: "region_not_found",
            422: "invalid_month",
        },
    ),
)
async def list_reports(
    db: DbSession,
    user: ReportReader,
    region_code: Annotated[str | None, Query(max_length=12, description="行政区划代码")] = None,
    month: Annotated[str | None, Query(max_length=7, description="月份，如 2026-11")] = None,
):
    """The archived monthly reports (月度通报) of the caller's region and the regions below."""
    found = await report_service.list_reports(
        db=db, actor=user, region_code=region_code, month=month
    )
    return {"items": found}


@router.get(
    "/reports/{report_id}/download",
    response_class=Response,
    responses={
        200: {"content": {XLSX: {}}, "description": "通报的 Excel 工作簿"},
        **declare(
            403,
            404,
            409,
            codes={
                403: ["out_of_scope", "role_forbidden"],
                404: "report_not_found",
                409: ["report_tampered", "report_file_missing"],
            },
        ),
    },
)
async def download_report(report_id: Id, request: Request, db: DbSession, user: ReportReader):
    """The archived workbook, checked against its SM3 digest (`X-Content-SM3`)."""
    report = await report_service.get_report(db=db, actor=user, report_id=report_id)
    data = await report_service.read_workbook(
        report=report, upload_dir=Path(request.app.state.settings.upload_dir)
    )
    return Response(
        data,
        media_type=XLSX,
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": content_disposition(report_service.filename_of(report)),
            "X-Content-SM3": report.sm3,
        },
    )
