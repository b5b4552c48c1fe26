"""The bad-review closed loop (差评整改): open, act, call back, follow up, supervise.

Every state change goes through `next_state` (the pure table), is applied with an optimistic
version check (two handlers at once: one wins, the other gets 409), leaves an event row, and
writes its notifications to the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from haochaping.core.auth import Principal
from haochaping.core.db import rows_changed
from haochaping.core.errors import Conflict, Forbidden, Invalid, NotFound
from haochaping.core.roles import Role
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.orgs.service import get_org
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import notify, webhooks
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.choices import ActorKind, OrderEvent
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import (
    Attachment,
    CallbackAttempt,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderUnit,
)
from haochaping.workorders.states import (
    FINAL_STATES,
    Action,
    IllegalTransition,
    RoleNotAllowed,
    State,
    next_state,
    records_callback,
)

CALLBACK_BY_OFFICE = (
    "本地区的回访由政务服务管理机构独立开展，责任单位不能记录本单位工单的回访或以联系不上办结"
)


@dataclass(frozen=True)
class Actor:
    """Who acts on a work order: a person (by role), the deadline job, or the rater."""

    kind: str  # user | system | citizen | client (a channel acting for the rater)
    role: str
    name: str
    id: int | None = None
    org_path: str = "/"

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        if principal.is_client:
            raise Forbidden("工单操作需要人员账号登录", code="user_required")
        return cls(
            kind="user",
            role=principal.role or "",
            name=principal.name,
            id=principal.id,
            org_path=principal.org_path,
        )


SYSTEM = Actor(kind="system", role=Role.SYSTEM, name="系统")
CITIZEN = Actor(kind="citizen", role=Role.CITIZEN, name="评价人")


Opening = tuple[dict[str, Any], PolicyValues, int | None]  # rating, policy, policy id


async def open_for_evaluation(
    *,
    db: AsyncSession,
    evaluation: dict[str, Any],
    policy: PolicyValues,
    policy_id: int | None,
    ctx: LoopContext,
    now: datetime | None = None,
    origin: str = "bad_rating",
) -> WorkOrder:
    """Open the work order of a bad rating for the unit that served (谁办理谁负责)."""
    (order,) = await open_for_evaluations(
        db=db, openings=[(evaluation, policy, policy_id)], ctx=ctx, now=now, origin=origin
    )
    return order


async def open_for_evaluations(
    *,
    db: AsyncSession,
    openings: Sequence[Opening],
    ctx: LoopContext,
    now: datetime | None = None,
    origin: str = "bad_rating",
) -> list[WorkOrder]:
    """Open the work orders of bad ratings stored together (a batch): the same rows as one
    at a time, in a few INSERTs (one per table, one for the notifications)."""
    now = now or utcnow()
    orders = []
    for evaluation, policy, policy_id in openings:
        order = WorkOrder(
            evaluation_id=evaluation["id"],
            case_id=evaluation.get("case_id"),
            origin=origin,
            org_id=evaluation["org_id"],
            region_code=evaluation["region_code"],
            state=State.VERIFYING.value,
            version=1,
            policy_id=policy_id,
            policy=policy.model_dump(mode="json"),
            opened_at=now,
        )
        verified = ctx.deadlines.set_verify(order, now, policy)
        verified &= ctx.deadlines.set_rectify(order, now, policy.rectify_days, policy)
        order.deadlines_verified = verified
        orders.append(order)
    db.add_all(orders)
    await db.flush()
    for order in orders:
        db.add(WorkOrderUnit(work_order_id=order.id, org_id=order.org_id, role="lead"))
        db.add(
            WorkOrderEvent(
                work_order_id=order.id,
                action=OrderEvent.OPEN.value,
                from_state=None,
                to_state=order.state,
                actor_kind=ActorKind.SYSTEM.value,
                actor_name=SYSTEM.name,
                note=None,
                data={"origin": origin},
                created_at=now,
            )
        )
    await webhooks.publish(
        db, [webhooks.Happened(o.id, OrderEvent.OPEN.value, None, o.state, now) for o in orders]
    )
    async with notify.opened_in_bulk(db):
        for order, (evaluation, _policy, _policy_id) in zip(orders, openings, strict=True):
            await notify.opened(db=db, ctx=ctx, order=order, evaluation=evaluation)
    await db.flush()
    return orders


async def get_order(*, db: AsyncSession, work_order_id: int, for_update: bool = False) -> WorkOrder:
    """A work order by id, or 404."""
    stmt = select(WorkOrder).where(WorkOrder.id == work_order_id)
    order = (await db.execute(stmt)).scalar_one_or_none()
    if order is None:
        raise NotFound("工单不存在", code="work_order_not_found")
    return order


async def unit_paths(db: AsyncSession, order: WorkOrder) -> list[tuple[str, str]]:
    """(role, org path) of every active unit on the order, the lead first."""
    rows = (
        await db.execute(
            select(WorkOrderUnit.role, Org.path)
            .join(Org, Org.id == WorkOrderUnit.org_id)
            .where(WorkOrderUnit.work_order_id == order.id, WorkOrderUnit.active.is_(True))
            .order_by(WorkOrderUnit.role.desc())
        )
    ).all()
    return [(r, p) for r, p in rows]


async def window_path(db: AsyncSession, order: WorkOrder) -> str | None:
    """The path of the window the order's rating was given at, if it names one."""
    window = aliased(Org)
    return (
        await db.execute(
            select(window.path)
            .join(Evaluation, Evaluation.window_id == window.id)
            .where(Evaluation.id == order.evaluation_id)
        )
    ).scalar_one_or_none()


async def require_visible(db: AsyncSession, principal: Principal, order: WorkOrder) -> None:
    """404-equivalent 403 unless one of the order's units lies in the caller's subtree, or
    (window staff) the window the rating was given at does, wherever the order went."""
    if any(principal.covers(p) for _, p in await unit_paths(db, order)):
        return
    if principal.has_role(Role.STAFF):
        path = await window_path(db, order)
        if path is not None and principal.covers(path):
            return
    raise Forbidden("该工单不属于本单位或下级单位", code="out_of_scope")


async def _require_may_act(db: AsyncSession, actor: Actor, order: WorkOrder) -> None:
    if actor.kind != "user":
        return
    lead = await db.get(Org, order.org_id)
    # Co-handling units see the order; only the lead unit and offices above it act on it.
    if not lead.path.startswith(actor.org_path):  # type: ignore[union-attr]
        raise Forbidden("只有牵头单位或上级管理机构可以办理该工单", code="out_of_scope")


def _check(order: WorkOrder, action: Action, actor: Actor) -> State:
    try:
        return next_state(State(order.state), action, actor.role)
    except RoleNotAllowed as exc:
        raise Forbidden(
            "当前角色无权执行此操作",
            code="role_forbidden",
            details=[{"action": action.value, "role": actor.role}],
        ) from exc
    except IllegalTransition as exc:
        raise Conflict(
            f"工单当前状态（{order.state}）不允许“{action.value}”操作",
            code="illegal_transition",
            details=[{"state": order.state, "action": action.value}],
        ) from exc


async def transition(
    *,
    db: AsyncSession,
    order: WorkOrder,
    action: Action,
    actor: Actor,
    note: str | None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    attachment_ids: list[int] | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> WorkOrderEvent:
    """Apply one action: table check, version-checked UPDATE, event, attachments."""
    now = now or utcnow()
    to_state = _check(order, action, actor)
    if expected_version is not None and expected_version != order.version:
        raise Conflict(
            "工单已被他人更新，请刷新后重试",
            code="stale_version",
            details=[{"current_version": order.version}],
        )
    from_state, version = order.state, order.version
    values = {"state": to_state.value, "version": version + 1, "updated_at": now, **(changes or {})}
    result = await db.execute(
        update(WorkOrder)
        .where(
            WorkOrder.id == order.id, WorkOrder.version == version, WorkOrder.state == from_state
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise Conflict("工单已被他人同时处理，请刷新后查看最新状态", code="concurrent_update")
    for key, value in values.items():
        set_committed_value(order, key, value)  # written above; not dirty for the ORM
    event = WorkOrderEvent(
        work_order_id=order.id,
        action=action.value,
        from_state=from_state,
        to_state=to_state.value,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        note=note,
        data=data or {},
        created_at=now,
    )
    db.add(event)
    await db.flush()
    await webhooks.publish(
        db, [webhooks.Happened(order.id, action.value, from_state, to_state.value, now)]
    )
    if attachment_ids:
        await _attach(db, order, event, attachment_ids)
    return event


async def order_of_rating(
    db: AsyncSession, evaluation_id: int, *, lock: bool = False
) -> WorkOrder | None:
    """The work order a bad rating opened, if any (locked for update on request)."""
    stmt = select(WorkOrder).where(WorkOrder.evaluation_id == evaluation_id)
    return (await db.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()


def refuse_if_appealing(order: WorkOrder | None) -> None:
    """A held rating under appeal is settled by the appeal's decision, not by a review."""
    if order is not None and order.state == State.APPEALING.value:
        raise Conflict(
            "该差评正在申诉复核中，请在申诉复核中作出决定",
            code="appeal_pending",
            details=[{"work_order_id": order.id}],
        )


async def end_invalidated(
    *,
    db: AsyncSession,
    order: WorkOrder | None,
    principal: Principal,
    note: str | None,
    reason: str,
    now: datetime | None = None,
) -> WorkOrderEvent | None:
    """End the open work order of a rating a review has just judged invalid (疑似刷评 or a
    registered malicious rater): nothing more to rectify. Closed orders stay as they were."""
    if order is None or State(order.state) in FINAL_STATES:
        return None
    refuse_if_appealing(order)
    now = now or utcnow()
    actor = Actor(
        kind="user",
        role=Role.REVIEW.value,
        name=principal.name,
        id=principal.id,
        org_path=principal.org_path,
    )
    return await transition(
        db=db,
        order=order,
        action=Action.INVALIDATE,
        actor=actor,
        note=note,
        now=now,
        data={"reason": reason},
        changes={"closed_at": now, "close_reason": reason},
    )


async def _attach(
    db: AsyncSession, order: WorkOrder, event: WorkOrderEvent, ids: list[int]
) -> None:
    rows = (await db.execute(select(Attachment).where(Attachment.id.in_(ids)))).scalars().all()
    found = {a.id: a for a in rows}
    for attachment_id in ids:
        a = found.get(attachment_id)
        if a is None or a.work_order_id != order.id or a.event_id is not None:
            raise Invalid(
                f"附件 {attachment_id} 不存在、不属于该工单或已被使用",
                code="invalid_attachment",
                details=[{"field": "attachment_ids"}],
            )
        a.event_id = event.id


async def act(
    *,
    db: AsyncSession,
    principal: Principal,
    order: WorkOrder,
    data: Any,
    ctx: LoopContext,
    now: datetime | None = None,
) -> WorkOrderEvent:
    """Take a handler's or office's action on a work order (the route's one service call)."""
    now = now or utcnow()
    actor = Actor.of(principal)
    await _require_may_act(db, actor, order)
    policy = PolicyValues.model_validate(order.policy)
    common = {
        "attachment_ids": data.attachment_ids,
        "expected_version": data.version,
        "now": now,
        "actor": actor,
        "db": db,
        "order": order,
    }
    kind = data.action
    if kind == "verify":
        return await transition(
            action=Action.VERIFY, note=data.note, changes={"verified_at": now}, **common
        )
    if kind == "transfer":
        return await _transfer(data=data, policy=policy, ctx=ctx, **common)
    if kind == "explain":
        changes = {"explained_at": now, **_callback_deadline(ctx, now, policy)}
        event = await transition(action=Action.EXPLAIN, note=data.note, changes=changes, **common)
        await notify.callback_invitation(db=db, ctx=ctx, order=order)
        return event
    if kind == "report_rectified":
        changes = {"rectified_at": now, **_callback_deadline(ctx, now, policy)}
        event = await transition(
            action=Action.REPORT_RECTIFIED, note=data.note, changes=changes, **common
        )
        await notify.callback_invitation(db=db, ctx=ctx, order=order)
        return event
    if kind in ("callback", "close_unreachable") and not records_callback(
        actor.role, policy.callback_by
    ):
        raise Forbidden(CALLBACK_BY_OFFICE, code="callback_by_office")
    if kind == "callback":
        return await _callback(data=data, policy=policy, **common)
    if kind == "close_unreachable":
        if order.callback_attempts < policy.max_contact_attempts:
            raise Invalid(
                f"回访未满 {policy.max_contact_attempts} 次，不能以联系不上办结"
                f"（已回访 {order.callback_attempts} 次）",
                code="too_few_attempts",
            )
        return await transition(
            action=Action.CLOSE_UNREACHABLE,
            note=data.note,
            changes={"closed_at": now, "close_reason": "unreachable"},
            **common,
        )
    if kind == "escalate":
        event = await transition(
            action=Action.ESCALATE, note=data.note, changes=_supervise(order, now), **common
        )
        await notify.escalated(db=db, order=order, reason=data.note)
        return event
    if kind == "redispatch":
        return await _redispatch(data=data, policy=policy, ctx=ctx, **common)
    if kind == "hold_accountable":
        return await transition(action=Action.HOLD_ACCOUNTABLE, note=data.note, **common)
    if kind == "close":
        return await transition(
            action=Action.CLOSE,
            note=data.note,
            changes={"closed_at": now, "close_reason": "office_closed"},
            **common,
        )
    raise Invalid(f"未知操作 {kind}", code="unknown_action")  # pragma: no cover


def _callback_deadline(ctx: LoopContext, now: datetime, policy: PolicyValues) -> dict[str, Any]:
    due, warn, verified = ctx.deadlines.compute(now, policy.callback_days, policy.warn_days)
    return {
        "callback_due_at": due,
        "callback_warn_at": warn,
        "warned_callback_at": None,
        "overdue_at": None,
        "deadlines_verified": verified,
    }


def _supervise(order: WorkOrder, now: datetime) -> dict[str, Any]:
    return {"supervising_at": now, "escalations": order.escalations + 1}


async def _transfer(
    *,
    data: wo_schemas.TransferIn,
    policy: PolicyValues,
    ctx: LoopContext,
    db: AsyncSession,
    order: WorkOrder,
    actor: Actor,
    **common: Any,
) -> WorkOrderEvent:
    lead = await get_org(db=db, code=data.lead_org_code, field="lead_org_code")
    if lead.id == order.org_id:
        raise Invalid(
            "牵头单位与当前单位相同，无需转办",
            code="same_unit",
            details=[{"field": "lead_org_code"}],
        )
    co_orgs = [await get_org(db=db, code=c, field="co_org_codes") for c in data.co_org_codes]
    due, warn, verified = ctx.deadlines.compute(common["now"], policy.verify_days, policy.warn_days)
    event = await transition(
        db=db,
        order=order,
        actor=actor,
        action=Action.TRANSFER,
        note=data.note,
        changes={
            "org_id": lead.id,
            "verified_at": None,
            "verify_due_at": due,
            "verify_warn_at": warn,
            "warned_verify_at": None,
            "deadlines_verified": verified and order.deadlines_verified,
        },
        data={"lead_org_code": lead.code, "co_org_codes": [o.code for o in co_orgs]},
        **common,
    )
    await db.execute(
        update(WorkOrderUnit)
        .where(WorkOrderUnit.work_order_id == order.id)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    for org, role in [(lead, "lead"), *[(o, "co") for o in co_orgs if o.id != lead.id]]:
        existing = await db.get(WorkOrderUnit, (order.id, org.id))
        if existing is None:
            db.add(WorkOrderUnit(work_order_id=order.id, org_id=org.id, role=role))
        else:
            existing.role, existing.active = role, True
    await db.flush()
    await notify.assigned(db=db, order=order, org_ids=[lead.id, *[o.id for o in co_orgs]])
    return event


async def _callback(
    *,
    data: wo_schemas.CallbackIn,
    policy: PolicyValues,
    db: AsyncSession,
    order: WorkOrder,
    actor: Actor,
    now: datetime,
    **common: Any,
) -> WorkOrderEvent:
    if data.reached and data.verdict is None:
        raise Invalid(
            "联系上评价人时须记录其评价（满意/基本满意/不满意）",
            code="verdict_required",
            details=[{"field": "verdict"}],
        )
    if not data.reached and data.verdict is not None:
        raise Invalid(
            "未联系上评价人时不能记录评价",
            code="verdict_without_contact",
            details=[{"field": "verdict"}],
        )
    return await record_callback(
        db=db,
        order=order,
        actor=actor,
        now=now,
        method=data.method,
        reached=data.reached,
        verdict=data.verdict,
        note=data.note,
        **common,
    )


async def record_callback(
    *,
    db: AsyncSession,
    order: WorkOrder,
    actor: Actor,
    now: datetime,
    method: str,
    reached: bool,
    verdict: str | None,
    note: str | None,
    **common: Any,
) -> WorkOrderEvent:
    """A callback attempt and its consequence: closed, supervised, or one more try."""
    if not reached:
        changes: dict[str, Any]
        action, changes = (
            Action.CALLBACK_UNREACHED,
            {"callback_attempts": order.callback_attempts + 1},
        )
    elif verdict in ("satisfied", "basic"):
        action, changes = (
            Action.CALLBACK_SATISFIED,
            {
                "callback_attempts": order.callback_attempts + 1,
                "closed_at": now,
                "close_reason": f"callback_{verdict}",
            },
        )
    else:
        action, changes = (
            Action.CALLBACK_DISSATISFIED,
            {"callback_attempts": order.callback_attempts + 1, **_supervise(order, now)},
        )
    event = await transition(
        db=db,
        order=order,
        actor=actor,
        action=action,
        note=note,
        changes=changes,
        data={"method": method, "reached": reached, "verdict": verdict},
        now=now,
        **common,
    )
    db.add(
        CallbackAttempt(
            work_order_id=order.id,
            method=method,
            reached=reached,
            verdict=verdict,
            note=note,
            actor_name=actor.name,
            created_at=now,
        )
    )
    if action == Action.CALLBACK_DISSATISFIED:
        await notify.escalated(db=db, order=order, reason="回访不满意")
    return event


async def _redispatch(
    *,
    data: wo_schemas.RedispatchIn,
    policy: PolicyValues,
    ctx: LoopContext,
    db: AsyncSession,
    order: WorkOrder,
    actor: Actor,
    now: datetime,
    **common: Any,
) -> WorkOrderEvent:
    days = data.rectify_days or policy.rectify_days
    due, warn, verified = ctx.deadlines.compute(now, days, policy.warn_days)
    changes: dict[str, Any] = {
        "rectify_due_at": due,
        "rectify_warn_at": warn,
        "warned_rectify_at": None,
        "overdue_at": None,
        "rectified_at": None,
        "callback_due_at": None,
        "callback_warn_at": None,
        "deadlines_verified": verified,
    }
    lead = None
    if data.lead_org_code:
        lead = await get_org(db=db, code=data.lead_org_code, field="lead_org_code")
        changes["org_id"] = lead.id
    event = await transition(
        db=db,
        order=order,
        actor=actor,
        action=Action.REDISPATCH,
        note=data.note,
        changes=changes,
        now=now,
        data={"rectify_days": days, "lead_org_code": lead.code if lead else None},
        **common,
    )
    if lead is not None:
        await db.execute(
            update(WorkOrderUnit)
            .where(WorkOrderUnit.work_order_id == order.id)
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        existing = await db.get(WorkOrderUnit, (order.id, lead.id))
        if existing is None:
            db.add(WorkOrderUnit(work_order_id=order.id, org_id=lead.id, role="lead"))
        else:
            existing.role, existing.active = "lead", True
        await db.flush()
    await notify.assigned(db=db, order=order, org_ids=[order.org_id])
    return event


async def bump(
    *,
    db: AsyncSession,
    order: WorkOrder,
    changes: dict[str, Any],
    note: str | None = None,
    now: datetime | None = None,
    actor: Actor = CITIZEN,
    data: dict[str, Any] | None = None,
) -> None:
    """Record a change that keeps the state (e.g. a good follow-up on a closed order)."""
    now = now or utcnow()
    version = order.version
    values = {"version": version + 1, "updated_at": now, **changes}
    result = await db.execute(
        update(WorkOrder)
        .where(WorkOrder.id == order.id, WorkOrder.version == version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise Conflict("工单已被他人同时处理，请刷新后查看最新状态", code="concurrent_update")
    for key, value in values.items():
        set_committed_value(order, key, value)
    db.add(
        WorkOrderEvent(
            work_order_id=order.id,
            action=OrderEvent.FOLLOWUP.value,
            from_state=order.state,
            to_state=order.state,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_name=actor.name,
            note=note,
            data={**changes, **(data or {})},
            created_at=now,
        )
    )
    await webhooks.publish(
        db,
        [webhooks.Happened(order.id, OrderEvent.FOLLOWUP.value, order.state, order.state, now)],
    )
