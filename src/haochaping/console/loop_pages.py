"""HTML routes of the closed loop in the console: the work-order queues, the work-order page
with one form per allowed action, evidence uploads, appeals and their decision.

Every POST carries the CSRF token, calls the same service as the JSON route, commits, and
redirects back (PRG). A refusal re-renders the page with the status code of the refusal,
the message in Chinese, and what was typed still in the form."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from haochaping.appeals import queries as appeal_queries
from haochaping.appeals import schemas as appeal_schemas
from haochaping.appeals import service as appeal_service
from haochaping.appeals.choices import CATEGORY_LABELS
from haochaping.console import list_exports, views
from haochaping.console.forms import (
    FIELD_LABELS,
    ActionForm,
    AppealFilters,
    AppealForm,
    DecisionForm,
    WorkOrderFilters,
    validation_problem,
)
from haochaping.console.layout import (
    ConsoleUser,
    Csrf,
    ManagerConsoleUser,
    console_gate,
    flash,
    is_manager,
    is_partial,
    page,
)
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import Conflict, DomainError, Forbidden, Invalid
from haochaping.core.roles import HANDLERS
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route, safe_next
from haochaping.orgs import queries as org_queries
from haochaping.workorders import attachments as attachment_store
from haochaping.workorders import contact
from haochaping.workorders import queries as wo_queries
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.choices import STAFF_CALLBACK_METHODS, VERDICT_LABELS
from haochaping.workorders.loop import loop_context
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import ACTION_LABELS, STATE_LABELS, Action, State

router = APIRouter(route_class=html_route("console/error.html"))

QUEUE = "/console/work-orders"
SUPERVISION = "/console/supervision"
APPEALS = "/console/appeals"
ACTIONS = TypeAdapter(wo_schemas.ActionIn)
STALE = "工单已被他人同时处理，请刷新页面查看最新状态后再操作"
# The forms of the work-order page, in the order a handler meets them:
# action -> (button and heading, what it does, the label of its note).
ACTION_FORMS: dict[str, tuple[str, str, str]] = {
    "verify": ("核实", "已联系评价人、查明情况属实：填写核实情况，工单进入整改。", "核实情况"),
    "transfer": (
        "转办",
        "问题不属于本单位职责：转交牵头单位办理，可同时指定协办单位。",
        "转办理由",
    ),
    "explain": (
        "解释说明",
        "诉求没有法律依据：向评价人解释说明，随后回访。",
        "解释说明（评价人可在进度页看到）",
    ),
    "report_rectified": (
        "报告整改完成",
        "整改完成：填写整改情况，随后回访评价人。",
        "整改情况（评价人可在进度页看到）",
    ),
    "callback": ("记录回访", "记录一次回访：联系上评价人时须记录其意见。", "回访情况"),
    "close_unreachable": (
        "联系不上，办结",
        "多次回访仍联系不上评价人：说明情况后办结。",
        "办结说明",
    ),
    "escalate": ("转督办", "超期或评价人不满意：转入督办。", "督办原因"),
    "redispatch": ("重新派单整改", "督办后重新派单，可另定牵头单位和整改期限。", "派单意见"),
    "hold_accountable": ("启动问责", "督办发现不作为、乱作为：启动问责。", "问责事由"),
    "close": ("办结", "由管理机构办结工单。", "办结意见"),
}


async def console_order(work_order_id: Id, db: DbSession, user: ConsoleUser) -> WorkOrder:
    """The work order of the path, if one of its units lies in the person's subtree."""
    order = await wo_service.get_order(db=db, work_order_id=work_order_id)
    await wo_service.require_visible(db, user, order)
    return order


ConsoleOrder = Annotated[WorkOrder, Depends(console_order)]
# Evidence comes from the people who handle orders (window staff and assessors read only).
Uploader = Annotated[
    Principal,
    Depends(console_gate(lambda user: user.has_role(*HANDLERS), attachment_store.UPLOADERS_ONLY)),
]
# The office decides appeals; units see them on the queue (403 `role_forbidden` for others).
AppealDecider = Annotated[
    Principal, Depends(console_gate(is_manager, appeal_service.DECIDERS_ONLY))
]


def order_path(order: WorkOrder) -> str:
    return f"{QUEUE}/{order.id}"


# --- queues -----------------------------------------------------------------------------------


def _orders(
    request: Request, db: DbSession, user: Any, filters: WorkOrderFilters, *, supervision: bool
):
    """A queue's page function for these filters (the page and its download)."""

    async def fetch(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        ctx = await loop_context(request, db)
        items, next_cursor = await wo_queries.work_order_page(
            db=db,
            actor=user,
            deadlines=ctx.deadlines,
            state=filters.state,
            org_code=filters.org_code or None,
            overdue=filters.overdue_flag,
            due_before=filters.due_before_at,
            cursor=cursor,
            supervision=supervision,
            limit=limit,
        )
        return [views.queue_item_view(i) for i in items], next_cursor

    return fetch


def _order_filters(request: Request) -> WorkOrderFilters:
    return WorkOrderFilters.from_query(request.query_params, {s.value for s in State})


async def _queue(request: Request, db: DbSession, user: Any, *, supervision: bool) -> Response:
    filters = _order_filters(request)
    fetch = _orders(request, db, user, filters, supervision=supervision)
    result = views.WorkOrderPage(*await fetch(filters.cursor, views.PAGE_SIZE))
    partial = is_partial(request)
    base = SUPERVISION if supervision else QUEUE
    context = {
        "filters": filters,
        "page": result,
        "partial": partial,
        "base": base,
        "supervision": supervision,
        "states": STATE_LABELS,
        "title": "督办" if supervision else "差评工单",
        "order": views.ORDER_WORK_ORDERS,
    }
    name = "console/_work_order_results.html" if partial else "console/work_orders.html"
    return await page(request, db, user, name, context, partial=partial)


def _queue_export(request: Request, db: DbSession, user: Any, *, supervision: bool):
    filters = _order_filters(request)
    list_exports.refuse(filters.errors)
    return list_exports.download(
        db=db,
        title="督办工单" if supervision else "差评工单",
        columns=list_exports.WORK_ORDER_COLUMNS,
        fetch=_orders(request, db, user, filters, supervision=supervision),
        to_row=list_exports.work_order_row,
    )


@router.get(QUEUE)
async def work_order_queue(request: Request, db: DbSession, user: ConsoleUser):
    """The person's work orders in the order they were opened; htmx gets only the results."""
    return await _queue(request, db, user, supervision=False)


@router.get(QUEUE + "/export")
async def work_order_export(request: Request, db: DbSession, user: ConsoleUser):
    """The work orders the queue's filters show (every page), as Excel, streamed."""
    return _queue_export(request, db, user, supervision=False)


@router.get(SUPERVISION)
async def supervision_queue(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The office's supervision queue: orders under supervision or accountability, and every
    overdue order."""
    return await _queue(request, db, user, supervision=True)


@router.get(SUPERVISION + "/export")
async def supervision_export(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The supervision queue's orders its filters show (every page), as Excel, streamed."""
    return _queue_export(request, db, user, supervision=True)


# --- the work-order page ------------------------------------------------------------------


async def _order_page(
    request: Request,
    db: DbSession,
    user: Any,
    order: WorkOrder,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = await loop_context(request, db)
    wo = views.work_order_view(
        await wo_queries.work_order_view(
            db=db, order=order, actor=user, rules=request.app.state.rules, deadlines=ctx.deadlines
        ),
        await appeal_queries.of_work_order(db, order.id),
    )
    allowed = set(wo["allowed_actions"])
    pending_appeal = next((a for a in wo["appeals"] if a["state"] == "pending"), None)
    forms = [a for a in ACTION_FORMS if a in allowed]
    needs_orgs = bool({"transfer", "redispatch"} & set(forms))
    context = {
        "title": f"差评工单 #{order.id}",
        "wo": wo,
        "order": order,
        "forms": forms,
        "action_forms": ACTION_FORMS,
        "methods": {m.value: m.label for m in STAFF_CALLBACK_METHODS},
        "verdicts": VERDICT_LABELS,
        "categories": CATEGORY_LABELS,
        "can_appeal": "appeal" in allowed and not wo["appeals"] and wo["evaluation"]["is_bad"],
        "pending_appeal": pending_appeal,
        "can_decide": pending_appeal is not None and "uphold_appeal" in allowed,
        "orgs": await org_queries.org_options(db=db, actor=user) if needs_orgs else [],
        "may_name_other_org": not is_manager(user),
        "posted": posted or {},
        "error": error,
        "max_attempts": wo["policy"].get("max_contact_attempts"),
        # 查看号码: for the handlers at the verify and callback steps (console/callback_pages).
        "can_reveal": user.has_role(*HANDLERS) and bool({"verify", "callback"} & allowed),
        "can_upload": user.has_role(*HANDLERS),
        "reveal_seconds": contact.REVEAL_SECONDS,
        "here": order_path(order),  # a refused POST re-renders here: links come back to GET
    }
    return await page(
        request, db, user, "console/work_order.html", context, status_code=status_code
    )


@router.get(QUEUE + "/{work_order_id}")
async def work_order_page(request: Request, db: DbSession, user: ConsoleUser, order: ConsoleOrder):
    """A work order: the rating, the case, the units, deadlines, timeline and the forms."""
    return await _order_page(request, db, user, order)


def _refusal(exc: DomainError, posted_version: int | None, seen_version: int) -> str:
    """The Chinese sentence for a refused action, naming states and actions by their labels."""
    if exc.code in ("stale_version", "concurrent_update") or (
        isinstance(exc, Conflict) and posted_version is not None and posted_version != seen_version
    ):
        return STALE
    if exc.code == "illegal_transition" and exc.details:
        d = exc.details[0]
        state = STATE_LABELS.get(State(d["state"]), d["state"])
        action = ACTION_LABELS.get(Action(d["action"]), d["action"])
        return f"工单当前状态为“{state}”，不能执行“{action}”。请刷新页面查看最新状态。"
    return exc.message


async def _refused(
    request: Request,
    db: DbSession,
    user: Any,
    order: WorkOrder,
    exc: DomainError,
    posted: dict[str, Any],
    posted_version: int | None,
    seen_version: int,
) -> Response:
    # Nothing of the refused request may show: roll back, then read the order afresh.
    await db.rollback()
    await db.refresh(order)
    return await _order_page(
        request,
        db,
        user,
        order,
        posted=posted,
        error=_refusal(exc, posted_version, seen_version),
        status_code=exc.status_code,
    )


@router.post(QUEUE + "/{work_order_id}/actions", dependencies=[Csrf])
async def take_action(request: Request, db: DbSession, user: ConsoleUser, order: ConsoleOrder):
    """One action of the loop (the JSON route's service), then back to the page."""
    form = ActionForm.from_form(await request.form())
    posted = {"kind": form.action, "fields": form.values}
    seen = order.version
    try:
        data = ACTIONS.validate_python(form.body)
    except ValidationError as exc:
        labels = dict(FIELD_LABELS)
        if form.action in ACTION_FORMS:  # name the note as the form does (整改情况, 转办理由…)
            labels["note"] = ACTION_FORMS[form.action][2].split("（")[0]
        return await _order_page(
            request,
            db,
            user,
            order,
            posted=posted,
            error=validation_problem(exc, labels),
            status_code=422,
        )
    try:
        ctx = await loop_context(request, db)
        await wo_service.act(db=db, principal=user, order=order, data=data, ctx=ctx)
    except DomainError as exc:
        return await _refused(request, db, user, order, exc, posted, form.version, seen)
    await db.commit()
    state = STATE_LABELS[State(order.state)]
    flash(request, f"已完成“{ACTION_FORMS[form.action][0]}”，工单状态：{state}")
    try:
        await wo_service.require_visible(db, user, order)
    except Forbidden:
        # Transferred out of the person's area: the order is no longer theirs to open.
        flash(request, f"工单 #{order.id} 已转办，不再由本单位办理")
        return RedirectResponse(QUEUE, status_code=303)
    return RedirectResponse(order_path(order), status_code=303)


@router.post(QUEUE + "/{work_order_id}/attachments", dependencies=[Csrf])
async def upload_attachment(request: Request, db: DbSession, user: Uploader, order: ConsoleOrder):
    """Store an evidence file; the next action on the page cites it."""
    settings = request.app.state.settings
    upload = (await request.form()).get("file")
    posted = {"kind": "upload", "fields": {}}
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("请选择要上传的文件", code="attachment_missing")
        data = await upload.read(settings.attachment_max_bytes + 1)
        await attachment_store.add(
            db=db,
            order=order,
            filename=upload.filename,
            declared=upload.content_type,
            data=data,
            max_bytes=settings.attachment_max_bytes,
            folder=FilePath(settings.upload_dir),
            uploaded_by=user.name,
        )
    except DomainError as exc:
        return await _refused(request, db, user, order, exc, posted, None, order.version)
    await db.commit()
    flash(request, f"附件“{upload.filename}”已上传，将在下一步办理时一并提交")
    return RedirectResponse(order_path(order), status_code=303)


@router.post(QUEUE + "/{work_order_id}/appeal", dependencies=[Csrf])
async def file_appeal(request: Request, db: DbSession, user: ConsoleUser, order: ConsoleOrder):
    """A unit appeals the bad rating of its work order (the JSON route's service)."""
    form = AppealForm.from_form(await request.form())
    posted = {"kind": "appeal", "fields": form.values}
    seen = order.version
    try:
        data = appeal_schemas.AppealCreate.model_validate(form.body(order.evaluation_id))
    except ValidationError as exc:
        return await _order_page(
            request, db, user, order, posted=posted, error=validation_problem(exc), status_code=422
        )
    try:
        if form.version is not None and form.version != seen:
            raise Conflict(STALE, code="stale_version")
        ctx = await loop_context(request, db)
        await appeal_service.file(db=db, principal=user, data=data, ctx=ctx)
    except DomainError as exc:
        return await _refused(request, db, user, order, exc, posted, form.version, seen)
    await db.commit()
    flash(request, "已提出申诉，等待政务服务管理机构复核")
    return RedirectResponse(order_path(order), status_code=303)


# --- appeals ----------------------------------------------------------------------------------

APPEAL_FILTERS = {"pending": "待复核", "upheld": "申诉成立", "rejected": "申诉驳回"}


def _appeals(db: DbSession, user: Any, filters: AppealFilters):
    """The appeal list's page function for these filters (the page and its download)."""

    async def fetch(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        rows, next_cursor = await appeal_queries.appeal_page(
            db=db,
            actor=user,
            state=filters.state_value,
            org_code=filters.org_code or None,
            newest_first=filters.newest_first,
            cursor=cursor,
            limit=limit,
        )
        items = [
            {**views.appeal_view(a), "org_code": code, "org_name": name} for a, code, name in rows
        ]
        return items, next_cursor

    return fetch


async def _appeal_queue(
    request: Request,
    db: DbSession,
    user: Any,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    filters = AppealFilters.from_query(request.query_params, set(APPEAL_FILTERS))
    items, next_cursor = await _appeals(db, user, filters)(filters.cursor, views.PAGE_SIZE)
    return await page(
        request,
        db,
        user,
        "console/appeals.html",
        {
            "title": "申诉复核",
            "items": items,
            "next_cursor": next_cursor,
            "state": filters.state,
            "appeal_filters": filters,
            "filters": APPEAL_FILTERS,
            "order": views.list_order("提出时间", newest_first=filters.newest_first),
            "can_decide": is_manager(user),
            "posted": posted or {},
            "error": error,
            "here": APPEALS
            if posted
            else request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        },
        status_code=status_code,
    )


@router.get(APPEALS)
async def appeal_queue(request: Request, db: DbSession, user: ConsoleUser):
    """Appeals in the person's area; the office decides the pending ones here."""
    return await _appeal_queue(request, db, user)


@router.get(APPEALS + "/export")
async def appeal_export(request: Request, db: DbSession, user: ConsoleUser):
    """The appeals the list's tab and filters show (every page), as Excel, streamed."""
    filters = AppealFilters.from_query(request.query_params, set(APPEAL_FILTERS))
    list_exports.refuse(filters.errors)
    return list_exports.download(
        db=db,
        title="申诉复核",
        columns=list_exports.APPEAL_COLUMNS,
        fetch=_appeals(db, user, filters),
        to_row=list_exports.appeal_row,
    )


@router.post(APPEALS + "/{appeal_id}/decision", dependencies=[Csrf])
async def decide_appeal(appeal_id: Id, request: Request, db: DbSession, user: AppealDecider):
    """The office upholds or rejects an appeal (the JSON route's service)."""
    raw = await request.form()
    form = DecisionForm.from_form(raw)
    back = safe_next(
        raw.get("next") if isinstance(raw.get("next"), str) else None,  # type: ignore[arg-type]
        APPEALS,
    )
    appeal = await appeal_service.get(db=db, principal=user, appeal_id=appeal_id)
    posted = {"kind": "decision", "appeal_id": appeal_id, "fields": form.values}
    status, error = 200, None
    try:
        data = appeal_schemas.AppealDecision.model_validate(form.body())
        ctx = await loop_context(request, db)
        await appeal_service.decide(db=db, principal=user, appeal=appeal, data=data, ctx=ctx)
    except ValidationError as exc:
        status, error = 422, validation_problem(exc, {**FIELD_LABELS, "note": "复核意见"})
    except DomainError as exc:
        await db.rollback()
        status, error = exc.status_code, exc.message
    if error is None:
        await db.commit()
        await request.app.state.register_cache.clear()
        outcome = "申诉成立" if data.decision == "uphold" else "申诉驳回，工单退回整改"
        flash(request, f"已作出复核决定：{outcome}")
        return RedirectResponse(back, status_code=303)
    if back.startswith(QUEUE + "/"):
        order = await wo_service.get_order(db=db, work_order_id=appeal.work_order_id)
        await db.refresh(order)
        return await _order_page(
            request, db, user, order, posted=posted, error=error, status_code=status
        )
    return await _appeal_queue(request, db, user, posted=posted, error=error, status_code=status)
