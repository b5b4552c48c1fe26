"""The shared Jinja2 environment of the HTML pages, their CSRF tokens and HTML error pages."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, PrefixLoader, select_autoescape

from haochaping import __version__
from haochaping.core.errors import DomainError, Forbidden
from haochaping.core.timeutil import fmt_local

PACKAGE = Path(__file__).resolve().parent.parent
FONT_COOKIE = "hcp_font"
# Font sizes of the large-font mode (适老化): the whole UI is sized in rem, so it scales.
FONT_SIZES = {"normal": "标准", "large": "大", "xlarge": "特大"}
CSRF_FIELD = "csrf_token"
# Pages only ever load their own CSS and JS; no page may be framed (a framed rating page
# could be clickjacked), and rating links must not leak through the Referer header.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=PrefixLoader(
        {
            "console": FileSystemLoader(PACKAGE / "console" / "templates"),
            "portal": FileSystemLoader(PACKAGE / "portal" / "templates"),
            "ledger": FileSystemLoader(PACKAGE / "ledger" / "templates"),
            "pads": FileSystemLoader(PACKAGE / "pads" / "templates"),
        }
    ),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["local"] = fmt_local
_env.globals.update(FONT_SIZES=FONT_SIZES, CSRF_FIELD=CSRF_FIELD, VERSION=__version__)
templates = Jinja2Templates(env=_env)


def add_globals(**values: Any) -> None:
    """Constant names every template may use that come from the domains (the evaluations'
    level and channel labels): core may not import a domain, so `create_app` passes them."""
    _env.globals.update(values)


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    message = "页面已失效或请求来源无法验证，请返回刷新页面后重试"


class LoginRequired(DomainError):
    """Raised by page dependencies when nobody is signed in; answered with a redirect."""

    status_code = 401
    code = "login_required"
    message = "请先登录"


def font_size(request: Request) -> str:
    """The chosen font size (cookie), defaulting to the standard size."""
    value = request.cookies.get(FONT_COOKIE, "normal")
    return value if value in FONT_SIZES else "normal"


def safe_next(value: str | None, default: str) -> str:
    """A local path to go back to; anything that could leave the site falls back to default."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 32 for ch in value):
        return default
    return value


def here(request: Request) -> str:
    """The current path and query, for `next` links."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Dependency for every console POST: the form's token must match the session's."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise CsrfFailed()


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page rendered with the context every layout needs and the security headers."""
    ctx = {"font": font_size(request), "here": here(request), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Vary"] = "Cookie, HX-Request"
    if headers:
        response.headers.update(headers)
    return response


def error_page(
    request: Request,
    template: str,
    *,
    status_code: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
    context: dict[str, Any] | None = None,
) -> Response:
    """An error answered as a page in Chinese."""
    return render(
        request,
        template,
        {**(context or {}), "title": title, "message": message, "status_code": status_code},
        status_code=status_code,
        headers=headers,
    )


# What an error page's layout needs beyond the error (the console's navigation for the
# person signed in), by error template: `create_app` registers the console's provider on
# `app.state.error_contexts`, since core may not import the console.
ErrorContext = Callable[[Request], Awaitable[dict[str, Any]]]


async def error_context(request: Request, template: str) -> dict[str, Any]:
    """The layout context of an error page, or nothing when none is registered."""
    providers: dict[str, ErrorContext] = getattr(request.app.state, "error_contexts", {})
    provider = providers.get(template)
    return await provider(request) if provider is not None else {}


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API, a static file or a JSON client)."""
    if request.url.path.startswith(("/api/", "/static/", "/healthz", "/openapi.json")):
        return False
    return "text/html" in request.headers.get("accept", "")


ERROR_TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权访问",
    404: "页面不存在",
    409: "操作冲突",
    410: "链接已失效",
    422: "填写内容有误",
    429: "请求过于频繁，请稍后再试",
}


def login_redirect(request: Request) -> Response:
    """Send a visitor who is not signed in to the sign-in page, then back here."""
    target = "/login?" + urlencode({"next": here(request)})
    if request.headers.get("hx-request"):
        # htmx would swap the login page into a fragment; make it load the whole page.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def html_route(error_template: str) -> type[APIRoute]:
    """A route class that answers refusals as HTML pages (the JSON API keeps its handlers)."""

    class HtmlRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                try:
                    return await handler(request)
                except LoginRequired:
                    return login_redirect(request)
                except DomainError as exc:
                    return error_page(
                        request,
                        error_template,
                        status_code=exc.status_code,
                        title=ERROR_TITLES.get(exc.status_code, "出错了"),
                        message=exc.message,
                        headers=exc.headers(),
                        context=await error_context(request, error_template),
                    )
                except RequestValidationError:
                    return error_page(
                        request,
                        error_template,
                        status_code=422,
                        title=ERROR_TITLES[422],
                        message="请求参数不符合要求，请检查后重试",
                        context=await error_context(request, error_template),
                    )

            return answer

    return HtmlRoute
