"""Spot-check callbacks (抽查回访) on sampled good ratings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.core.db import rows_changed
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.policies import service as policy_service
from haochaping.workorders import schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import CallbackAttempt, SpotCheck


async def record(
    *,
    db: AsyncSession,
    principal: Principal,
    spot_check_id: int,
    data: schemas.SpotCheckCallbackIn,
    ctx: LoopContext,
) -> dict[str, Any]:
    """Record a spot-check call; a citizen who is in fact dissatisfied opens a work order."""
    check = await db.get(SpotCheck, spot_check_id)
    if check is None:
        raise NotFound("抽查任务不存在", code="spot_check_not_found")
    org = await db.get(Org, check.org_id)
    principal.require(org.path)  # type: ignore[union-attr]
    if data.reached and data.verdict is None:
        raise Invalid(
            "联系上评价人时须记录其评价", code="verdict_required", details=[{"field": "verdict"}]
        )
    if check.state != "pending":
        raise Conflict("该抽查任务已完成", code="spot_check_done")
    now = utcnow()
    db.add(
        CallbackAttempt(
            spot_check_id=check.id,
            method=data.method,
            reached=data.reached,
            verdict=data.verdict,
            note=data.note,
            actor_name=principal.name,
            created_at=now,
        )
    )
    if not data.reached:
        await db.flush()
        return {"id": check.id, "state": check.state, "work_order_id": None}
    work_order_id = None
    if data.verdict == "dissatisfied":
        ev = await db.get(Evaluation, check.evaluation_id)
        row = {c.key: getattr(ev, c.key) for c in Evaluation.__table__.columns}
        values, policy_id = await _policy(db, ctx, ev.region_code)  # type: ignore[union-attr]
        order = await wo_service.open_for_evaluation(
            db=db,
            evaluation=row,
            policy=values,
            policy_id=policy_id,
            ctx=ctx,
            now=now,
            origin="spot_check",
        )
        work_order_id = order.id
    result = await db.execute(
        update(SpotCheck)
        .where(SpotCheck.id == check.id, SpotCheck.state == "pending")
        .values(state="done", verdict=data.verdict, done_at=now, work_order_id=work_order_id)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise Conflict("该抽查任务已被他人完成", code="spot_check_done")
    return {
        "id": check.id,
        "state": "done",
        "verdict": data.verdict,
        "work_order_id": work_order_id,
    }


async def _policy(db: AsyncSession, ctx: LoopContext, region_code: str):
    return await policy_service.effective(db=db, region_code=region_code)
