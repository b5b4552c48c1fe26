"""What every console page shares: the signed-in person, the navigation, the calendar
warning, one-time messages after a redirect (PRG), and the page renderer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal, RoleForbidden, session_principal
from haochaping.core.calendar import local_today, missing_warning, status_years
from haochaping.core.db import DbSession
from haochaping.core.roles import (
    APPRAISAL_READERS,
    HANDLERS,
    INSPECTION_READERS,
    MANAGERS,
    STATS_READERS,
    Role,
)
from haochaping.core.templating import LoginRequired, csrf_token, render, verify_csrf

HOME = "/console/evaluations"
# The console's navigation: (path, label, roles that see it; None: everybody).
NAV: list[tuple[str, str, frozenset[Role] | None]] = [
    (HOME, "评价记录", None),
    ("/console/work-orders", "差评工单", None),
    ("/console/dashboard", "数据看板", STATS_READERS),
    ("/console/rankings", "榜单", STATS_READERS),
    ("/console/reports", "月度通报", frozenset({Role.ADMIN, Role.OFFICE, Role.ASSESSOR})),
    ("/console/appraisal", "考核", APPRAISAL_READERS),
    ("/console/inspections", "监督查评", INSPECTION_READERS),
    ("/console/spot-checks", "抽查回访", HANDLERS),
    ("/console/supervision", "督办", MANAGERS),
    ("/console/appeals", "申诉", None),
    ("/console/integrity", "疑似刷评复核", MANAGERS),
    ("/console/held", "待复核评价", MANAGERS),
    ("/console/register", "恶意评价人名单", MANAGERS),
    ("/console/pads", "评价器", MANAGERS),
    ("/console/policies", "政策参数", None),
    ("/console/calendar", "工作日历", None),
    ("/console/outbox", "通知投递", frozenset({Role.ADMIN})),
    ("/console/upstream", "上报", frozenset({Role.ADMIN})),
    ("/console/audit", "审计日志", MANAGERS),  # offices: their subtree's reveals
    # Administration (issue 11): the directory for offices, accounts and keys for admins.
    ("/console/directory", "机构与人员", MANAGERS),
    ("/console/users", "账号与密钥", frozenset({Role.ADMIN})),
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


def is_system_admin(user: Principal) -> bool:
    """An administrator at the installation's root (an organisation without a parent):
    the one who may change what every region shares (the working-day calendar) or see
    every region's notifications."""
    return user.has_role(Role.ADMIN) and user.at_root


def console_gate(
    allowed: Callable[[Principal], bool], message: str | None = None
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the signed-in person, when `allowed(person)`; else 403 `role_forbidden`
    (with `message` where the refusal has a wording of its own): the console's counterpart
    of `core.auth.roles`."""

    async def dependency(user: ConsoleUser) -> Principal:
        if not allowed(user):
            raise RoleForbidden(message) if message else RoleForbidden()
        return user

    return dependency


# Who may use a console route, by role alone (rules that depend on data stay in the services).
ManagerConsoleUser = Annotated[
    Principal,
    Depends(console_gate(is_manager, "此页面仅供政务服务管理机构和系统管理员使用")),
]
# An administrator at any level (accounts and API keys of their subtree).
AdminConsoleUser = Annotated[
    Principal,
    Depends(console_gate(lambda user: user.has_role(Role.ADMIN), "此页面仅供系统管理员使用")),
]
SystemAdminConsoleUser = Annotated[
    Principal, Depends(console_gate(is_system_admin, "此操作仅限根机构的系统管理员"))
]


def is_stats_reader(user: Principal) -> bool:
    """Who reads the statistics pages: offices, administrators, units and assessors."""
    return user.has_role(*STATS_READERS)


StatsConsoleUser = Annotated[
    Principal,
    Depends(console_gate(is_stats_reader, "此页面仅供管理机构、责任单位和监督查评人员使用")),
]


def nav_for(user: Principal) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV if roles is None or user.role in roles]


async def error_context(request: Request) -> dict[str, Any]:
    """The layout of a console error page (403, 404...): the navigation of whoever is
    signed in, so that a refusal never leaves them without a way on."""
    try:
        async with request.app.state.sessionmaker() as db:
            user = await session_principal(request, db)
    except Exception:  # the database is away: the page still answers, without navigation
        return {}
    if user is None:
        return {}
    return {
        "user": user,
        "role_label": user.role.label if user.role else "",
        "nav": nav_for(user),
        "csrf": csrf_token(request),
    }


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


async def calendar_banner(request: Request, db: AsyncSession, user: Principal) -> dict[str, Any]:
    """Who hears of a missing calendar year: the system administrators, who can import it,
    get the warning with the way to the calendar; the offices a quiet line (their deadlines
    are estimated meanwhile); window staff, units and assessors nothing they could act on."""
    if not is_manager(user):
        return {}
    if is_system_admin(user):
        return {"calendar_warning": await calendar_warning(request, db)}
    cal = await request.app.state.calendar_cache.get(db)
    missing = cal.missing_years(status_years(local_today()))
    if not missing:
        return {}
    listed = "、".join(f"{y} 年" for y in missing)
    return {
        "calendar_note": f"{listed}的工作日历尚未导入，期限暂按周一至周五推算；"
        "系统管理员导入后自动更正。"
    }


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
    nav = nav_for(user)
    if not partial:
        extra.update(await calendar_banner(request, db, user))
        extra["flash"] = request.session.pop(FLASH_KEY, None)
        # The to-do badges of the navigation: kept briefly, read again after the person's act
        # (its message is shown once on the page it leads to).
        extra["nav_todo"] = await request.app.state.todo_cache.get(
            db, user, {path for path, _ in nav}, fresh=extra["flash"] is not None
        )
    return render(
        request,
        name,
        {
            "user": user,
            "role_label": user.role.label if user.role else "",
            "nav": nav,
            "csrf": csrf_token(request),
            "is_manager": is_manager(user),
            **extra,
            **context,
        },
        status_code=status_code,
    )
