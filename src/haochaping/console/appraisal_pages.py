"""HTML routes of the appraisal (考核) in the console: the scheme versions and the form of a
new one (indicators and the pairwise judgements, weights and CR computed as the person
chooses and again on submit), the bonus and deduction items, and the scores table with each
indicator's contribution and its Excel download.

Assessors write; offices read their region's; the same services as the JSON API
(`appraisal/service.py`). POSTs carry the CSRF token and redirect after success (PRG); a
refusal re-renders the form with what was chosen and the reason (for an inconsistent matrix,
its CR)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from haochaping.analytics import periods as P
from haochaping.appraisal import ahp, queries, service
from haochaping.appraisal.choices import METRICS, Direction, Tier
from haochaping.appraisal.exports import score_table
from haochaping.appraisal.schemas import SchemeCreate
from haochaping.console.forms import validation_problem
from haochaping.console.layout import Csrf, console_gate, flash, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Invalid
from haochaping.core.exports import ExportFormat, cell_text, content_disposition, table_response
from haochaping.core.roles import APPRAISAL_READERS, APPRAISERS
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.core.timeutil import utcnow

router = APIRouter(route_class=html_route("console/error.html"))

BASE = "/console/appraisal"
MIN_N, MAX_N, DEFAULT_N = 2, 8, 4
# The 17 values of Saaty's scale as the form offers them, strongest for the first first.
SCALE_CHOICES: list[tuple[str, str]] = [
    ("9", "9：前者极端重要"),
    ("8", "8"),
    ("7", "7：前者非常重要"),
    ("6", "6"),
    ("5", "5：前者明显重要"),
    ("4", "4"),
    ("3", "3：前者稍微重要"),
    ("2", "2"),
    ("1", "1：同等重要"),
    ("1/2", "1/2"),
    ("1/3", "1/3：后者稍微重要"),
    ("1/4", "1/4"),
    ("1/5", "1/5：后者明显重要"),
    ("1/6", "1/6"),
    ("1/7", "1/7：后者非常重要"),
    ("1/8", "1/8"),
    ("1/9", "1/9：后者极端重要"),
]
DEFAULT_METRICS = ["good_rate", "rectified_on_time_rate", "callback_satisfied_rate",
                   "active_rating_rate", "score", "callback_rate", "verified_on_time_rate",
                   "bad_rate"]  # fmt: skip
FIELD_LABELS = {"region_code": "行政区划代码", "year": "考核年度", "note": "说明"}

Appraiser = Annotated[
    Principal,
    Depends(
        console_gate(lambda user: user.has_role(*APPRAISERS), "此操作仅供监督查评（考核）人员使用")
    ),
]
AppraisalReader = Annotated[
    Principal,
    Depends(
        console_gate(
            lambda user: user.has_role(*APPRAISAL_READERS),
            "此页面仅供考核人员和政务服务管理机构使用",
        )
    ),
]


def _text(form: FormData | Any, name: str, max_len: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:max_len] if isinstance(value, str) else ""


def _n(value: str | None) -> int:
    try:
        n = int(value or DEFAULT_N)
    except ValueError:
        n = DEFAULT_N
    return min(max(n, MIN_N), MAX_N)


def _blank_form(n: int, region_code: str, year: int) -> dict[str, Any]:
    return {
        "n": n,
        "region_code": region_code,
        "year": year,
        "note": "",
        "indicators": [
            {
                "code": f"I{i + 1}",
                "metric": DEFAULT_METRICS[i],
                "label": METRICS[DEFAULT_METRICS[i]].label,
                "direction": "",
            }
            for i in range(n)
        ],
        "pairs": {f"{i}-{k}": "1" for i in range(n) for k in range(i + 1, n)},
    }


def _posted(form: FormData) -> dict[str, Any]:
    """The scheme form as posted (kept to show again after a refusal)."""
    n = _n(_text(form, "n", 3))
    year_text = _text(form, "year", 6)
    return {
        "n": n,
        "region_code": _text(form, "region_code", 12),
        "year": int(year_text) if year_text.isdigit() else year_text,
        "note": _text(form, "note", 500),
        "indicators": [
            {
                "code": _text(form, f"ind-{i}-code", 50),
                "metric": _text(form, f"ind-{i}-metric", 40),
                "label": _text(form, f"ind-{i}-label", 50),
                "direction": _text(form, f"ind-{i}-direction", 10),
            }
            for i in range(n)
        ],
        "pairs": {
            f"{i}-{k}": _text(form, f"pair-{i}-{k}", 8) or "1"
            for i in range(n)
            for k in range(i + 1, n)
        },
    }


def _matrix(v: dict[str, Any]) -> list[list[str]]:
    """The full reciprocal matrix from the upper-triangle choices."""
    n = v["n"]
    m = [["1"] * n for _ in range(n)]
    for i in range(n):
        for k in range(i + 1, n):
            value = v["pairs"][f"{i}-{k}"]
            m[i][k] = value
            parsed = ahp.parse_value(value)
            m[k][i] = str(1 / parsed) if parsed else "?"
    return m


def _scheme_body(v: dict[str, Any]) -> SchemeCreate:
    return SchemeCreate.model_validate(
        {
            "region_code": v["region_code"],
            "year": v["year"],
            "note": v["note"] or None,
            "indicators": [
                {
                    "code": ind["code"],
                    "metric": ind["metric"],
                    "weight_label": ind["label"],
                    **({"direction": ind["direction"]} if ind["direction"] else {}),
                }
                for ind in v["indicators"]
            ],
            "judgements": _matrix(v),
        }
    )


def _preview(v: dict[str, Any]) -> dict[str, Any]:
    """Weights and CR of the chosen judgements (or why they cannot be computed)."""
    try:
        result = ahp.weigh(ahp.check(_matrix(v), v["n"]))  # type: ignore[arg-type]
    except ahp.JudgementError as exc:
        return {"error": exc.message}
    return {
        "weights": [
            (ind["label"] or ind["code"], w)
            for ind, w in zip(v["indicators"], result.weights, strict=True)
        ],
        "cr": result.cr,
        "lambda_max": result.lambda_max,
        "consistent": result.consistent,
        "limit": ahp.CR_LIMIT,
    }


async def _own_region_code(db: DbSession, user: Principal) -> str:
    region = await service.own_region(db, user)
    return region.code if region is not None else ""


def _context(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": v,
        "metrics": list(METRICS.values()),
        "directions": Direction.choices(),
        "scale": SCALE_CHOICES,
        "sizes": list(range(MIN_N, MAX_N + 1)),
        "matrix": _matrix(v),
        "preview": _preview(v),
    }


@router.get(BASE)
async def scheme_list(
    request: Request, db: DbSession, user: AppraisalReader, region_code: str = "", year: str = ""
):
    """The scheme versions of the person's region and below, newest first."""
    own = await service.own_region(db, user)
    error = None
    items: list[Any] = []
    try:
        if region_code:
            await service.require_region(db, user, region_code[:12])
        items = await queries.schemes(
            db,
            region_paths=[own.path] if own is not None else ["\x00none"],
            region_code=region_code[:12] or None,
            year=int(year) if year.isdigit() else None,
        )
    except DomainError as exc:
        error = exc.message
    return await page(
        request,
        db,
        user,
        "console/appraisal_schemes.html",
        {
            "title": "考核方案",
            "tab": "schemes",
            "schemes": [service.scheme_view(s) for s in items],
            "filters": {"region_code": region_code[:12], "year": year[:4]},
            "error": error,
            "can_write": user.has_role(*APPRAISERS),
        },
        status_code=200 if error is None else 422,
    )


@router.get(BASE + "/schemes/new")
async def scheme_form(
    request: Request, db: DbSession, user: Appraiser, n: str = "", region_code: str = ""
):
    """The form of a new scheme version with `n` indicators."""
    v = _blank_form(
        _n(n),
        region_code[:12] or await _own_region_code(db, user),
        P.local_day(utcnow()).year,
    )
    return await page(
        request,
        db,
        user,
        "console/appraisal_scheme_form.html",
        {"title": "新建考核方案", "tab": "schemes", **_context(v)},
    )


@router.post(BASE + "/schemes/preview", dependencies=[Csrf])
async def scheme_preview(request: Request, db: DbSession, user: Appraiser):
    """The weights and CR of the judgements chosen so far (htmx, as the person chooses)."""
    v = _posted(await request.form())
    return await page(
        request,
        db,
        user,
        "console/_appraisal_preview.html",
        {"preview": _preview(v), "matrix": _matrix(v), "v": v},
        partial=True,
    )


@router.post(BASE + "/schemes", dependencies=[Csrf])
async def scheme_create(request: Request, db: DbSession, user: Appraiser):
    """Publish the scheme version; the form again with the reason when refused."""
    v = _posted(await request.form())
    status = 422
    try:
        scheme = await service.create_scheme(db=db, actor=user, data=_scheme_body(v))
    except ValidationError as exc:
        error = validation_problem(exc, FIELD_LABELS)
    except DomainError as exc:
        await db.rollback()
        error, status = exc.message, exc.status_code
    else:
        await db.commit()
        flash(
            request,
            f"已发布 {scheme.region_code} {scheme.year} 年考核方案第 {scheme.version} 版"
            f"（CR = {scheme.cr:.4f}）",
        )
        return RedirectResponse(f"{BASE}?region_code={scheme.region_code}", status_code=303)
    return await page(
        request,
        db,
        user,
        "console/appraisal_scheme_form.html",
        {"title": "新建考核方案", "tab": "schemes", "error": error, **_context(v)},
        status_code=status,
    )


# --- bonus and deduction items ----------------------------------------------------------------


async def _adjustments_page(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    region_code: str,
    period: str,
    posted: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    items: list[dict[str, Any]] = []
    list_error = None
    try:
        rows = await service.list_adjustments(
            db=db, actor=user, region_code=region_code, period=period or None
        )
        items = [service.adjustment_view(a, o) for a, o in rows]
    except DomainError as exc:
        list_error = exc.message
        status_code = exc.status_code if status_code == 200 else status_code
    return await page(
        request,
        db,
        user,
        "console/appraisal_adjustments.html",
        {
            "title": "弹性加减分",
            "tab": "adjustments",
            "items": items,
            "filters": {"region_code": region_code, "period": period},
            "list_error": list_error,
            "posted": posted or {},
            "error": error,
            "can_write": user.has_role(*APPRAISERS),
        },
        status_code=status_code,
    )


@router.get(BASE + "/adjustments")
async def adjustment_list(
    request: Request, db: DbSession, user: AppraisalReader, region_code: str = "", period: str = ""
):
    """The bonus and deduction items of a region's units."""
    return await _adjustments_page(
        request,
        db,
        user,
        region_code=region_code[:12] or await _own_region_code(db, user),
        period=period[:10],
    )


@router.post(BASE + "/adjustments", dependencies=[Csrf])
async def adjustment_create(request: Request, db: DbSession, user: Appraiser):
    """Record a bonus or deduction item with its note and evidence file."""
    form = await request.form()
    posted = {k: _text(form, k, 500) for k in ("org_code", "month", "points", "note")}
    settings = request.app.state.settings
    upload = form.get("file")
    region_code = await _own_region_code(db, user)
    try:
        try:
            points = float(posted["points"])
        except ValueError:
            points = 0.0
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("请选择证明材料文件", code="attachment_empty")
        data = await upload.read(settings.attachment_max_bytes + 1)
        item = await service.add_adjustment(
            db=db,
            actor=user,
            org_code=posted["org_code"],
            month=posted["month"],
            points=points,
            note=posted["note"],
            filename=upload.filename,
            declared=upload.content_type,
            data=data,
            max_bytes=settings.attachment_max_bytes,
            upload_dir=Path(settings.upload_dir),
        )
    except DomainError as exc:
        await db.rollback()
        return await _adjustments_page(
            request,
            db,
            user,
            region_code=region_code,
            period="",
            posted=posted,
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    flash(request, f"已登记 {posted['org_code']} {item.month} 的加减分 {item.points:+g} 分")
    return RedirectResponse(f"{BASE}/adjustments", status_code=303)


@router.get(BASE + "/adjustments/{adjustment_id}/file")
async def adjustment_file(
    adjustment_id: Id, request: Request, db: DbSession, user: AppraisalReader
):
    """The evidence file of an item."""
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


# --- scores -----------------------------------------------------------------------------------


def _last_month() -> str:
    today = P.local_day(utcnow())
    return P.month_of(date(today.year, today.month, 1)).previous().label


@router.get(BASE + "/scores")
async def scores_page(
    request: Request,
    db: DbSession,
    user: AppraisalReader,
    region_code: str = "",
    period: str = "",
    tier: str = "hall",
    version: str = "",
):
    """The scores of a tier's units with each indicator's contribution."""
    filters = {
        "region_code": region_code[:12] or await _own_region_code(db, user),
        "period": period[:10] or _last_month(),
        "tier": tier if tier in Tier.values() else Tier.HALL.value,
        "version": version[:6] if version.isdigit() else "",
    }
    result = None
    error = None
    status = 200
    try:
        result = await service.scores(
            db=db,
            actor=user,
            region_code=filters["region_code"],
            period=filters["period"],
            tier=filters["tier"],
            version=int(filters["version"]) if filters["version"] else None,
        )
    except DomainError as exc:
        error = exc.message
        # No scheme for that year yet is the page's empty state, not a faulty request.
        status = 200 if exc.code == "scheme_not_found" else exc.status_code
    table = None
    if result is not None:
        columns, rows = score_table(result)
        table = {
            "columns": columns,
            "rows": [[cell_text(v, c.kind) for v, c in zip(r, columns, strict=True)] for r in rows],
        }
    return await page(
        request,
        db,
        user,
        "console/appraisal_scores.html",
        {
            "title": "考核得分",
            "tab": "scores",
            "filters": filters,
            "tiers": Tier.choices(),
            "result": result,
            "table": table,
            "error": error,
            "query": {k: v for k, v in filters.items() if v},
        },
        status_code=status,
    )


@router.get(BASE + "/scores/download")
async def scores_download(
    db: DbSession,
    user: AppraisalReader,
    region_code: str = "",
    period: str = "",
    tier: str = "hall",
    version: str = "",
    format: str = "xlsx",
):
    """The scores table as Excel (or CSV)."""
    result = await service.scores(
        db=db,
        actor=user,
        region_code=region_code[:12] or await _own_region_code(db, user),
        period=period[:10] or _last_month(),
        tier=tier,
        version=int(version) if version.isdigit() and len(version) < 7 else None,
    )
    columns, rows = score_table(result)
    return table_response(
        filename=f"考核得分-{result.region.code}-{result.period.label}-{result.tier}",
        columns=columns,
        rows=rows,
        fmt=ExportFormat.CSV if format == "csv" else ExportFormat.XLSX,
        sheet="考核得分",
    )
