"""The follow-up rating (追评): once after rectification, beside the first, never over it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.errors import Conflict, Invalid
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import schemas as evaluation_schemas
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.models import Evaluation
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import Action, State

# States in which the unit has answered (rectified or explained) and a follow-up makes sense.
ANSWERED = {State.CALLBACK.value, State.EXPLAINED.value, State.CLOSED.value}


async def add(*, db: AsyncSession, order: WorkOrder, data: schemas.FollowUpIn,
              rules: evaluation_service.IntakeRules, ctx: LoopContext,
              source_ip: str | None = None, via: str = "api") -> dict[str, Any]:
    """Store the follow-up as evaluation count 2; a bad one re-opens supervision."""
    policy = PolicyValues.model_validate(order.policy)
    if order.followups >= policy.followup_allowance:
        raise Conflict("已追加过评价，每个差评只能追评一次", code="followup_used")
    if order.state not in ANSWERED or (order.rectified_at is None
                                       and order.explained_at is None):
        raise Invalid("整改完成后才能追加评价", code="followup_not_open")
    first = await db.get(Evaluation, order.evaluation_id)
    content = evaluation_schemas.EvaluationCreate(
        case_no=None, stage=first.stage, channel=first.channel,  # type: ignore[union-attr]
        level=data.level, reasons=data.reasons, comment=data.comment)
    evaluation_service.check_content(data=content, rules=rules)
    now = utcnow()
    # Numbers the rater typed are masked in the stored comment and in the event's note.
    comment = evaluation_service.comment_columns(data.comment)
    row = {c.key: getattr(first, c.key) for c in Evaluation.__table__.columns
           if c.key not in ("id",)}
    row.update({"eval_count": first.eval_count + 1, "level": data.level,  # type: ignore[union-attr]
                "reasons": list(data.reasons), **comment,
                "tagset_version": rules.tagset_version, "source_ip": source_ip,
                "user_agent": via, "evaluated_at": now, "received_at": now,
                "invitation_id": None, "is_default": False})
    new_id = await evaluation_service.insert_one(db, row)
    followups = order.followups + 1
    bad = rules.is_bad(data.level)
    if bad:
        action = Action.REOPEN if order.state == State.CLOSED.value else \
            Action.CALLBACK_DISSATISFIED
        changes = {"followups": followups, "supervising_at": now,
                   "escalations": order.escalations + 1}
        await wo_service.transition(db=db, order=order, action=action, actor=wo_service.CITIZEN,
                                    note=comment["comment"] or "追评不满意", changes=changes,
                                    data={"followup_evaluation_id": new_id}, now=now)
        from haochaping.workorders import notify

        await notify.escalated(db=db, order=order, reason="评价人追评不满意")
    elif order.state in (State.CALLBACK.value, State.EXPLAINED.value):
        await wo_service.transition(
            db=db, order=order, action=Action.CALLBACK_SATISFIED, actor=wo_service.CITIZEN,
            note="评价人追评满意", now=now,
            changes={"followups": followups, "closed_at": now,
                     "close_reason": "followup_good"},
            data={"followup_evaluation_id": new_id})
    else:
        await wo_service.bump(db=db, order=order, changes={"followups": followups},
                              note="评价人追加评价", now=now)
    return {"id": new_id, "eval_count": row["eval_count"], "level": data.level,
            "work_order_state": order.state}
