"""The interactive API documents (/docs: Swagger UI, /redoc: ReDoc), served offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start Swagger UI with an inline
script, so they are blank without the internet and under our CSP. Here both libraries come
from the package (`static/vendor/`, vendored from npm, see its README) and Swagger UI is
started by `static/js/api-docs.js`: no inline script, nothing from another origin.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from haochaping import __version__

SWAGGER_UI_VERSION = "5.36.0"
REDOC_VERSION = "2.5.4"
VENDOR = "/static/vendor"
SWAGGER = f"{VENDOR}/swagger-ui"
# Scripts only from this origin, as everywhere else. Both libraries set styles at run time
# (ReDoc through styled-components' <style> elements), which 'self' alone would refuse; the
# ReDoc search index runs in a worker made from a blob.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _head(title: str) -> str:
    return (
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
    )


def swagger_html(*, title: str, openapi_url: str) -> str:
    """Swagger UI started by our own script on the given OpenAPI document."""
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n'
        + _head(f"{title} - 接口文档")
        + f'<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css?v={SWAGGER_UI_VERSION}">\n'
        "</head>\n<body>\n"
        f'<main id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></main>\n'
        f'<script src="{SWAGGER}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>\n'
        f'<script src="/static/js/api-docs.js?v={__version__}"></script>\n'
        "</body>\n</html>\n"
    )


def redoc_html(*, title: str, openapi_url: str) -> str:
    """ReDoc on the given OpenAPI document (the standalone bundle starts itself)."""
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n'
        + _head(f"{title} - 接口文档（ReDoc）")
        + "</head>\n<body>\n"
        f'<redoc spec-url="{escape(openapi_url)}"></redoc>\n'
        f'<script src="{VENDOR}/redoc/redoc.standalone.js?v={REDOC_VERSION}"></script>\n'
        "</body>\n</html>\n"
    )


def install(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve /docs and /redoc from the package (create the app with docs_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(
            swagger_html(title=app.title, openapi_url=openapi_url), headers=DOCS_HEADERS
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        html = redoc_html(title=app.title, openapi_url=openapi_url)
        return HTMLResponse(html, headers=DOCS_HEADERS)
