"""HTML routes of calling citizens in the console: the spot-check queue (抽查回访) with its
verdict form, and the rater's number revealed on the work-order page (查看号码).

The same services as the JSON routes (`workorders.spotchecks.record`,
`workorders.contact.reveal_phone`): a dissatisfied spot-check answer opens a work order
exactly as the API does, and every reveal writes its audit row. A revealed number is only in
the answer to the POST (never stored, never in a list); the fragment masks it again after
`contact.REVEAL_SECONDS`, and a reload shows it masked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.console import list_exports, views
from haochaping.console.forms import SpotCheckFilters, SpotCheckForm, validation_problem
from haochaping.console.layout import Csrf, console_gate, flash, is_partial, page
from haochaping.console.loop_pages import ConsoleOrder, order_path
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, NotFound
from haochaping.core.roles import HANDLERS
from haochaping.core.schemas import Id
from haochaping.core.security import mask_phone
from haochaping.core.templating import html_route
from haochaping.evaluations.choices import CHANNEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders import contact, spotchecks
from haochaping.workorders import queries as wo_queries
from haochaping.workorders.choices import STAFF_CALLBACK_METHODS, VERDICT_LABELS
from haochaping.workorders.loop import loop_context
from haochaping.workorders.models import SpotCheck, WorkOrder
from haochaping.workorders.schemas import SpotCheckCallbackIn
from haochaping.workorders.states import OPEN_STATES, State

router = APIRouter(route_class=html_route("console/error.html"))

SPOT_CHECKS = "/console/spot-checks"
PHONE = "/console/work-orders/{work_order_id}/phone"
SPOT_PHONE = SPOT_CHECKS + "/{spot_check_id}/phone"
SPOT_LABELS = {
    "method": "回访方式",
    "reached": "是否联系上",
    "verdict": "评价人意见",
    "note": "回访情况",
}
REASON_MISSING = "请填写查看号码的事由（如：回访评价人、核实情况）"


def is_handler(user: Principal) -> bool:
    """A person who handles bad ratings: an office, an administrator or a unit (the API's
    `HandlerUser`)."""
    return user.has_role(*HANDLERS)


# Who may call citizens back from the console, by role alone (the data rules — scope, a check
# still pending — stay in the services).
HandlerConsoleUser = Annotated[
    Principal,
    Depends(console_gate(is_handler, "抽查回访仅供政务服务管理机构、系统管理员和责任单位使用")),
]


# --- the spot-check queue ---------------------------------------------------------------------


def _spot_checks(db: DbSession, user: Principal, filters: SpotCheckFilters):
    """The queue's page function for these filters (the page and its download)."""

    async def fetch(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        return await wo_queries.spot_check_page(
            db=db,
            actor=user,
            state=filters.state,
            org_code=filters.org_code or None,
            cursor=cursor,
            limit=limit,
        )

    return fetch


async def _spot_page(
    request: Request,
    db: DbSession,
    user: Principal,
    filters: SpotCheckFilters,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    items: list[dict[str, Any]] = []
    next_cursor = None
    if not filters.errors:
        items, next_cursor = await _spot_checks(db, user, filters)(filters.cursor, views.PAGE_SIZE)
    posted = posted or {}
    partial = is_partial(request)
    context: dict[str, Any] = {
        "title": "抽查回访",
        "filters": filters,
        "items": items,
        "next_cursor": next_cursor,
        "channels": CHANNEL_LABELS,
        "methods": {m.value: m.label for m in STAFF_CALLBACK_METHODS},
        "verdicts": VERDICT_LABELS,
        "partial": partial,
        "posted": posted,
        "error": error,
        "error_in_list": bool(error) and any(i["id"] == posted.get("id") for i in items),
        "order": views.list_order("抽取时间", newest_first=filters.state == "done"),
        "back": SPOT_CHECKS + ("?" + request.url.query if request.url.query else ""),
    }
    if filters.errors and status_code == 200:
        status_code = 422
    if partial:
        return await page(
            request,
            db,
            user,
            "console/_spot_check_results.html",
            context,
            status_code=status_code,
            partial=True,
        )
    context["waiting"] = await wo_queries.spot_check_count(db, user)
    return await page(
        request, db, user, "console/spot_checks.html", context, status_code=status_code
    )


def _back(value: str) -> str:
    """Where to return after a call: the queue, with the tab it was showing."""
    if value == SPOT_CHECKS or (value.startswith(SPOT_CHECKS + "?") and "//" not in value):
        return value
    return SPOT_CHECKS


@router.get(SPOT_CHECKS)
async def spot_check_queue(request: Request, db: DbSession, user: HandlerConsoleUser):
    """Sampled good ratings to call back in the person's subtree, the pending ones first
    (oldest first); htmx gets only the results."""
    return await _spot_page(request, db, user, SpotCheckFilters.from_query(request.query_params))


@router.get(SPOT_CHECKS + "/export")
async def spot_check_export(request: Request, db: DbSession, user: HandlerConsoleUser):
    """The spot checks the queue's tab and filters show (every page), as Excel, streamed."""
    filters = SpotCheckFilters.from_query(request.query_params)
    list_exports.refuse(filters.errors)
    return list_exports.download(
        db=db,
        title="抽查回访",
        columns=list_exports.SPOT_CHECK_COLUMNS,
        fetch=_spot_checks(db, user, filters),
        to_row=list_exports.spot_check_row,
    )


@router.post(SPOT_CHECKS + "/{spot_check_id}/callback", dependencies=[Csrf])
async def record_spot_check(
    spot_check_id: Id, request: Request, db: DbSession, user: HandlerConsoleUser
):
    """Record a spot-check call (the JSON route's service); a dissatisfied citizen opens a
    work order. Then back to the queue."""
    raw = await request.form()
    form = SpotCheckForm.from_form(raw)
    back = _back(str(raw.get("back") or ""))
    filters = SpotCheckFilters.from_query(request.query_params)
    posted = {"id": spot_check_id, **form.values}
    error = form.missing()
    if error is None:
        try:
            data = SpotCheckCallbackIn.model_validate(form.body())
        except ValidationError as exc:
            error = validation_problem(exc, SPOT_LABELS)
    if error is not None:
        return await _spot_page(
            request, db, user, filters, posted=posted, error=error, status_code=422
        )
    try:
        ctx = await loop_context(request, db)
        result = await spotchecks.record(
            db=db, principal=user, spot_check_id=spot_check_id, data=data, ctx=ctx
        )
    except DomainError as exc:
        await db.rollback()  # nothing of the refused call may show
        return await _spot_page(
            request,
            db,
            user,
            filters,
            posted=posted,
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    if result.get("work_order_id"):
        flash(
            request,
            f"抽查 #{spot_check_id} 已回访：评价人不满意，已生成差评工单 "
            f"#{result['work_order_id']}",
        )
    elif data.reached:
        verdict = VERDICT_LABELS.get(data.verdict or "", "")
        flash(request, f"抽查 #{spot_check_id} 已回访：评价人{verdict}")
    else:
        flash(request, f"抽查 #{spot_check_id} 本次未联系上评价人，已记录，仍在待回访中")
    return RedirectResponse(back, status_code=303)


# --- the rater's number on the work-order page and in the spot-check queue ------------------


async def _phone(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    evaluation_id: int,
    open_: bool,
    phone_url: str,
    back: str,
    back_label: str,
    revealed: dict[str, Any] | None = None,
    error: str | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Response:
    ev = await db.get(Evaluation, evaluation_id)
    context = {
        "masked": mask_phone(ev.rater_phone) if ev is not None else None,
        "open": open_,
        "seconds": contact.REVEAL_SECONDS,
        "minutes": contact.REVEAL_SECONDS // 60,
        "phone_url": phone_url,
        "revealed": revealed,
        "error": error,
        "reason": reason,
        "title": f"{back_label} 评价人号码",
        "back": back,
        "back_label": back_label,
    }
    partial = is_partial(request)
    name = "console/_phone.html" if partial else "console/phone.html"
    return await page(request, db, user, name, context, status_code=status_code, partial=partial)


def _order_phone(order: WorkOrder) -> dict[str, Any]:
    return {
        "evaluation_id": order.evaluation_id,
        "open_": State(order.state) in OPEN_STATES,
        "phone_url": PHONE.format(work_order_id=order.id),
        "back": order_path(order),
        "back_label": f"差评工单 #{order.id}",
    }


async def _reason(request: Request) -> str:
    raw = await request.form()
    return str(raw.get("reason") or "").strip()[: contact.REASON_MAX]


@router.get(PHONE)
async def phone_masked(
    request: Request, db: DbSession, user: HandlerConsoleUser, order: ConsoleOrder
):
    """The rater's number masked, with the 查看号码 form (the revealed number's fragment
    comes back here when its time is up)."""
    return await _phone(request, db, user, **_order_phone(order))


@router.post(PHONE, dependencies=[Csrf])
async def reveal_phone(
    request: Request, db: DbSession, user: HandlerConsoleUser, order: ConsoleOrder
):
    """Reveal the rater's number for the call, with the reason on record (the JSON route's
    service and audit row)."""
    where = _order_phone(order)
    reason = await _reason(request)
    if not reason:
        return await _phone(request, db, user, **where, error=REASON_MISSING, status_code=422)
    try:
        body = await contact.reveal_phone(
            db=db,
            principal=user,
            order=order,
            source_ip=request.client.host if request.client else None,
            reason=reason,
        )
    except DomainError as exc:
        await db.rollback()
        refused: dict[str, Any] = {
            "error": exc.message,
            "reason": reason,
            "status_code": exc.status_code,
        }
        return await _phone(request, db, user, **where, **refused)
    await db.commit()
    return await _phone(request, db, user, **where, revealed=body)


async def _spot_check(db: DbSession, spot_check_id: int) -> SpotCheck:
    check = await db.get(SpotCheck, spot_check_id)
    if check is None:
        raise NotFound("抽查任务不存在", code="spot_check_not_found")
    return check


def _spot_phone(check: SpotCheck) -> dict[str, Any]:
    return {
        "evaluation_id": check.evaluation_id,
        "open_": check.state == "pending",
        "phone_url": SPOT_PHONE.format(spot_check_id=check.id),
        "back": SPOT_CHECKS,
        "back_label": f"抽查 #{check.id}",
    }


@router.get(SPOT_PHONE)
async def spot_phone_masked(
    spot_check_id: Id, request: Request, db: DbSession, user: HandlerConsoleUser
):
    """A sampled rating's rater's number masked, with the 查看号码 form."""
    check = await _spot_check(db, spot_check_id)
    org = await db.get(Org, check.org_id)
    user.require(org.path)  # type: ignore[union-attr]
    return await _phone(request, db, user, **_spot_phone(check))


@router.post(SPOT_PHONE, dependencies=[Csrf])
async def reveal_spot_phone(
    spot_check_id: Id, request: Request, db: DbSession, user: HandlerConsoleUser
):
    """Reveal a sampled rating's rater's number for the spot-check call, with the reason on
    record."""
    check = await _spot_check(db, spot_check_id)
    where = _spot_phone(check)
    reason = await _reason(request)
    try:
        if not reason:
            org = await db.get(Org, check.org_id)
            user.require(org.path)  # type: ignore[union-attr]
            return await _phone(request, db, user, **where, error=REASON_MISSING, status_code=422)
        body = await contact.reveal_spot_check_phone(
            db=db,
            principal=user,
            check=check,
            source_ip=request.client.host if request.client else None,
            reason=reason,
        )
    except DomainError as exc:
        await db.rollback()
        if exc.status_code == 403:
            raise
        refused: dict[str, Any] = {
            "error": exc.message,
            "reason": reason,
            "status_code": exc.status_code,
        }
        return await _phone(request, db, user, **where, **refused)
    await db.commit()
    return await _phone(request, db, user, **where, revealed=body)
