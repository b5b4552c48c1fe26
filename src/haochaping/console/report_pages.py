"""HTML routes of the monthly reports (月度通报) in the console: the archive of the person's
region with this month's window service stars (窗口服务之星), one report as a printable page
(A4, the region's name and the month in the header), and its workbook.

The same services as `/api/v1/reports` (`reports/service.py`); offices, administrators and
assessors, each within their region."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from haochaping.analytics import periods as P
from haochaping.console.layout import console_gate, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.exports import SECURITY_HEADERS, content_disposition
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.core.timeutil import utcnow
from haochaping.reports import service as report_service
from haochaping.reports.api import REPORT_READERS, XLSX
from haochaping.reports.service import INT, RATE, SCORE, Section

router = APIRouter(route_class=html_route("console/error.html"))

REPORTS = "/console/reports"


def is_report_reader(user: Principal) -> bool:
    """Offices, administrators and assessors read their region's reports."""
    return user.has_role(*REPORT_READERS)


ReportConsoleUser = Annotated[
    Principal,
    Depends(console_gate(is_report_reader, "月度通报仅供管理机构和监督查评人员查阅")),
]


def cell_text(value: Any, fmt: str) -> str:
    """A report's value as the page shows it."""
    if value is None:
        return "—"
    if fmt == RATE and isinstance(value, int | float):
        return f"{value * 100:.2f}%"
    if fmt == SCORE and isinstance(value, int | float):
        return f"{value:.3f}"
    if fmt == INT and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table_of(section: Section) -> dict[str, Any]:
    """A section as the template's table: headers, then rows of shown text."""
    rows = []
    for r, row in enumerate(section.rows):
        cells = []
        for c, value in enumerate(row):
            fmt = section.columns[c][1] if c < len(section.columns) else "text"
            if section.row_formats is not None and c == 1:
                fmt = section.row_formats[r]
            cells.append(cell_text(value, fmt))
        rows.append(cells)
    return {
        "key": section.key,
        "title": section.title,
        "note": section.note,
        "headers": [name for name, _ in section.columns],
        "numeric": [fmt in (INT, RATE, SCORE) for _, fmt in section.columns],
        "rows": rows,
    }


def _last_month(now: datetime) -> str:
    return P.current_period("month", now).previous().label


@router.get(REPORTS)
async def reports_page(
    request: Request,
    db: DbSession,
    user: ReportConsoleUser,
    month: str | None = None,
):
    """The archived reports of the person's region and below, and the window service stars
    of a month (the last complete one unless `month` names another) in their region."""
    shown = month or _last_month(utcnow())
    error = None
    stars: list[report_service.Star] = []
    region_name = ""
    try:
        report_service.parse_month(shown)
        region = await report_service.own_region(db=db, actor=user)
        region_code, region_name = region.code, region.name
        stars = await report_service.monthly_stars(
            db=db, actor=user, month=shown, region_code=region_code
        )
    except DomainError as exc:
        error = exc.message
    reports = await report_service.list_reports(db=db, actor=user)
    return await page(
        request,
        db,
        user,
        "console/reports.html",
        {
            "title": "月度通报",
            "here": REPORTS,
            "reports": reports,
            "month": shown,
            "stars": stars,
            "region_name": region_name,
            "error": error,
            "cell_text": cell_text,
        },
        status_code=422 if error else 200,
    )


@router.get(REPORTS + "/{report_id}")
async def report_page(report_id: Id, request: Request, db: DbSession, user: ReportConsoleUser):
    """One archived report as a printable page (print CSS: A4, header on every page)."""
    report = await report_service.get_report(db=db, actor=user, report_id=report_id)
    content = report.content
    return await page(
        request,
        db,
        user,
        "console/report.html",
        {
            "title": content["title"],
            "here": REPORTS,
            "report": report,
            "content": content,
            "tables": [table_of(s) for s in report_service.sections_of(content)],
        },
    )


@router.get(REPORTS + "/{report_id}/download")
async def report_download(report_id: Id, request: Request, db: DbSession, user: ReportConsoleUser):
    """The archived workbook (checked against its SM3 digest)."""
    report = await report_service.get_report(db=db, actor=user, report_id=report_id)
    data = await report_service.read_workbook(
        report=report, upload_dir=FilePath(request.app.state.settings.upload_dir)
    )
    return Response(
        data,
        media_type=XLSX,
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": content_disposition(report_service.filename_of(report)),
        },
    )
