"""HTML routes of the review queue of suspected fake ratings (疑似刷评复核) in the console: the
queue, a flag with its evidence and the reviewer's decision, and the staff identity register.

The same services as the JSON routes (integrity/api.py); only offices and administrators may
review (the routes' `Reviewer` dependency refuses anyone else with 403). Every POST carries
the CSRF token, commits, and redirects back (PRG); a refusal re-renders the page with its
status and what was typed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.appeals import queries as appeal_queries
from haochaping.console import list_exports, views
from haochaping.console.forms import (
    ALL,
    FlagFilters,
    ReviewForm,
    StaffIdentityForm,
    validation_problem,
)
from haochaping.console.layout import Csrf, console_gate, flash, is_manager, is_partial, page
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.schemas import Id
from haochaping.core.security import mask_text
from haochaping.core.templating import html_route
from haochaping.evaluations.standing import STANDING_LABELS
from haochaping.integrity import detectors, queries, schemas, service
from haochaping.integrity.choices import STATE_LABELS, FlagStage, FlagState
from haochaping.integrity.models import IntegrityFlag
from haochaping.integrity.service import Decision

router = APIRouter(route_class=html_route("console/error.html"))
# Only offices and administrators review flags and record staff identities.
Reviewer = Annotated[Principal, Depends(console_gate(is_manager))]

QUEUE = "/console/integrity"
STAFF = QUEUE + "/staff"
STATES = STATE_LABELS
REVIEW_LABELS = {"decision": "复核决定", "note": "复核意见"}
STAFF_LABELS = {"staff_no": "工号", "cert_no": "身份证号", "phone": "手机号"}
OUTCOMES = {
    Decision.CLEAR: "已排除：评价有效。同一评价没有其他待复核标记时，恢复计入统计",
    Decision.INVALIDATE: "已判定无效：评价保留记录，不计入统计和排名",
}


def flag_path(flag_id: int) -> str:
    return f"{QUEUE}/{flag_id}"


# --- the queue --------------------------------------------------------------------------------


async def _flags(db: DbSession, user: Principal, filters: FlagFilters) -> pagination.PageFetch:
    """The queue's page function for these filters (the page and its download), by raised
    time: open flags oldest first, the others newest first. An unknown unit is a 404, one
    outside the person's area a 403."""
    subtree = await queries.org_path(db, user, filters.org_code) if filters.org_code else None
    stmt = queries.flags(
        actor=user, state=filters.state_value, check=filters.check or None, subtree=subtree
    )

    async def fetch(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        rows, nxt = await pagination.page(
            db,
            stmt,
            key=IntegrityFlag.id,
            time_key=IntegrityFlag.created_at,
            cursor=cursor,
            limit=limit,
            descending=filters.newest_first,
        )
        return [queries.item(r) for r in rows], nxt

    return fetch


async def _queue_page(
    db: DbSession, user: Principal, filters: FlagFilters
) -> tuple[list[dict[str, Any]], str | None, int]:
    """One page of the queue, the next cursor and the status (4xx when a filter is refused)."""
    if filters.errors:
        return [], None, 422
    try:
        fetch = await _flags(db, user, filters)
    except DomainError as exc:  # unknown (404) or outside the person's area (403)
        filters.errors.append(exc.message)
        return [], None, exc.status_code
    items, nxt = await fetch(filters.cursor, views.PAGE_SIZE)
    return items, nxt, 200


@router.get(QUEUE)
async def flag_queue(request: Request, db: DbSession, user: Reviewer):
    """Flags in the reviewer's subtree, oldest first, filtered; htmx gets only the results."""
    labels = detectors.check_labels()
    filters = FlagFilters.from_query(request.query_params, set(STATES), set(labels))
    items, next_cursor, status = await _queue_page(db, user, filters)
    partial = is_partial(request)
    context: dict[str, Any] = {
        "title": "疑似刷评复核",
        "filters": filters,
        "items": items,
        "next_cursor": next_cursor,
        "states": {**STATES, ALL: "全部"},
        "checks": labels,
        "partial": partial,
        "order": views.list_order("标记时间", newest_first=filters.newest_first),
    }
    if partial:
        # htmx swaps only 2xx answers: a refused filter is said inside the fragment instead.
        return await page(
            request, db, user, "console/_integrity_results.html", context, partial=True
        )
    counts = await queries.open_counts(db, user)
    context["counts"] = [
        (name, label, counts[name]) for name, label in labels.items() if counts.get(name)
    ]
    context["open_total"] = sum(counts.values())
    # Ratings held for other reasons (the register of malicious raters) have their own queue.
    context["held_waiting"] = await appeal_queries.held_count(db, user)
    return await page(request, db, user, "console/integrity.html", context, status_code=status)


@router.get(QUEUE + "/export")
async def flag_export(request: Request, db: DbSession, user: Reviewer):
    """The flags the queue's filters show (every page), as Excel, streamed."""
    filters = FlagFilters.from_query(
        request.query_params, set(STATES), set(detectors.check_labels())
    )
    list_exports.refuse(filters.errors)
    return list_exports.download(
        db=db,
        title="疑似刷评复核",
        columns=list_exports.FLAG_COLUMNS,
        fetch=await _flags(db, user, filters),
        to_row=list_exports.flag_row,
    )


# --- the staff identity register (before /{flag_id}: "staff" is not an id) ---------------------


async def _staff_page(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: StaffIdentityForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return await page(
        request,
        db,
        user,
        "console/integrity_staff.html",
        {
            "title": "登记工作人员身份信息",
            "form": form.values if form else {},
            "error": error,
            "registered": await queries.staff_identities(db, user),
            "days": service.RESCAN_DAYS,
            "check_label": detectors.StaffSelfRating.label,
            "self_check": detectors.StaffSelfRating.name,
            "here": STAFF,
        },
        status_code=status_code,
    )


@router.get(STAFF)
async def staff_page(request: Request, db: DbSession, user: Reviewer):
    """The form that records a staff member's ID number and/or phone for the self-rating check."""
    return await _staff_page(request, db, user)


@router.post(STAFF, dependencies=[Csrf])
async def register_staff(request: Request, db: DbSession, user: Reviewer):
    """Record the identity (keyed hashes only) and check the staff member's recent ratings."""
    form = StaffIdentityForm.from_form(await request.form())
    try:
        data = schemas.StaffIdentityIn.model_validate(form.body())
    except ValidationError as exc:
        return await _staff_page(
            request,
            db,
            user,
            form=form,
            status_code=422,
            error=validation_problem(exc, STAFF_LABELS),
        )
    try:
        staff, kinds, flagged = await service.register_staff_identity(
            db=db,
            actor=user,
            keys=request.app.state.keys,
            staff_no=data.staff_no,
            cert_no=data.cert_no,
            phone=data.phone,
        )
    except DomainError as exc:
        await db.rollback()
        return await _staff_page(
            request, db, user, form=form, error=exc.message, status_code=exc.status_code
        )
    await db.commit()
    guard = getattr(request.app.state, "integrity_guard", None)
    if guard is not None:
        guard.identities.invalidate()
    what = "、".join(queries.IDENTITY_KINDS[k] for k in kinds)
    found = f"发现并标记疑似自评 {flagged} 条，请在复核队列中处理" if flagged else "未发现疑似自评"
    flash(
        request,
        f"已登记工作人员 {staff.staff_no} 的{what}（只保存不可还原的摘要）。"
        f"已复查其近 {service.RESCAN_DAYS} 天的评价：{found}",
    )
    return RedirectResponse(STAFF, status_code=303)


# --- one flag -----------------------------------------------------------------------------


def _actor(actor: str, labels: dict[str, str]) -> str:
    """Who changed a standing: a detector (recorded as integrity:<check>) by its label."""
    if actor.startswith("integrity:"):
        name = actor.removeprefix("integrity:")
        return f"系统检测（{labels.get(name, name)}）"
    return actor


async def _flag_page(
    request: Request,
    db: DbSession,
    user: Principal,
    flag: IntegrityFlag,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rules = request.app.state.rules
    labels = detectors.check_labels()
    d = await queries.detail(db=db, actor=user, flag=flag, rules=rules)
    ev = d["evaluation"]
    ev["reason_texts"] = [rules.tags[c].text if c in rules.tags else c for c in ev["reasons"]]
    history = [
        {
            **h,
            "from_label": STANDING_LABELS.get(h["from"], h["from"]),  # type: ignore[call-overload]
            "to_label": STANDING_LABELS.get(h["to"], h["to"]),  # type: ignore[call-overload]
            "reason_label": queries.standing_reason(h["reason"], h["to"]),
            "note": mask_text(h["note"]),
            "actor": _actor(h["actor"], labels),
        }
        for h in d["standing_history"]
    ]
    d["review_note"] = mask_text(d["review_note"])  # as work-order notes: numbers typed masked
    return await page(
        request,
        db,
        user,
        "console/integrity_flag.html",
        {
            "title": f"疑似刷评标记 #{flag.id}",
            "f": d,
            "ev": ev,
            "history": history,
            "evidence": queries.evidence_rows(d["check"], d["evidence"]),
            "stage_label": FlagStage.label_of(d["stage"], d["stage"]),
            "work_order": await queries.work_order_of(db, flag.evaluation_id),
            "is_open": d["state"] == FlagState.OPEN.value,
            "posted": posted or {},
            "error": error,
            "here": flag_path(flag.id),  # a refused POST re-renders here: links come back to GET
        },
        status_code=status_code,
    )


@router.get(QUEUE + "/{flag_id}")
async def flag_page(flag_id: Id, request: Request, db: DbSession, user: Reviewer):
    """A flag: the suspicion and its evidence, the rating (masked), its other flags, the
    history of its standing, and the decision form while the flag is open."""
    flag = await service.get_flag(db=db, actor=user, flag_id=flag_id)
    return await _flag_page(request, db, user, flag)


@router.post(QUEUE + "/{flag_id}/review", dependencies=[Csrf])
async def review_flag(flag_id: Id, request: Request, db: DbSession, user: Reviewer):
    """Clear the flag or invalidate the rating (the JSON route's service), then back."""
    # Refusals of who may see the flag (403/404) come first, as pages of their own.
    flag = await service.get_flag(db=db, actor=user, flag_id=flag_id)
    form = ReviewForm.from_form(await request.form())
    try:
        data = schemas.ReviewIn.model_validate(form.body())
    except ValidationError as exc:
        return await _flag_page(
            request,
            db,
            user,
            flag,
            posted=form.values,
            status_code=422,
            error=validation_problem(exc, REVIEW_LABELS),
        )
    try:
        flag = await service.review(
            db=db, actor=user, flag_id=flag.id, decision=data.decision, note=data.note
        )
    except DomainError as exc:
        # Nothing of the refused decision may show: roll back, then read the flag afresh.
        await db.rollback()
        flag = await service.get_flag(db=db, actor=user, flag_id=flag_id)
        return await _flag_page(
            request,
            db,
            user,
            flag,
            posted=form.values,
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    flash(request, OUTCOMES[data.decision])
    return RedirectResponse(flag_path(flag.id), status_code=303)
