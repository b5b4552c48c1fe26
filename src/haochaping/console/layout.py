"""What every console page shares: the signed-in person, the navigation, the calendar
warning, one-time messages after a redirect (PRG), and the page renderer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal, session_principal
from haochaping.core.calendar import local_today, missing_warning, status_years
from haochaping.core.db import DbSession
from haochaping.core.errors import Forbidden
from haochaping.core.roles import MANAGERS, STATS_READERS, Role
from haochaping.core.templating import LoginRequired, csrf_token, render, verify_csrf

HOME = "/console/evaluations"
# The console's navigation: (path, label, roles that see it; None: everybody).
NAV: list[tuple[str, str, frozenset[Role] | None]] = [
    (HOME, "评价记录", None),
    ("/console/work-orders", "差评工单", None),
    ("/console/dashboard", "数据看板", STATS_READERS),
    ("/console/rankings", "榜单", STATS_READERS),
    ("/console/supervision", "督办", MANAGERS),
    ("/console/appeals", "申诉", None),
    ("/console/integrity", "疑似刷评复核", MANAGERS),
    ("/console/held", "待复核评价", MANAGERS),
    ("/console/policies", "政策参数", None),
    ("/console/calendar", "工作日历", None),
    ("/console/outbox", "通知投递", frozenset({Role.ADMIN})),
]
FLASH_KEY = "flash"


async def console_user(request: Request, db: DbSession) -> Principal:
    """The signed-in person, or a redirect to the sign-in page."""
    principal = await session_principal(request, db)
    if principal is None:
        raise LoginRequired()
    return principal


ConsoleUser = Annotated[Principal, Depends(console_user)]
Csrf = Depends(verify_csrf)


def is_manager(user: Principal) -> bool:
    """A person of a management office, or an administrator."""
    return user.has_role(*MANAGERS)


def require_manager(user: Principal) -> None:
    """403 unless the person works for a management office (or is an administrator)."""
    if not is_manager(user):
        raise Forbidden("此页面仅供政务服务管理机构和系统管理员使用", code="role_forbidden")


async def console_manager(user: ConsoleUser) -> Principal:
    """The signed-in person, when they may use the management pages (else 403)."""
    require_manager(user)
    return user


ManagerConsoleUser = Annotated[Principal, Depends(console_manager)]


async def console_stats_reader(user: ConsoleUser) -> Principal:
    """The signed-in person, when they may read the statistics pages (else 403)."""
    if not user.has_role(*STATS_READERS):
        raise Forbidden("此页面仅供管理机构、责任单位和监督查评人员使用", code="role_forbidden")
    return user


StatsConsoleUser = Annotated[Principal, Depends(console_stats_reader)]


def is_system_admin(user: Principal) -> bool:
    """An administrator at the installation's root (an organisation without a parent):
    the one who may change what every region shares (the working-day calendar) or see
    every region's notifications."""
    return user.has_role(Role.ADMIN) and user.org_path.count("/") == 2


def require_system_admin(user: Principal) -> None:
    """403 unless the person is a system administrator at the installation's root."""
    if not is_system_admin(user):
        raise Forbidden("此操作仅限根机构的系统管理员", code="role_forbidden")


def nav_for(user: Principal) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV if roles is None or user.role in roles]


def is_partial(request: Request) -> bool:
    """An htmx request that swaps a fragment (not a history restore, which needs the page)."""
    return request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )


def flash(request: Request, message: str) -> None:
    """A message shown once on the next page (after a redirect)."""
    request.session[FLASH_KEY] = message


async def calendar_warning(request: Request, db: AsyncSession) -> str | None:
    """The warning about years the working-day calendar does not know, if any."""
    cal = await request.app.state.calendar_cache.get(db)
    return missing_warning(cal, status_years(local_today()))


async def page(
    request: Request,
    db: AsyncSession,
    user: Principal,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    partial: bool = False,
) -> Response:
    """A console page inside the signed-in layout (htmx fragments skip the banners)."""
    extra: dict[str, Any] = {}
    if not partial:
        extra["calendar_warning"] = await calendar_warning(request, db)
        extra["flash"] = request.session.pop(FLASH_KEY, None)
    return render(
        request,
        name,
        {
            "user": user,
            "role_label": user.role.label if user.role else "",
            "nav": nav_for(user),
            "csrf": csrf_token(request),
            "is_manager": is_manager(user),
            **extra,
            **context,
        },
        status_code=status_code,
    )
