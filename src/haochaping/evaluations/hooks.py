"""Composition of the hooks that run on stored ratings, in the intake transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Hook = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


def compose(*hooks: Hook) -> Hook:
    """One hook that runs each of `hooks` in order."""

    async def run(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        for hook in hooks:
            await hook(db, rows)

    return run
