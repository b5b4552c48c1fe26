"""The rater's side of the closed loop, behind their progress link (/p/<token>).

What the rater may see is decided here, not in a template: the public step of each change
(`PUBLIC_STATE_LABELS`), the unit's answer (the notes of `report_rectified` and `explain`,
with phone and ID numbers masked), and nothing else — no internal notes, no staff names.
What the rater may do: give their verdict while a callback is due, and add the one
follow-up rating (追评) once the unit has answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.config import Settings
from haochaping.core.errors import Conflict, NotFound
from haochaping.core.security import mask_text
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.service import IntakeRules
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import followup
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.choices import VERDICT_LABELS, OrderEvent
from haochaping.workorders.context import LoopContext, read_progress_token
from haochaping.workorders.models import WorkOrder, WorkOrderEvent
from haochaping.workorders.states import PUBLIC_STATE_LABELS, State

# Events whose note is the unit's answer to the rater (what was done, or why not).
ANSWER_ACTIONS = {"report_rectified": "整改情况", "explain": "解释说明"}
# States in which the rater is asked whether they are satisfied (回访).
VERDICT_STATES = frozenset({State.CALLBACK.value, State.EXPLAINED.value})
INVALID_LINK = "进度查询链接无效，请核对短信中的链接，或拨打 12345 政务服务热线查询"


@dataclass(frozen=True)
class Step:
    """One public step of the loop: what happened, when."""

    label: str
    at: datetime


@dataclass(frozen=True)
class Answer:
    """The unit's answer: what was rectified, or the explanation given."""

    kind: str
    text: str
    at: datetime


@dataclass
class Progress:
    """Everything the progress page shows and offers."""

    state: str
    state_label: str
    level: int
    evaluated_at: datetime
    case_id: int | None
    version: int
    steps: list[Step] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    verdict_open: bool = False
    followup_open: bool = False
    followup_used: bool = False
    followup_level: int | None = None


async def order_for_token(*, db: AsyncSession, settings: Settings, token: str) -> WorkOrder:
    """The work order behind a progress link; 404 for a forged link or a rating without one."""
    evaluation_id = read_progress_token(settings, token)
    order = None
    if evaluation_id is not None:
        order = (
            await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == evaluation_id))
        ).scalar_one_or_none()
    if order is None:
        raise NotFound(INVALID_LINK, code="progress_link_invalid")
    return order


async def progress_path(
    *, db: AsyncSession, ctx: LoopContext, evaluation_id: int | None
) -> str | None:
    """The relative progress link of a rating that opened a work order (else None)."""
    if evaluation_id is None:
        return None
    exists = (
        await db.execute(select(WorkOrder.id).where(WorkOrder.evaluation_id == evaluation_id))
    ).first()
    return f"/p/{ctx.progress_token(evaluation_id)}" if exists else None


def _followup_state(order: WorkOrder) -> tuple[bool, bool]:
    """(open, used) of the follow-up rating under the order's policy."""
    allowance = PolicyValues.model_validate(order.policy).followup_allowance
    used = allowance > 0 and order.followups >= allowance
    answered = order.rectified_at is not None or order.explained_at is not None
    is_open = not used and allowance > 0 and answered and order.state in followup.ANSWERED
    return is_open, used


async def progress(*, db: AsyncSession, order: WorkOrder) -> Progress:
    """The public view of a work order for its rater."""
    first = await db.get(Evaluation, order.evaluation_id)
    assert first is not None  # a work order always has its rating (foreign key)
    events = (
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id)
            )
        )
        .scalars()
        .all()
    )
    view = Progress(
        state=order.state,
        state_label=PUBLIC_STATE_LABELS[State(order.state)],
        level=first.level,
        evaluated_at=first.evaluated_at,
        case_id=order.case_id,
        version=order.version,
    )
    for event in events:
        label = PUBLIC_STATE_LABELS[State(event.to_state)]
        if event.action == OrderEvent.FOLLOWUP or "followup_evaluation_id" in (event.data or {}):
            view.steps.append(Step("您追加了一次评价", event.created_at))
            if event.to_state != event.from_state:
                view.steps.append(Step(label, event.created_at))
            continue
        if event.actor_kind == "citizen" and (event.data or {}).get("verdict"):
            verdict = VERDICT_LABELS.get(event.data["verdict"], "")
            view.steps.append(Step(f"您的回访意见：{verdict}", event.created_at))
        # A change that keeps the public step (a failed call, 督办 → 问责) is not repeated.
        if not view.steps or view.steps[-1].label != label:
            view.steps.append(Step(label, event.created_at))
        if event.action in ANSWER_ACTIONS and event.note:
            view.answers.append(
                Answer(ANSWER_ACTIONS[event.action], mask_text(event.note) or "", event.created_at)
            )
    view.answers.reverse()  # the latest answer first
    view.verdict_open = order.state in VERDICT_STATES
    view.followup_open, view.followup_used = _followup_state(order)
    if view.followup_used:
        view.followup_level = (
            (
                await db.execute(
                    select(Evaluation.level).where(
                        Evaluation.case_id == first.case_id,
                        Evaluation.stage == first.stage,
                        Evaluation.eval_count == first.eval_count + 1,
                    )
                )
            ).scalar_one_or_none()
            if first.case_id is not None
            else None
        )
    return view


async def give_verdict(
    *,
    db: AsyncSession,
    order: WorkOrder,
    data: wo_schemas.CitizenVerdictIn,
    version: int | None,
    now: datetime | None = None,
) -> WorkOrderEvent:
    """The rater's own callback answer through the link: satisfied closes, not supervises."""
    if order.state not in VERDICT_STATES:
        raise Conflict("目前无需您评价整改结果，或您已经提交过意见", code="verdict_not_open")
    note = (data.note or "").strip() or None
    return await wo_service.record_callback(
        db=db,
        order=order,
        actor=wo_service.CITIZEN,
        now=now or utcnow(),
        method="link",
        reached=True,
        verdict=data.verdict,
        note=note,
        expected_version=version,
    )


async def add_follow_up(
    *,
    db: AsyncSession,
    order: WorkOrder,
    data: wo_schemas.FollowUpIn,
    rules: IntakeRules,
    ctx: LoopContext,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """The rater's one follow-up rating through the link (stored as evaluation count 2)."""
    return await followup.add(
        db=db, order=order, data=data, rules=rules, ctx=ctx, source_ip=source_ip
    )
