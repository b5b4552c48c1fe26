"""The public results pages (公示), no sign-in: a region's overview (`/public`), a department,
hall or window (`/public/orgs/{org_code}`) and a service item (`/public/items/{item_code}`).

Cacheable by anyone (`Cache-Control: public, max-age=60`, an ETag answered with 304), so they
carry no personal data and set no cookie (`core.middleware.NoCookies` strips the session's);
rate-limited per IP like the landing page. What they show is read in `results_queries`."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from haochaping.core.db import DbSession
from haochaping.core.errors import NotFound
from haochaping.core.ratelimit import limiter
from haochaping.core.templating import html_route, render
from haochaping.core.timeutil import utcnow
from haochaping.portal import results_queries as q

PREFIX = "/public"
MAX_AGE = 60
router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))
# Public pages (these and the landing page): per IP, generous, 429 with Retry-After.
PublicLimit = [Depends(limiter("public", "rate_public_per_minute"))]


class ViewCache:
    """A region's overview, kept per app for `ttl` seconds: it costs seconds on a year of a
    province's ratings (24 rankings), and any visitor could ask for it at the per-IP cap.
    Pages may already be `max-age` old in any shared cache, so this adds no staleness. One
    computation per key at a time: the others wait for it and take its result."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._views: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def clear(self) -> None:
        self._views.clear()

    async def get(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._views.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._views.get(key)
            if hit is not None and hit[0] > self.clock():
                return hit[1]
            view = await compute()
            now = self.clock()
            self._views = {k: v for k, v in self._views.items() if v[0] > now}
            self._views[key] = (now + self.ttl, view)
            return view


def views(request: Request) -> ViewCache:
    """The app's cache of region overviews (made on first use)."""
    state = request.app.state
    if getattr(state, "public_views", None) is None:
        state.public_views = ViewCache(MAX_AGE)
    return state.public_views


def _cached(request: Request, response: Response) -> Response:
    """The page as shared caches may keep it for a minute, with an ETag of its bytes: a
    browser that already holds these bytes gets 304 and no body."""
    body = bytes(response.body)
    tag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": f"public, max-age={MAX_AGE}",
        "ETag": tag,
        "Vary": response.headers.get("Vary", "Cookie"),
    }
    sent = request.headers.get("if-none-match", "")
    if tag in {t.strip() for t in sent.split(",")} or sent.strip() == "*":
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def _page(request: Request, template: str, title: str, view: Any) -> Response:
    chart = any(p.total for p in view.trend)  # the chart only when there is something to draw
    return _cached(
        request,
        render(request, template, {"title": title, "view": view, "chart": chart}),
    )


@router.get(PREFIX, dependencies=PublicLimit)
async def overview(request: Request, db: DbSession, region: str | None = None):
    """The overview of this instance's top region, or of `?region=` (a sub-region)."""
    node = await (q.find_region(db, region) if region else q.top_region(db))
    view = await views(request).get(node.code, lambda: q.overview(db=db, region=node, now=utcnow()))
    return _page(request, "portal/results_overview.html", f"{node.name}评价公示", view)


@router.get(PREFIX + "/orgs/{org_code:path}", dependencies=PublicLimit)
async def org(org_code: str, request: Request, db: DbSession):
    """A department, hall or window: figures, trend, rectifications, items, staff."""
    found = await q.find_org(db, org_code)
    view = await q.org_page(db=db, org=found, now=utcnow())
    return _page(request, "portal/results_org.html", f"{found.name}评价公示", view)


@router.get(PREFIX + "/items/{item_code:path}", dependencies=PublicLimit)
async def item(item_code: str, request: Request, db: DbSession):
    """A service item: figures, trend, where it is served, rectifications."""
    found = await q.find_item(db, item_code)
    view = await q.item_page(db=db, item=found, now=utcnow())
    return _page(request, "portal/results_item.html", f"{found.name}评价公示", view)


@router.get(PREFIX + "/staff/{staff_no}/photo", dependencies=PublicLimit)
async def staff_photo(staff_no: str, request: Request, db: DbSession):
    """The photo of a window service star who consented to be named in public."""
    staff = await q.consenting_photo(db, staff_no)
    path = Path(request.app.state.settings.upload_dir) / "staff" / staff.photo_key
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound("照片不存在", code="photo_not_found") from None
    return Response(
        data,
        media_type=staff.photo_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"},
    )
