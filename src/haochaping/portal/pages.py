"""HTML routes of the citizen portal: the landing page, the rating page behind a signed,
single-use link, and the progress page of a bad review behind its progress link."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.routing import Match

from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Invalid
from haochaping.core.templating import FONT_COOKIE, FONT_SIZES, html_route, render, safe_next
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import invitations
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import DEFAULT_STAGE
from haochaping.evaluations.models import Invitation
from haochaping.evaluations.schemas import COMMENT_MAX
from haochaping.integrity import detectors
from haochaping.portal import comment_pages, progress_pages, results_pages
from haochaping.portal import queries as portal_queries
from haochaping.portal.forms import RatingForm, validation_problem
from haochaping.portal.progress_pages import CitizenLimit
from haochaping.portal.results_pages import PublicLimit
from haochaping.workorders import citizen
from haochaping.workorders.loop import loop_context

# What a registered rater reads when their region has not set its own notice.
REGISTER_NOTICE = (
    "如您对此有异议，可向办理该事项的政务服务管理机构提出，并提供相关说明和材料；"
    "经核实有误的，将及时更正，您的评价将照常计入统计。"
)

router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))

EXPIRED = "已超过本次服务的评价期限。如有意见，可拨打 12345 政务服务热线反映。"
STOPPED = (
    410,
    "此服务点已停止接受评价",
    "为您办理的服务点（或服务事项、工作人员）已停用，不再接受评价。"
    "如有意见，可拨打 12345 政务服务热线反映。",
)
# Why a link can no longer be used: (status, heading, explanation), by the service's code.
CLOSED = {
    "invitation_used": (409, "您已完成评价", "此链接已使用，每个办件只能评价一次。感谢您的评价！"),
    "duplicate_evaluation": (409, "您已完成评价", "此办件已经评价过了，感谢您的参与！"),
    "invitation_expired": (410, "此评价链接已过期", EXPIRED),
    "evaluation_window_closed": (410, "此评价链接已过期", EXPIRED),
    # The region's policy changed after the link was made.
    "unknown_stage": (
        410,
        "此评价链接已失效",
        "本地区已调整可评价的服务环节，此链接不能再使用。如有意见，可拨打 12345 政务服务热线反映。",
    ),
    "stage_not_reached": (422, "暂时还不能评价", "此环节办结后，即可通过此链接评价。"),
    # The service point, item or staff member was deactivated after the link was made.
    **dict.fromkeys(("org_inactive", "item_inactive", "staff_inactive"), STOPPED),
}


async def _open(request: Request, db: DbSession, token: str) -> Invitation:
    settings = request.app.state.settings
    try:
        return await invitations.open_link(db=db, secret=settings.secret_key, token=token)
    except DomainError as exc:
        await _note_refusal(request, exc.code)  # a forged link, whatever it was used for
        raise


async def _note_refusal(request: Request, code: str) -> None:
    """Tell the integrity checks that this browser was refused a link (forged or spent)."""
    source = evaluation_service.source_of(request)
    await detectors.note_invitation_refusal(
        request.app.state, code=code, source_ip=source.ip, user_agent=source.user_agent
    )


async def _closed(request: Request, code: str, *, submitted: bool = False) -> Response:
    if submitted:  # trying to rate again with a spent link (merely reopening it is harmless)
        await _note_refusal(request, code)
    status, title, message = CLOSED[code]
    return render(
        request,
        "portal/notice.html",
        {"title": title, "message": message, "code": code},
        status_code=status,
    )


async def _form_page(
    request: Request,
    db: DbSession,
    inv: Invitation,
    form: RatingForm,
    error: str | None = None,
    status_code: int = 200,
    stage_label: str | None = None,
) -> Response:
    rules = request.app.state.rules
    summary = await portal_queries.service_summary(db=db, case_id=inv.case_id)
    groups = {
        level: sorted((t for t in rules.tags.values() if t.level == level), key=lambda t: t.code)
        for level in (5, 4, 3, 2, 1)
    }
    return render(
        request,
        "portal/rate.html",
        {
            "title": "服务评价",
            "summary": summary,
            "form": form,
            "error": error,
            "groups": groups,
            "bad_levels": sorted(set(range(1, 6)) - set(rules.good_levels)),
            "comment_max": COMMENT_MAX,
            "stage_label": stage_label if inv.stage != DEFAULT_STAGE else None,
        },
        status_code=status_code,
    )


@router.get("/", dependencies=PublicLimit)
async def landing(request: Request):
    """A short introduction with the ways in: the console, and the public ledger if mounted."""
    return render(
        request,
        "portal/landing.html",
        {"title": "政务服务“好差评”", "ledger": has_page(request, "/ledger")},
    )


def has_page(request: Request, path: str) -> bool:
    """Whether the app answers GET `path` (another domain's page may or may not be mounted)."""
    scope = {
        "type": "http",
        "path": path,
        "method": "GET",
        "root_path": "",
        "path_params": {},
        "headers": [],
    }
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


@router.get("/r/{token}", dependencies=CitizenLimit)
async def rating_page(token: str, request: Request, db: DbSession):
    """The rating form of a link, or why the link cannot be used."""
    inv = await _open(request, db, token)
    problem = invitations.usable_problem(inv, utcnow())
    if problem:
        return await _closed(request, problem)
    try:  # the service point still takes ratings, at the stage as the policy has it today
        await evaluation_service.check_case_open(db=db, case_id=inv.case_id)
        rule = await evaluation_service.check_link_stage(
            db=db,
            case=await invitations.get_case(db, inv.case_id),
            stage=inv.stage,
            rules=request.app.state.rules,
        )
    except DomainError as exc:
        if exc.code not in CLOSED:
            raise
        return await _closed(request, exc.code)
    return await _form_page(request, db, inv, RatingForm(), stage_label=rule.label)


@router.post("/r/{token}", dependencies=CitizenLimit)
async def submit_rating(token: str, request: Request, db: DbSession):
    """Store the citizen's rating (the link is spent), then thank them."""
    form = RatingForm.from_form(await request.form())
    inv = await _open(request, db, token)
    if form.level is None:
        problem = invitations.usable_problem(inv, utcnow())
        if problem:
            return await _closed(request, problem, submitted=True)
        return await _form_page(request, db, inv, form, "请选择您对本次服务的满意程度", 422)
    settings = request.app.state.settings
    try:
        await invitations.submit_via_invitation(
            db=db,
            secret=settings.secret_key,
            token=token,
            level=form.level,
            reasons=form.reasons,
            comment=form.comment,
            rules=request.app.state.rules,
            source=evaluation_service.source_of(request),
        )
    except DomainError as exc:
        # Nothing is committed: the request's session rolls back whatever was written.
        if exc.code in CLOSED:
            return await _closed(request, exc.code, submitted=True)
        if not isinstance(exc, Invalid):
            raise
        return await _form_page(request, db, inv, form, exc.message, 422)
    except ValidationError as exc:
        return await _form_page(request, db, inv, form, validation_problem(exc), 422)
    await db.commit()
    return RedirectResponse(f"/r/{token}/thanks", status_code=303)


@router.get("/r/{token}/thanks", dependencies=CitizenLimit)
async def thanks(token: str, request: Request, db: DbSession):
    """The thank-you page after a rating; an unused link goes back to its form."""
    inv = await _open(request, db, token)
    if inv.used_at is None:
        return RedirectResponse(f"/r/{token}", status_code=303)
    level = await portal_queries.rated_level(db=db, evaluation_id=inv.evaluation_id)
    rules = request.app.state.rules
    # A bad review opened a work order: the rater may follow it on the progress page.
    ctx = await loop_context(request, db)
    progress = await citizen.progress_path(db=db, ctx=ctx, evaluation_id=inv.evaluation_id)
    # Held because the rater is on the register: they are told so, and how to object.
    register_notice = None
    region = await portal_queries.register_hold_region(db=db, evaluation_id=inv.evaluation_id)
    if region is not None:
        try:
            values, _ = await request.app.state.policy_cache.get(db, region)
            register_notice = values.register_notice or REGISTER_NOTICE
        except DomainError:  # an organisation outside the region tree
            register_notice = REGISTER_NOTICE
    return render(
        request,
        "portal/thanks.html",
        {
            "title": "谢谢您的评价",
            "level": level,
            "is_bad": level is not None and rules.is_bad(level),
            "progress": progress,
            "evaluation_id": inv.evaluation_id,
            "register_notice": register_notice,
            # The rating's inclusion proof in the public ledger, when that page is mounted.
            "proof": inv.evaluation_id is not None
            and has_page(request, f"/ledger/evaluations/{inv.evaluation_id}"),
        },
    )


@router.get("/r/{token}/qr.svg", dependencies=CitizenLimit)
async def qr_code(token: str, request: Request, db: DbSession):
    """The QR code of a genuine rating link, to print on a receipt or show at the window."""
    await _open(request, db, token)
    base = request.app.state.settings.base_url.rstrip("/")
    return qr_svg(f"{base}/r/{token}")


@router.get("/font")
async def choose_font(size: str = "normal", next: str | None = None):
    """Remember the chosen font size (适老化大字模式) without JavaScript, then go back."""
    response = RedirectResponse(safe_next(next, "/console"), status_code=303)
    if size in FONT_SIZES:
        response.set_cookie(FONT_COOKIE, size, max_age=365 * 86400, samesite="lax", httponly=False)
    return response


router.include_router(progress_pages.router)
router.include_router(results_pages.router)
router.include_router(comment_pages.router)


def qr_svg(url: str) -> Response:
    """A QR code of a link, as SVG."""
    svg = segno.make(url, error="m").svg_inline(scale=6, border=2, title="扫码评价")
    return Response(
        svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"}
    )
