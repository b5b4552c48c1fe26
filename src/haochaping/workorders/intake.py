"""The hook from rating intake into the closed loop: a bad rating opens a work order in
the same transaction as the rating itself."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.workorders import notify
from haochaping.workorders import service as wo_service
from haochaping.workorders.loop import context_for


def make_on_stored(state: Any) -> Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]:
    """The `IntakeRules.on_stored` callback for an app (its caches live on `state`)."""

    async def on_stored(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        ctx = None
        # A batch opens its orders' notifications as one outbox INSERT, not one per message.
        bulk = notify.opened_in_bulk(db) if len(rows) > 1 else contextlib.nullcontext()
        async with bulk:
            for row in rows:
                if row.get("eval_count", 1) != 1 or row.get("is_default"):
                    continue
                policy, policy_id = await state.policy_cache.get(db, row["region_code"])
                if row["level"] not in policy.bad_levels:
                    continue
                ctx = ctx or await context_for(state, db)
                await wo_service.open_for_evaluation(db=db, evaluation=row, policy=policy,
                                                     policy_id=policy_id, ctx=ctx)

    return on_stored
