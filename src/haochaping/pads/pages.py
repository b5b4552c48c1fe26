"""The pad's pages (`/pad`): pairing with a code, the screen that follows the window's
service (a fragment polled every 2 s), the staff photo, the service worker, and the JSON
route the pad's script sends ratings to (at once, or later from its offline queue)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from haochaping.core import idempotency
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Malformed, NotFound
from haochaping.core.ratelimit import limiter
from haochaping.core.schemas import Id
from haochaping.core.templating import csrf_token, html_route, render, verify_csrf
from haochaping.evaluations import service as evaluation_service
from haochaping.orgs.models import Org
from haochaping.pads import queries, schemas, service
from haochaping.pads.models import PadDevice

COOKIE = "hcp_pad"
PREFIX = "/pad"
# The credential lives as long as the pad is in use; revoking it in the console ends it.
COOKIE_SECONDS = 5 * 365 * 86400
WORKER = Path(__file__).parent.parent / "static" / "js" / "pad-sw.js"
PairLimit = [Depends(limiter("citizen", "rate_citizen_per_minute"))]

router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))
# The pad's script talks JSON with the API's error bodies (not error pages).
json_router = APIRouter(include_in_schema=False)


async def current_pad(request: Request, db: DbSession) -> tuple[PadDevice, Org]:
    """The pad by its cookie (401 `pad_unpaired` / `pad_revoked`); notes when it was seen."""
    found = await service.authenticate(db=db, token=request.cookies.get(COOKIE))
    await db.commit()  # last_seen_at, at most once a minute
    return found


CurrentPad = Annotated[tuple[PadDevice, Org], Depends(current_pad)]


def _pair_page(
    request: Request, *, code: str = "", error: str | None = None, status_code: int = 200
):
    return render(
        request,
        "pads/pair.html",
        {"title": "评价器配对", "csrf": csrf_token(request), "code": code, "error": error},
        status_code=status_code,
    )


@router.get(PREFIX + "/pair")
async def pair_form(request: Request, code: str = ""):
    """The pairing form: the code shown by the console or `haochaping device pair` (filled
    in when the pad opened the QR's link)."""
    return _pair_page(request, code=service.normalise_code(code[:20]))


@router.post(PREFIX + "/pair", dependencies=[*PairLimit, Depends(verify_csrf)])
async def pair(request: Request, db: DbSession):
    """Spend the code; the pad keeps its credential as an HttpOnly cookie, then shows /pad."""
    form = await request.form()
    code = form.get("code")
    try:
        _, token = await service.pair(
            db=db,
            secret=request.app.state.settings.secret_key,
            code=code if isinstance(code, str) else "",
        )
    except DomainError as exc:
        await db.rollback()
        typed = service.normalise_code(code[:20]) if isinstance(code, str) else ""
        return _pair_page(request, code=typed, error=exc.message, status_code=exc.status_code)
    await db.commit()
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_SECONDS,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.session_cookie_secure,
    )
    return response


@router.get(PREFIX)
async def pad(request: Request, db: DbSession):
    """The pad's screen; an unpaired browser goes to the pairing form, a revoked pad is told
    so (401)."""
    try:
        device, window = await current_pad(request, db)
    except DomainError as exc:
        if exc.code == "pad_unpaired":
            return RedirectResponse(PREFIX + "/pair", status_code=303)
        if exc.code != "pad_revoked":
            raise
        return render(
            request,
            "portal/notice.html",
            {"title": "此评价器已停用", "message": exc.message, "code": exc.code},
            status_code=401,
        )
    rules = request.app.state.rules
    bad_levels = sorted(set(range(1, 6)) - set(rules.good_levels))
    groups = {
        level: sorted((t for t in rules.tags.values() if t.level == level), key=lambda t: t.code)
        for level in bad_levels
    }
    return render(
        request,
        "pads/pad.html",
        {
            "title": f"{window.name} 服务评价",
            "device": device,
            "window": window,
            "screen": await queries.screen(db=db, window=window),
            "groups": groups,
            "bad_levels": bad_levels,
        },
    )


@router.get(PREFIX + "/screen")
async def screen(request: Request, db: DbSession, found: CurrentPad):
    """The part of the screen that follows the window's service (polled every 2 s)."""
    _, window = found
    return render(
        request, "pads/_screen.html", {"screen": await queries.screen(db=db, window=window)}
    )


@router.get(PREFIX + "/photo/{service_id}")
async def photo(service_id: Id, request: Request, db: DbSession, found: CurrentPad):
    """The photo of the staff member of a service at this pad's window."""
    _, window = found
    row = await queries.service_photo(db=db, window=window, service_id=service_id)
    if row is None or not row.photo_key or not row.photo_type:
        raise NotFound("照片不存在", code="photo_not_found")
    path = Path(request.app.state.settings.upload_dir) / "staff" / row.photo_key
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound("照片不存在", code="photo_not_found") from None
    return Response(
        data,
        media_type=row.photo_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"},
    )


@router.get(PREFIX + "/sw.js")
async def worker():
    """The pad's service worker (scope /pad): keeps the screen's page and assets for a
    reload without network."""
    return Response(
        await asyncio.to_thread(WORKER.read_bytes),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": PREFIX},
    )


@json_router.post(PREFIX + "/evaluations", status_code=201)
async def rate(
    data: schemas.PadRating,
    request: Request,
    db: DbSession,
    found: CurrentPad,
    idempotency_key: Annotated[str | None, Header()] = None,
):
    """A rating pressed on the pad (`PadRating`), sent at once or later from its offline
    queue: each press carries its own `Idempotency-Key`, so a resent one is stored once."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        # A cross-site form cannot send JSON: with the SameSite cookie, this is the CSRF guard.
        raise Malformed("请求须为 JSON", code="json_required")
    if not idempotency_key:
        raise Malformed("缺少 Idempotency-Key", code="idempotency_key_required")
    device, window = found
    actor = service.principal_of(device, window)
    digest = idempotency.request_hash(data.model_dump(mode="json"))
    replay = await idempotency.claim(db=db, actor=actor, key=idempotency_key, digest=digest)
    if replay is not None:
        await db.rollback()
        return JSONResponse(
            replay[1], status_code=replay[0], headers={"Idempotent-Replayed": "true"}
        )
    body = await service.rate(
        db=db,
        device=device,
        window=window,
        data=data,
        rules=request.app.state.rules,
        source=evaluation_service.source_of(request),
    )
    answer = schemas.PadRatingRead(**body).model_dump(mode="json")
    await idempotency.store(db=db, actor=actor, key=idempotency_key, status_code=201, body=answer)
    await db.commit()
    return JSONResponse(answer, status_code=201)


router.include_router(json_router)
