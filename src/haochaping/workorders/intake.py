"""The hook from rating intake into the closed loop: a bad rating opens a work order in
the same transaction as the rating itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.workorders import service as wo_service
from haochaping.workorders.loop import context_for


def make_on_stored(state: Any) -> Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]:
    """The `IntakeRules.on_stored` callback for an app (its caches live on `state`)."""

    async def on_stored(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        openings: list[wo_service.Opening] = []
        for row in rows:
            if row.get("eval_count", 1) != 1 or row.get("is_default"):
                continue
            policy, policy_id = await state.policy_cache.get(db, row["region_code"])
            if row["level"] in policy.bad_levels:
                openings.append((row, policy, policy_id))
        if not openings:
            return
        await wo_service.open_for_evaluations(
            db=db, openings=openings, ctx=await context_for(state, db)
        )

    return on_stored
