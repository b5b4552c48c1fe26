"""The hook from rating intake into the closed loop: a bad rating opens a work order in
the same transaction as the rating itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.timeutil import utcnow
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import notify
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.loop import context_for
from haochaping.workorders.models import WorkOrder, WorkOrderEvent, WorkOrderUnit
from haochaping.workorders.states import State

Opening = tuple[dict[str, Any], PolicyValues, int | None]  # rating, policy, policy id


def make_on_stored(state: Any) -> Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]:
    """The `IntakeRules.on_stored` callback for an app (its caches live on `state`)."""

    async def on_stored(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        openings: list[Opening] = []
        for row in rows:
            if row.get("eval_count", 1) != 1 or row.get("is_default"):
                continue
            policy, policy_id = await state.policy_cache.get(db, row["region_code"])
            if row["level"] in policy.bad_levels:
                openings.append((row, policy, policy_id))
        if not openings:
            return
        ctx = await context_for(state, db)
        if len(openings) == 1:
            row, policy, policy_id = openings[0]
            await wo_service.open_for_evaluation(db=db, evaluation=row, policy=policy,
                                                 policy_id=policy_id, ctx=ctx)
        else:
            await open_together(db=db, openings=openings, ctx=ctx)

    return on_stored


async def open_together(*, db: AsyncSession, openings: list[Opening], ctx: LoopContext) -> None:
    """`wo_service.open_for_evaluation` for the bad ratings of one batch, in three INSERTs and
    one for the notifications, instead of three and more per order (each order the same rows:
    tests/evaluations/test_batch.py compares them with a single rating's)."""
    # Opened one by one, the flushes were ~30 % of a batch's CPU at 5 % bad ratings.
    # The better home of this is workorders/service.py, next to open_for_evaluation.
    now = utcnow()
    orders = []
    for evaluation, policy, policy_id in openings:
        order = WorkOrder(
            evaluation_id=evaluation["id"], case_id=evaluation.get("case_id"),
            origin="bad_rating", org_id=evaluation["org_id"],
            region_code=evaluation["region_code"], state=State.VERIFYING.value, version=1,
            policy_id=policy_id, policy=policy.model_dump(mode="json"), opened_at=now)
        verified = ctx.deadlines.set_verify(order, now, policy)
        verified &= ctx.deadlines.set_rectify(order, now, policy.rectify_days, policy)
        order.deadlines_verified = verified
        orders.append(order)
    db.add_all(orders)
    await db.flush()
    for order in orders:
        db.add(WorkOrderUnit(work_order_id=order.id, org_id=order.org_id, role="lead"))
        db.add(WorkOrderEvent(work_order_id=order.id, action="open", from_state=None,
                              to_state=order.state, actor_kind="system",
                              actor_name=wo_service.SYSTEM.name, note=None,
                              data={"origin": "bad_rating"}, created_at=now))
    async with notify.opened_in_bulk(db):
        for order, (evaluation, _policy, _policy_id) in zip(orders, openings, strict=True):
            await notify.opened(db=db, ctx=ctx, order=order, evaluation=evaluation)
    await db.flush()
