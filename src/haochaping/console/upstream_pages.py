"""The console's page 上报 (reporting up, issue 14): this instance's queue to its parent —
length, lag, back-off and last error per stream — and the children reporting to it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from haochaping.accounts.models import ApiClient
from haochaping.console.layout import SystemAdminConsoleUser, page
from haochaping.core.db import DbSession
from haochaping.core.templating import html_route
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.exchange import jobs as exchange_jobs

router = APIRouter(include_in_schema=False, route_class=html_route("console/error.html"))
UPSTREAM = "/console/upstream"
STREAM_LABELS = {exchange_jobs.RATINGS: "评价", exchange_jobs.WORK_ORDERS: "工单办理结果"}


def _duration(seconds: float | None) -> str:
    """A lag as people read it: 秒, 分钟, 小时, 天."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s} 秒"
    if s < 3600:
        return f"{s // 60} 分钟"
    if s < 86400:
        return f"{s // 3600} 小时 {s % 3600 // 60} 分钟"
    return f"{s // 86400} 天 {s % 86400 // 3600} 小时"


@router.get(UPSTREAM)
async def upstream_page(request: Request, db: DbSession, user: SystemAdminConsoleUser):
    """The queue to the parent and the children reporting here."""
    settings = request.app.state.settings
    now = utcnow()
    streams: list[dict[str, Any]] = [
        {
            "name": s.name,
            "label": STREAM_LABELS.get(s.name, s.name),
            "pending": s.pending,
            "lag": _duration(s.lag.total_seconds() if s.lag is not None else None),
            "sent": s.sent,
            "refused": s.refused,
            "failures": s.failures,
            "last_success_at": s.last_success_at,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at,
            "next_attempt_at": s.next_attempt_at if s.failures else None,
        }
        for s in await exchange_jobs.status(db, now=now)
    ]
    children = (
        await db.execute(
            select(ApiClient.name, func.count(Evaluation.id), func.max(Evaluation.received_at))
            .join(Evaluation, Evaluation.origin_client_id == ApiClient.id)
            .group_by(ApiClient.name)
            .order_by(ApiClient.name)
        )
    ).all()
    return await page(
        request,
        db,
        user,
        "console/upstream.html",
        {
            "title": "上报",
            "upstream_url": settings.upstream_url,
            "streams": streams,
            "children": [{"name": n, "count": c, "last": t} for n, c, t in children],
            "here": UPSTREAM,
        },
    )
