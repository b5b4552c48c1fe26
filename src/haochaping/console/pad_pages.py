"""HTML routes of the window evaluators (评价器) in the console: the pads of the windows in
the person's area, a one-time pairing code (and its QR) for a new pad, and revoking one.
Offices and administrators manage them; every act is on the audit trail."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from haochaping.console.layout import Csrf, ManagerConsoleUser, flash, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.ratelimit import client_ip
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.core.timeutil import utcnow
from haochaping.pads import queries as pad_queries
from haochaping.pads import service as pad_service
from haochaping.pads.choices import PadState

router = APIRouter(route_class=html_route("console/error.html"))

PADS = "/console/pads"


async def _pads_page(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    window: str | None = None,
    made: dict | None = None,
    error: str | None = None,
    posted: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    now = utcnow()
    rows = await pad_queries.pads(db=db, actor=user, window_code=window or None)
    qr = None
    if made is not None:
        url = pad_service.pairing_url(request.app.state.settings.base_url, made["code"])
        made = {**made, "url": url}
        qr = segno.make(url, error="m").svg_inline(scale=5, border=2, title="评价器配对二维码")
    return await page(
        request,
        db,
        user,
        "console/pads.html",
        {
            "title": "评价器",
            "rows": [(row, pad_service.state_of(row, now)) for row in rows],
            "windows": await pad_queries.windows(db=db, actor=user),
            "window": window or "",
            "made": made,
            "qr": qr,
            "error": error,
            "posted": posted or {},
            "PadState": PadState,
        },
        status_code=status_code,
    )


@router.get(PADS)
async def pads(request: Request, db: DbSession, user: ManagerConsoleUser, window: str = ""):
    """The pads of the windows in the person's area (or one window's), newest first."""
    return await _pads_page(request, db, user, window=window[:50])


@router.post(PADS, dependencies=[Csrf])
async def create_pairing(request: Request, db: DbSession, user: ManagerConsoleUser):
    """A new pad of a window: its one-time pairing code and QR, shown once on this page."""
    form = await request.form()
    window = str(form.get("window_code") or "").strip()[:50]
    name = str(form.get("name") or "").strip()[:100] or None
    try:
        made = await pad_service.create_pairing(
            db=db,
            secret=request.app.state.settings.secret_key,
            window_code=window,
            name=name,
            actor=user,
            source_ip=client_ip(request),
        )
    except DomainError as exc:
        await db.rollback()
        return await _pads_page(
            request,
            db,
            user,
            error=exc.message,
            posted={"window_code": window, "name": name or ""},
            status_code=exc.status_code,
        )
    await db.commit()
    # Shown in the answer to the POST only: the code is never stored in the clear.
    return await _pads_page(request, db, user, window=window, made=made)


@router.post(PADS + "/{device_id}/revoke", dependencies=[Csrf])
async def revoke(device_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """Stop a pad: its credential stops working at once (it shows the revoked notice)."""
    device = await pad_service.revoke(
        db=db, actor=user, device_id=device_id, source_ip=client_ip(request)
    )
    await db.commit()
    flash(request, f"已停用评价器：{device.name}（编号 {device.id}）")
    return RedirectResponse(PADS, status_code=303)
