"""HTML routes of the console's settings: jurisdiction policies (政策参数), the working-day
calendar (工作日历) and the delivery of notifications (通知投递)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from haochaping.accounts import queries as account_queries
from haochaping.console import views
from haochaping.console.forms import (
    BAD_LEVEL_CHOICES,
    CALLBACK_BY_CHOICES,
    MONTHLY_REPORT_CHOICES,
    POLICY_INT_FIELDS,
    POLICY_LABELS,
    AuditFilters,
    PolicyForm,
    stages_text,
    validation_problem,
)
from haochaping.console.layout import (
    ConsoleUser,
    Csrf,
    SystemAdminConsoleUser,
    console_gate,
    flash,
    is_manager,
    is_partial,
    is_system_admin,
    page,
)
from haochaping.core import calendar as work_calendar
from haochaping.core import outbox
from haochaping.core.audit import AuditAction
from haochaping.core.auth import Principal
from haochaping.core.calendar_models import FIRST_YEAR, LAST_YEAR
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Invalid
from haochaping.core.outbox_models import CHANNEL_LABELS as OUTBOX_CHANNELS
from haochaping.core.outbox_models import KIND_LABELS, STATUS_LABELS, OutboxStatus
from haochaping.core.roles import Role
from haochaping.core.schemas import Id
from haochaping.core.security import mask_phone, mask_text
from haochaping.core.templating import html_route
from haochaping.db.crypto import DataKeys, MissingKey
from haochaping.orgs import queries as org_queries
from haochaping.orgs.service import get_region
from haochaping.policies import queries as policy_queries
from haochaping.policies import schemas as policy_schemas
from haochaping.policies import service as policy_service

router = APIRouter(route_class=html_route("console/error.html"))

POLICIES = "/console/policies"
CALENDAR = "/console/calendar"
AUDIT = "/console/audit"
OUTBOX = "/console/outbox"
CSV_MAX_BYTES = 256 * 1024


# --- policies -------------------------------------------------------------------------------


async def _policy_page(
    request: Request,
    db: DbSession,
    user: Any,
    region_code: str | None,
    *,
    form: PolicyForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    code = region_code or await org_queries.user_region_code(db, user) or ""
    region = await get_region(db=db, code=code)
    values, _ = await policy_service.effective(db=db, region_code=region.code)
    versions = await policy_queries.policy_versions(db=db, region=region)
    sources = policy_queries.policy_sources(region, versions, policy_service.today_local())
    for v in versions:
        v["rows"] = views.policy_rows(v["values"])
    return await page(
        request,
        db,
        user,
        "console/policies.html",
        {
            "title": "政策参数",
            "region": region,
            "regions": await org_queries.region_options(db),
            "effective": views.policy_rows(values.model_dump(), sources),
            "versions": versions,
            "can_publish": is_manager(user),
            "form": form or PolicyForm.empty(region.code),
            "error": error,
            "int_fields": POLICY_INT_FIELDS,
            "bad_level_choices": BAD_LEVEL_CHOICES,
            "callback_by_choices": CALLBACK_BY_CHOICES,
            "monthly_report_choices": MONTHLY_REPORT_CHOICES,
            "stages_now": stages_text(values.model_dump(mode="json")["stages"]),
        },
        status_code=status_code,
    )


@router.get(POLICIES)
async def policy_page(
    request: Request, db: DbSession, user: ConsoleUser, region: str | None = None
):
    """The values in force for a region (defaults ← ancestors ← its own) and its versions."""
    return await _policy_page(request, db, user, (region or "").strip()[:12] or None)


# Offices and administrators publish policies; everyone else may read them.
PolicyPublisher = Annotated[Principal, Depends(console_gate(is_manager))]


@router.post(POLICIES, dependencies=[Csrf])
async def publish_policy(request: Request, db: DbSession, user: PolicyPublisher):
    """Publish the next version of a region's policy (the JSON route's service)."""
    form = PolicyForm.from_form(await request.form())
    region_code = form.values["region_code"] or None
    if form.errors:
        return await _policy_page(
            request, db, user, region_code, form=form, error="；".join(form.errors), status_code=422
        )
    try:
        data = policy_schemas.PolicyCreate.model_validate(form.body)
        policy = await policy_service.create_policy(db=db, actor=user, data=data)
    except ValidationError as exc:
        return await _policy_page(
            request,
            db,
            user,
            region_code,
            form=form,
            error=validation_problem(exc, POLICY_LABELS),
            status_code=422,
        )
    except DomainError as exc:
        await db.rollback()
        return await _policy_page(
            request,
            db,
            user,
            region_code,
            form=form,
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    request.app.state.policy_cache.clear()
    flash(
        request,
        f"已发布 {policy.region_code} 的政策参数第 {policy.version} 版，"
        f"自 {policy.effective_from} 起生效",
    )
    return RedirectResponse(f"{POLICIES}?region={policy.region_code}", status_code=303)


# --- the working-day calendar ------------------------------------------------------------


async def _calendar_page(
    request: Request,
    db: DbSession,
    user: Any,
    year: int,
    *,
    form: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    error: str | None = None,
    error_at: str = "import",
    status_code: int = 200,
) -> Response:
    cal = await request.app.state.calendar_cache.get(db)
    today = work_calendar.local_today()
    years = sorted({*work_calendar.status_years(today), year})
    status = [{"year": y, "known": cal.known_year(y), "source": cal.year_source(y)} for y in years]
    days = [
        {
            "day": s.day,
            "weekday": work_calendar.WEEKDAY_LABELS[s.day.weekday()],
            "is_workday": s.is_workday,
            "name": s.name,
            "source": s.source,
        }
        for s in cal.special_days(year)
    ]
    return await page(
        request,
        db,
        user,
        "console/calendar.html",
        {
            "title": "工作日历",
            "year": year,
            "status": status,
            "days": days,
            "known": cal.known_year(year),
            "imported": await work_calendar.calendar_years(db),
            "can_import": is_system_admin(user),
            "form": form or {"year": str(today.year + 1), "source": ""},
            "errors": errors or [],
            "error": error,
            "error_at": error_at,
            "first_year": FIRST_YEAR,
            "last_year": LAST_YEAR,
        },
        status_code=status_code,
    )


def _year(value: str | None, default: int) -> int | None:
    text = (value or "").strip()
    if not text:
        return default
    if text.isdigit() and FIRST_YEAR <= int(text) <= LAST_YEAR:
        return int(text)
    return None


@router.get(CALENDAR)
async def calendar_page(
    request: Request, db: DbSession, user: ConsoleUser, year: str | None = None
):
    """Which years the calendar knows, the special days of a year, and the import form."""
    today = work_calendar.local_today()
    chosen = _year(year, today.year)
    if chosen is None:
        return await _calendar_page(
            request,
            db,
            user,
            today.year,
            status_code=422,
            error=f"年份须在 {FIRST_YEAR}–{LAST_YEAR} 之间",
            error_at="view",
        )
    return await _calendar_page(request, db, user, chosen)


@router.post(CALENDAR, dependencies=[Csrf])
async def import_calendar(request: Request, db: DbSession, user: SystemAdminConsoleUser):
    """Import a year of the State Council's notice from a CSV file (all or nothing). The
    calendar sets every region's deadlines: only a system administrator at the root may."""
    raw = await request.form()
    year_text = raw.get("year") if isinstance(raw.get("year"), str) else ""
    source = raw.get("source") if isinstance(raw.get("source"), str) else ""
    form = {"year": str(year_text)[:10], "source": str(source)[:200]}
    upload = raw.get("file")
    today = work_calendar.local_today()
    year = _year(str(year_text), 0) or None
    try:
        if year is None:
            raise Invalid(f"请填写年份（{FIRST_YEAR}–{LAST_YEAR}）", code="calendar_invalid")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("请选择要导入的 CSV 文件", code="calendar_invalid")
        data = await upload.read(CSV_MAX_BYTES + 1)
        if len(data) > CSV_MAX_BYTES:
            raise Invalid(f"文件过大（上限 {CSV_MAX_BYTES // 1024} KB）", code="calendar_invalid")
        result = await work_calendar.import_year(
            db=db,
            year=year,
            csv_text=work_calendar.decode_csv(data),
            source=form["source"] or upload.filename,
            actor=user.name,
            actor_role=user.role,
        )
    except DomainError as exc:
        await db.rollback()
        lines = [d["message"] for d in exc.details if isinstance(d, dict) and d.get("message")]
        return await _calendar_page(
            request,
            db,
            user,
            year or today.year,
            form=form,
            error=exc.message,
            errors=lines,
            status_code=exc.status_code,
        )
    await db.commit()
    request.app.state.calendar_cache.clear()
    flash(
        request,
        f"已导入 {result.year} 年工作日历：放假 {result.holidays} 天，"
        f"调休上班 {result.workdays} 天",
    )
    return RedirectResponse(f"{CALENDAR}?year={result.year}", status_code=303)


# --- notifications --------------------------------------------------------------------------


def _recipient(keys: DataKeys, channel: str, recipient: str) -> str:
    """Phone numbers (stored encrypted) are masked; handlers' e-mail addresses are shown."""
    if channel != "sms":
        return recipient
    try:
        return mask_phone(keys.decrypt(recipient)) or ""
    except (MissingKey, ValueError):
        return "（号码无法解密）"


# Kinds the outbox module does not name (written by other domains), as people read them.
MORE_KINDS = {
    "assigned": "工单派发",
    "appeal_decided": "申诉复核结果",
    "appeal_warning": "申诉复核预警",
    "appeal_overdue": "申诉复核超期",
}


def _kind(kind: str) -> str:
    return KIND_LABELS.get(kind) or MORE_KINDS.get(kind, kind)  # type: ignore[call-overload]


def _summary(channel: str, subject: str, body: str) -> str:
    """What a failed message was about. Text messages carry the rater's personal links (a
    progress link lets its holder answer the callback), so their body is never shown."""
    if channel == "sms":
        return "（短信正文含评价人的个人链接，不予显示）"
    return mask_text(subject) or mask_text(body[:60]) or ""


async def _outbox_page(
    request: Request, db: DbSession, user: Any, *, error: str | None = None, status_code: int = 200
) -> Response:
    counts = await outbox.status_counts(db)
    messages = [
        {
            "id": m.id,
            "kind": _kind(m.kind),
            "channel": OUTBOX_CHANNELS.get(m.channel, m.channel),  # type: ignore[call-overload]
            "recipient": _recipient(request.app.state.keys, m.channel, m.recipient),
            "subject": _summary(m.channel, m.subject, m.body),
            "status": m.status,
            "status_label": STATUS_LABELS.get(m.status, m.status),  # type: ignore[call-overload]
            "attempts": m.attempts,
            "last_error": m.last_error,
            "created_at": m.created_at,
            "next_attempt_at": m.next_attempt_at,
        }
        for m in await outbox.failed_messages(db)
    ]
    return await page(
        request,
        db,
        user,
        "console/outbox.html",
        {
            "title": "通知投递",
            "counts": [(STATUS_LABELS[s], counts.get(s.value, 0), s.value) for s in OutboxStatus],
            "messages": messages,
            "error": error,
            "here": OUTBOX,
        },
        status_code=status_code,
    )


@router.get(OUTBOX)
async def outbox_page(request: Request, db: DbSession, user: SystemAdminConsoleUser):
    """How many notifications are in each state, and those that failed.

    Every region's messages, so a system administrator's page: a message carries no
    organisation to scope it by (only some name a work order or appeal in their payload)."""
    return await _outbox_page(request, db, user)


@router.post(OUTBOX + "/{message_id}/retry", dependencies=[Csrf])
async def retry(message_id: Id, request: Request, db: DbSession, user: SystemAdminConsoleUser):
    """Requeue a failed or given-up notification for delivery now (system administrators)."""
    try:
        await outbox.retry_message(db, message_id=message_id, actor=user.name, actor_role=user.role)
    except DomainError as exc:
        await db.rollback()
        return await _outbox_page(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    flash(request, f"通知 #{message_id} 已重新排队，将尽快发送")
    return RedirectResponse(OUTBOX, status_code=303)


# --- the audit trail --------------------------------------------------------------------------


def _detail(detail: dict[str, Any]) -> str:
    """An audit row's detail as one line (it never holds a password, key, phone or name)."""
    return "；".join(f"{k}：{v}" for k, v in detail.items())


# Offices read the reveals of their subtree (who saw a rater's number or comment, and why);
# the whole trail stays with the root's system administrators.
REVEALS = (AuditAction.REVEAL_PHONE, AuditAction.REVEAL_COMMENT)


def reads_audit(user: Principal) -> bool:
    """A system administrator (the whole trail), or an office (its subtree's reveals)."""
    return is_system_admin(user) or user.has_role(Role.OFFICE)


AuditReader = Annotated[
    Principal,
    Depends(console_gate(reads_audit, "审计日志仅供根机构的系统管理员和政务服务管理机构查看")),
]


@router.get(AUDIT)
async def audit_page(request: Request, db: DbSession, user: AuditReader):
    """The audit trail (审计日志), newest first, filtered by act, actor and days (offices: the
    reveals of their subtree only); htmx gets only the results."""
    filters = AuditFilters.from_query(request.query_params)
    only = None if is_system_admin(user) else REVEALS
    if only is not None and filters.action_value is not None and filters.action_value not in only:
        filters.errors.append("操作类型取值无效")
    items: list[dict[str, Any]] = []
    next_cursor = None
    if not filters.errors:  # a refused filter shows no rows (422), never unfiltered ones
        items, next_cursor = await account_queries.audit_page(
            db=db,
            actor=user,
            action=filters.action_value,
            actor_name=filters.actor or None,
            since=filters.since_at,
            until=filters.until_at,
            only=only,
            cursor=filters.cursor,
            limit=views.PAGE_SIZE,
        )
    for item in items:
        item["detail_text"] = _detail(item["detail"])
    partial = is_partial(request)
    context = {
        "title": "审计日志",
        "filters": filters,
        "items": items,
        "next_cursor": next_cursor,
        "actions": AuditAction.choices() if only is None else [(a.value, a.label) for a in only],
        "reveals_only": only is not None,
        "partial": partial,
    }
    name = "console/_audit_results.html" if partial else "console/audit.html"
    return await page(
        request,
        db,
        user,
        name,
        context,
        status_code=422 if filters.errors else 200,
        partial=partial,
    )
