"""The follow-up rating (追评): once after rectification, beside the first, never over it.

Only the rater gives it: through their progress link, or through a channel client that
holds a case-bound channel and posts it for them (recorded as such: which client, which
channel). People in the console never do; what staff hear on a callback is the callback's
verdict, recorded under the staff member's name (`service.record_callback`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Forbidden, Invalid
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import schemas as evaluation_schemas
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import CASE_BOUND_CHANNELS, Channel
from haochaping.evaluations.models import Evaluation
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import notify, schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import Action, State

# States in which the unit has answered (rectified or explained) and a follow-up makes sense.
ANSWERED = {State.CALLBACK.value, State.EXPLAINED.value, State.CLOSED.value}


async def add_for_rater(
    *,
    db: AsyncSession,
    principal: Principal,
    order: WorkOrder,
    data: schemas.FollowUpCreate,
    rules: evaluation_service.IntakeRules,
    ctx: LoopContext,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """A channel client posts the rater's follow-up for them; a person never may (403)."""
    if not principal.is_client:
        raise Forbidden(
            "追评只能由评价人本人通过进度查询链接或评价渠道提交，工作人员不能代为评价",
            code="followup_rater_only",
        )
    first = await db.get(Evaluation, order.evaluation_id)
    channel = data.channel or first.channel  # type: ignore[union-attr]
    if channel not in CASE_BOUND_CHANNELS:
        raise Invalid(
            "追评须通过办件的评价渠道提交（综合点评、监督查评渠道不能追评）",
            code="channel_not_case_bound",
            details=[{"field": "channel", "value": channel}],
        )
    evaluation_service.check_channel(actor=principal, channel=channel)
    actor = wo_service.Actor(
        kind="client", role=wo_service.CITIZEN.role, name=principal.name, id=principal.id
    )
    return await add(
        db=db,
        order=order,
        data=data,
        rules=rules,
        ctx=ctx,
        source_ip=source_ip,
        actor=actor,
        channel=channel,
        client_id=principal.id,
    )


async def add(
    *,
    db: AsyncSession,
    order: WorkOrder,
    data: schemas.FollowUpIn,
    rules: evaluation_service.IntakeRules,
    ctx: LoopContext,
    source_ip: str | None = None,
    actor: wo_service.Actor = wo_service.CITIZEN,
    channel: str | None = None,
    client_id: int | None = None,
) -> dict[str, Any]:
    """Store the follow-up as evaluation count 2; a bad one re-opens supervision.

    `actor` is the rater (their link) or the channel client posting for them; the stored
    rating names that client and channel, never the client or person of the first rating."""
    policy = PolicyValues.model_validate(order.policy)
    if order.followups >= policy.followup_allowance:
        raise Conflict("已追加过评价，每个差评只能追评一次", code="followup_used")
    if order.state not in ANSWERED or (order.rectified_at is None and order.explained_at is None):
        raise Invalid("整改完成后才能追加评价", code="followup_not_open")
    first = await db.get(Evaluation, order.evaluation_id)
    assert first is not None  # a work order's rating (foreign key)
    channel = channel or first.channel
    content = evaluation_schemas.EvaluationCreate(
        case_no=None,
        stage=first.stage,
        channel=Channel(channel),
        level=data.level,
        reasons=list(data.reasons),
        comment=data.comment,
    )
    evaluation_service.check_content(data=content, rules=rules)
    now = utcnow()
    # Numbers the rater typed are masked in the stored comment and in the event's note.
    comment = evaluation_service.comment_columns(data.comment)
    row = {
        c.key: getattr(first, c.key) for c in Evaluation.__table__.columns if c.key not in ("id",)
    }
    row.update(
        {
            "eval_count": first.eval_count + 1,
            "level": data.level,
            "reasons": list(data.reasons),
            **comment,
            "tagset_version": rules.tagset_version,
            "source_ip": source_ip,
            "channel": channel,
            "client_id": client_id,
            "user_id": None,
            "user_agent": "api" if actor.kind == "client" else "link",
            "evaluated_at": now,
            "displayed_at": None,
            "received_at": now,
            "invitation_id": None,
            "is_default": False,
        }
    )
    new_id = await evaluation_service.insert_one(db, row)
    followups = order.followups + 1
    trace = {"followup_evaluation_id": new_id, "channel": channel, "client_id": client_id}
    bad = rules.is_bad(data.level)
    if bad:
        action = (
            Action.REOPEN if order.state == State.CLOSED.value else Action.CALLBACK_DISSATISFIED
        )
        changes = {
            "followups": followups,
            "supervising_at": now,
            "escalations": order.escalations + 1,
        }
        await wo_service.transition(
            db=db,
            order=order,
            action=action,
            actor=actor,
            note=comment["comment"] or "追评不满意",
            changes=changes,
            data=trace,
            now=now,
        )
        await notify.escalated(db=db, order=order, reason="评价人追评不满意")
    elif order.state in (State.CALLBACK.value, State.EXPLAINED.value):
        await wo_service.transition(
            db=db,
            order=order,
            action=Action.CALLBACK_SATISFIED,
            actor=actor,
            note="评价人追评满意",
            now=now,
            changes={"followups": followups, "closed_at": now, "close_reason": "followup_good"},
            data=trace,
        )
    else:
        await wo_service.bump(
            db=db,
            order=order,
            changes={"followups": followups},
            note="评价人追加评价",
            now=now,
            actor=actor,
            data=trace,
        )
    return {
        "id": new_id,
        "eval_count": row["eval_count"],
        "level": data.level,
        "work_order_state": order.state,
    }
