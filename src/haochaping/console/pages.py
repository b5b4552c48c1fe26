"""HTML routes of the console (管理端): sign-in and the list of ratings; the closed loop,
appeals, the settings pages and the review queue of suspected fake ratings come from their
own modules, mounted here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from haochaping.accounts import service as account_service
from haochaping.console import (
    admin_pages,
    appraisal_pages,
    callback_pages,
    dashboard_pages,
    directory_pages,
    held_pages,
    inspection_pages,
    integrity_pages,
    list_exports,
    loop_pages,
    pad_pages,
    register_pages,
    report_pages,
    upstream_pages,
    views,
)
from haochaping.console.forms import EvaluationFilters
from haochaping.console.layout import HOME, ConsoleUser, Csrf, is_partial, page
from haochaping.core.auth import Principal, session_principal, start_session
from haochaping.core.db import DbSession
from haochaping.core.errors import NotFound, RateLimited, Unauthenticated
from haochaping.core.ratelimit import client_ip, limiter
from haochaping.core.templating import csrf_token, html_route, render, safe_next
from haochaping.evaluations import queries as evaluation_queries
from haochaping.evaluations.choices import CHANNEL_LABELS

router = APIRouter(include_in_schema=False, route_class=html_route("console/error.html"))
LoginLimit = Depends(limiter("login", "rate_login_per_minute"))


@router.get("/login")
async def login_form(request: Request, next: str | None = None):
    """The sign-in form."""
    return render(
        request,
        "console/login.html",
        {"csrf": csrf_token(request), "next": safe_next(next, HOME), "username": ""},
    )


@router.post("/login", dependencies=[LoginLimit, Csrf])
async def login(
    request: Request,
    db: DbSession,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
):
    """Check the credentials and start a session; the form again on failure.

    Per IP at most `rate_login_per_minute` attempts; a username with repeated failures is
    locked for a while (the same guard as the token route), even for the right password."""
    target = safe_next(next, HOME)
    context = {"csrf": csrf_token(request), "next": target, "username": username[:64]}
    name = username.strip()[:64]
    if not name or not password:
        return render(
            request,
            "console/login.html",
            {**context, "error": "请输入用户名和密码"},
            status_code=422,
        )
    guard = request.app.state.login_guard
    try:
        user = await account_service.sign_in(
            db=db, guard=guard, username=name, password=password, source_ip=client_ip(request)
        )
    except RateLimited as exc:
        wait = exc.details[0]["retry_after_seconds"] if exc.details else guard.window
        return render(
            request,
            "console/login.html",
            {**context, "error": exc.message},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    except Unauthenticated as exc:
        return render(
            request, "console/login.html", {**context, "error": exc.message}, status_code=401
        )
    finally:
        await db.commit()  # keep the failed-login count even when refusing
    start_session(request, user)
    csrf_token(request)  # a fresh token for the new session
    return RedirectResponse(target, status_code=303)


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request, db: DbSession):
    """End the session, and every other session and token of the person (a copied cookie
    must not outlive the sign-out)."""
    principal = await session_principal(request, db)
    if principal is not None:
        await account_service.sign_out(db=db, user_id=principal.id)
        await db.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/console")
async def console_home():
    return RedirectResponse(HOME, status_code=303)


def _ratings(request: Request, db: DbSession, user: Principal, filters: EvaluationFilters):
    """The rating list's page function for these filters (the page and its download)."""

    async def fetch(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = await evaluation_queries.evaluation_page(
            db=db,
            actor=user,
            rules=request.app.state.rules,
            case_no=filters.case_no or None,
            org_code=filters.org_code or None,
            item_code=filters.item_code or None,
            level=filters.level,
            channel=filters.channel,
            since=filters.since_at,
            until=filters.until_at,
            cursor=cursor,
            limit=limit,
        )
        return [views.evaluation_view(i) for i in items], next_cursor

    return fetch


@router.get(HOME)
async def evaluation_list(request: Request, db: DbSession, user: ConsoleUser):
    """Ratings in the user's subtree, the latest rating time first, filtered; htmx gets only
    the results."""
    filters = EvaluationFilters.from_query(request.query_params)
    items, next_cursor = await _ratings(request, db, user, filters)(filters.cursor, views.PAGE_SIZE)
    result = views.EvaluationPage(items, next_cursor)
    partial = is_partial(request)
    context = {
        "filters": filters,
        "page": result,
        "channels": CHANNEL_LABELS,
        "partial": partial,
        "order": views.ORDER_RATINGS,
    }
    name = "console/_results.html" if partial else "console/evaluations.html"
    return await page(request, db, user, name, context, partial=partial)


@router.get(HOME + "/export")
async def evaluation_export(request: Request, db: DbSession, user: ConsoleUser):
    """The ratings the list's filters show (every page), as Excel, streamed."""
    filters = EvaluationFilters.from_query(request.query_params)
    list_exports.refuse(filters.errors)
    return list_exports.download(
        db=db,
        title="评价记录",
        columns=list_exports.RATING_COLUMNS,
        fetch=_ratings(request, db, user, filters),
        to_row=list_exports.rating_row,
    )


router.include_router(loop_pages.router)
router.include_router(admin_pages.router)
router.include_router(integrity_pages.router)
router.include_router(held_pages.router)
router.include_router(dashboard_pages.router)
router.include_router(callback_pages.router)
router.include_router(directory_pages.router)
router.include_router(register_pages.router)
router.include_router(pad_pages.router)
router.include_router(report_pages.router)
router.include_router(appraisal_pages.router)
router.include_router(upstream_pages.router)
router.include_router(inspection_pages.router)


@router.get("/console/{rest:path}")
async def console_not_found(rest: str):
    raise NotFound("您访问的页面不存在")
