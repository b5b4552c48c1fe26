"""HTML routes of the review of held ratings (待复核评价) in the console: ratings held out of
the statistics for a reason other than the detectors (today: the rater is on the register of
malicious raters, 恶意评价人员信息库), and the reviewer's decision on each.

The same service as the JSON route (appeals.service.review_held); only offices and
administrators may review. Every POST carries the CSRF token, commits, and redirects back
(PRG); a refusal re-renders the queue with its status and what was typed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.appeals import queries as appeal_queries
from haochaping.appeals import service as appeal_service
from haochaping.appeals.schemas import StandingDecision  # the JSON route's contract, shared
from haochaping.console import views
from haochaping.console.forms import HeldFilters, HeldReviewForm, validation_problem
from haochaping.console.layout import Csrf, ManagerConsoleUser, flash, is_partial, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.evaluations.choices import CHANNEL_LABELS
from haochaping.evaluations.standing import Standing
from haochaping.integrity import queries as integrity_queries

router = APIRouter(route_class=html_route("console/error.html"))

HELD = "/console/held"
REVIEW_LABELS = {"standing": "复核决定", "note": "复核意见"}
OUTCOMES = {
    Standing.VALID: "评价 #{id} 已复核为有效：计入统计",
    Standing.INVALID: "评价 #{id} 已复核为无效：保留记录，不计入统计和排名；"
    "如有未结束的差评工单，已随之结束",
}


def _back(value: str) -> str:
    """Where to return after a decision: the queue, with the filters it was showing."""
    if value == HELD or (value.startswith(HELD + "?") and "//" not in value):
        return value
    return HELD


async def _held_page(
    request: Request,
    db: DbSession,
    user: Principal,
    filters: HeldFilters,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    items: list[dict[str, Any]] = []
    next_cursor = None
    subtree = None
    if filters.org_code:
        try:
            subtree = await integrity_queries.org_path(db, user, filters.org_code)
        except DomainError as exc:  # unknown (404) or outside the person's area (403)
            filters.errors.append(exc.message)
            status_code = exc.status_code if status_code == 200 else status_code
    if not filters.errors:
        rows, next_cursor = await appeal_queries.held_page(
            db=db,
            actor=user,
            subtree=subtree,
            cursor=filters.cursor,
            rules=request.app.state.rules,
            limit=views.PAGE_SIZE,
        )
        items = [views.held_view(i) for i in rows]
    posted = posted or {}
    partial = is_partial(request)
    context: dict[str, Any] = {
        "title": "待复核评价",
        "filters": filters,
        "items": items,
        "next_cursor": next_cursor,
        "channels": CHANNEL_LABELS,
        "partial": partial,
        "posted": posted,
        "error": error,
        # A refusal about a rating still listed is said beside its form, else at the top.
        "error_in_list": bool(error) and any(i["id"] == posted.get("id") for i in items),
        "back": HELD + ("?" + request.url.query if request.url.query else ""),
    }
    if partial:
        return await page(request, db, user, "console/_held_results.html", context, partial=True)
    context["waiting"] = await appeal_queries.held_count(db, user)
    return await page(request, db, user, "console/held.html", context, status_code=status_code)


@router.get(HELD)
async def held_queue(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Held ratings in the reviewer's subtree, newest first; htmx gets only the results."""
    return await _held_page(request, db, user, HeldFilters.from_query(request.query_params))


@router.post(HELD + "/{evaluation_id}/review", dependencies=[Csrf])
async def review_held(evaluation_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """The reviewer's decision (the JSON route's service), then back to the queue."""
    raw = await request.form()
    form = HeldReviewForm.from_form(raw)
    back = _back(str(raw.get("back") or ""))
    filters = HeldFilters.from_query(request.query_params)
    posted = {"id": evaluation_id, **form.values}
    error = form.missing()
    if error is None:
        try:
            data = StandingDecision.model_validate(form.body())
        except ValidationError as exc:
            error = validation_problem(exc, REVIEW_LABELS)
    if error is not None:
        return await _held_page(
            request, db, user, filters, posted=posted, error=error, status_code=422
        )
    try:
        decision = await appeal_service.review_held(
            db=db, actor=user, evaluation_id=evaluation_id, standing=data.standing, note=data.note
        )
    except DomainError as exc:
        await db.rollback()  # nothing of the refused decision may show
        return await _held_page(
            request,
            db,
            user,
            filters,
            posted=posted,
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    flash(request, OUTCOMES[decision].format(id=evaluation_id))
    return RedirectResponse(back, status_code=303)
