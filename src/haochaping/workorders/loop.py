"""Process-wide caches the loop reads on hot paths: the working-day calendar, policies."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.calendar import WorkCalendar, load_calendar
from haochaping.workorders.context import Deadlines, LoopContext

CALENDAR_SECONDS = 60.0


class CalendarCache:
    """The calendar (package data + imported years), reloaded every minute or on import."""

    def __init__(self) -> None:
        self._calendar: WorkCalendar | None = None
        self._until = 0.0

    def clear(self) -> None:
        self._calendar, self._until = None, 0.0

    async def get(self, db: AsyncSession) -> WorkCalendar:
        now = time.monotonic()
        if self._calendar is None or now > self._until:
            self._calendar = await load_calendar(db)
            self._until = now + CALENDAR_SECONDS
        return self._calendar


async def context_for(state: Any, db: AsyncSession) -> LoopContext:
    """The loop context from an app's state (requests and jobs alike)."""
    calendar = await state.calendar_cache.get(db)
    return LoopContext(settings=state.settings, deadlines=Deadlines(calendar), keys=state.keys)


async def loop_context(request: Request, db: AsyncSession) -> LoopContext:
    return await context_for(request.app.state, db)
