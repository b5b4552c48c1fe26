"""The rater's progress page (/p/<token>): the public steps of their bad review, the unit's
answer, their verdict on it, and the one follow-up rating. What is public, and what the rater
may do, is decided in `workorders.citizen`; these handlers only parse, call and render."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.ratelimit import limiter
from haochaping.core.templating import html_route, render
from haochaping.evaluations.schemas import COMMENT_MAX
from haochaping.portal import queries as portal_queries
from haochaping.portal.forms import RatingForm, validation_problem
from haochaping.workorders import citizen
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.choices import VERDICT_LABELS
from haochaping.workorders.loop import loop_context
from haochaping.workorders.models import WorkOrder

router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))
# Rating and progress links: a citizen's phone, a few requests a minute (per IP).
CitizenLimit = [Depends(limiter("citizen", "rate_citizen_per_minute"))]
DONE = {
    "verdict": "您的意见已提交，感谢您的反馈！",
    "followup": "您的追加评价已提交，感谢您的反馈！",
}
NOTE_MAX = 2000


async def _order(request: Request, db: DbSession, token: str) -> WorkOrder:
    return await citizen.order_for_token(db=db, settings=request.app.state.settings, token=token)


async def _page(
    request: Request,
    db: DbSession,
    token: str,
    order: WorkOrder,
    *,
    verdict: dict | None = None,
    followup: RatingForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    status_code: int = 200,
) -> Response:
    view = await citizen.progress(db=db, order=order)
    summary = (
        await portal_queries.service_summary(db=db, case_id=view.case_id)
        if view.case_id is not None
        else None
    )
    rules = request.app.state.rules
    groups = {
        level: sorted((t for t in rules.tags.values() if t.level == level), key=lambda t: t.code)
        for level in (5, 4, 3, 2, 1)
    }
    done = DONE.get(request.query_params.get("done", "")) if error is None else None
    return render(
        request,
        "portal/progress.html",
        {
            "title": "评价办理进度",
            "token": token,
            "view": view,
            "summary": summary,
            "verdicts": VERDICT_LABELS,
            "verdict": verdict or {},
            "form": followup or RatingForm(),
            "groups": groups,
            "bad_levels": sorted(set(range(1, 6)) - set(rules.good_levels)),
            "comment_max": COMMENT_MAX,
            "note_max": NOTE_MAX,
            "error": error,
            "error_at": error_at,
            "done": done,
            "here": f"/p/{token}",
        },
        status_code=status_code,
    )


@router.get("/p/{token}", dependencies=CitizenLimit)
async def progress_page(token: str, request: Request, db: DbSession):
    """The public progress of the rater's bad review, and what they may do now."""
    order = await _order(request, db, token)
    return await _page(request, db, token, order)


@router.post("/p/{token}/verdict", dependencies=CitizenLimit)
async def give_verdict(token: str, request: Request, db: DbSession):
    """The rater's answer to the callback: 满意 / 基本满意 / 不满意."""
    form = await request.form()
    values: dict[str, str] = {}
    for k in ("verdict", "note", "version"):
        v = form.get(k)
        values[k] = v if isinstance(v, str) else ""
    values["note"] = values["note"].replace("\r\n", "\n")[: NOTE_MAX + 1]
    order = await _order(request, db, token)
    version = str(values["version"]).strip()
    try:
        data = wo_schemas.CitizenVerdictIn.model_validate(
            {"verdict": values["verdict"] or None, "note": values["note"] or None}
        )
        await citizen.give_verdict(
            db=db, order=order, data=data, version=int(version) if version.isdigit() else None
        )
    except ValidationError as exc:
        message = "请选择您对整改结果的意见" if not values["verdict"] else validation_problem(exc)
        if values["verdict"] and len(values["note"]) > NOTE_MAX:
            message = f"补充说明不能超过 {NOTE_MAX} 字"
        return await _page(
            request,
            db,
            token,
            order,
            verdict=values,
            error=message,
            error_at="verdict",
            status_code=422,
        )
    except DomainError as exc:
        await db.rollback()
        await db.refresh(order)
        message = exc.message
        if exc.code in ("stale_version", "concurrent_update"):
            message = "办理进度已更新，请查看最新进度后再提交"
        return await _page(
            request,
            db,
            token,
            order,
            verdict=values,
            error=message,
            error_at="verdict",
            status_code=exc.status_code,
        )
    await db.commit()
    return RedirectResponse(f"/p/{token}?done=verdict", status_code=303)


@router.post("/p/{token}/follow-up", dependencies=CitizenLimit)
async def follow_up(token: str, request: Request, db: DbSession):
    """The rater's one follow-up rating (追评) after the unit has answered."""
    form = RatingForm.from_form(await request.form())
    order = await _order(request, db, token)
    if form.level is None:
        return await _page(
            request,
            db,
            token,
            order,
            followup=form,
            error_at="followup",
            error="请选择您对整改后服务的满意程度",
            status_code=422,
        )
    try:
        data = wo_schemas.FollowUpIn.model_validate(
            {"level": form.level, "reasons": form.reasons, "comment": form.comment or None}
        )
        ctx = await loop_context(request, db)
        await citizen.add_follow_up(
            db=db,
            order=order,
            data=data,
            rules=request.app.state.rules,
            ctx=ctx,
            source_ip=request.client.host if request.client else None,
        )
    except ValidationError as exc:
        return await _page(
            request,
            db,
            token,
            order,
            followup=form,
            error_at="followup",
            error=validation_problem(exc),
            status_code=422,
        )
    except DomainError as exc:
        await db.rollback()
        await db.refresh(order)
        return await _page(
            request,
            db,
            token,
            order,
            followup=form,
            error_at="followup",
            error=exc.message,
            status_code=exc.status_code,
        )
    await db.commit()
    return RedirectResponse(f"/p/{token}?done=followup", status_code=303)
