"""Time helpers: store UTC, show Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_local(value: datetime | None) -> datetime | None:
    """A stored UTC time shown in Asia/Shanghai."""
    return value.astimezone(SHANGHAI) if value is not None else None


def fmt_local(value: datetime | None) -> str:
    """A time as people in China read it: 2026-11-22 10:20."""
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""
