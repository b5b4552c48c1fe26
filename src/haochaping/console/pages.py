"""HTML routes of the console (管理端): sign-in and the list of ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from haochaping.accounts import service as account_service
from haochaping.accounts.choices import ROLE_LABELS
from haochaping.console import queries as console_queries
from haochaping.console.forms import EvaluationFilters
from haochaping.core.auth import Principal, load_user_principal
from haochaping.core.db import DbSession
from haochaping.core.errors import NotFound, Unauthenticated
from haochaping.core.templating import (
    LoginRequired,
    csrf_token,
    html_route,
    render,
    safe_next,
    verify_csrf,
)
from haochaping.evaluations.choices import CHANNEL_LABELS

router = APIRouter(include_in_schema=False, route_class=html_route("console/error.html"))

HOME = "/console/evaluations"
# The console's navigation: (path, label); other domains add their pages here.
NAV = [(HOME, "评价记录")]


async def console_user(request: Request, db: DbSession) -> Principal:
    """The signed-in person, or a redirect to the sign-in page."""
    uid = request.session.get("uid")
    principal = await load_user_principal(db, int(uid)) if uid else None
    if principal is None:
        raise LoginRequired()
    return principal


ConsoleUser = Annotated[Principal, Depends(console_user)]
Csrf = Depends(verify_csrf)


def page(request: Request, user: Principal, name: str, context: dict, **kwargs):
    """A console page inside the signed-in layout."""
    return render(request, name, {"user": user, "role_label": ROLE_LABELS.get(user.role, ""),
                                  "nav": NAV, "csrf": csrf_token(request), **context}, **kwargs)


@router.get("/login")
async def login_form(request: Request, next: str | None = None):
    """The sign-in form."""
    return render(request, "console/login.html",
                  {"csrf": csrf_token(request), "next": safe_next(next, HOME), "username": ""})


@router.post("/login", dependencies=[Csrf])
async def login(request: Request, db: DbSession, username: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""):
    """Check the credentials and start a session; the form again on failure."""
    target = safe_next(next, HOME)
    context = {"csrf": csrf_token(request), "next": target, "username": username[:64]}
    if not username.strip() or not password:
        return render(request, "console/login.html", {**context, "error": "请输入用户名和密码"},
                      status_code=422)
    try:
        user = await account_service.authenticate(db=db, username=username.strip(),
                                                  password=password)
    except Unauthenticated as exc:
        return render(request, "console/login.html", {**context, "error": exc.message},
                      status_code=401)
    finally:
        await db.commit()  # keep the failed-login count even when refusing
    request.session.clear()
    request.session["uid"] = user.id
    csrf_token(request)  # a fresh token for the new session
    return RedirectResponse(target, status_code=303)


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request):
    """End the session."""
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/console")
async def console_home():
    return RedirectResponse(HOME, status_code=303)


@router.get(HOME)
async def evaluation_list(request: Request, db: DbSession, user: ConsoleUser):
    """Recent ratings in the user's subtree, filtered; htmx gets only the results."""
    filters = EvaluationFilters.from_query(request.query_params)
    result = await console_queries.evaluation_page(db=db, actor=user, filters=filters,
                                                   rules=request.app.state.rules)
    partial = (request.headers.get("hx-request") == "true"
               and not request.headers.get("hx-history-restore-request"))
    context = {"filters": filters, "page": result, "channels": CHANNEL_LABELS, "partial": partial}
    name = "console/_results.html" if partial else "console/evaluations.html"
    return page(request, user, name, context)


@router.get("/console/{rest:path}")
async def console_not_found(rest: str):
    raise NotFound("您访问的页面不存在")
