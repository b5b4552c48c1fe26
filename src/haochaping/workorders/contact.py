"""Reaching the rater for a callback: the handler may reveal the phone number, on record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid
from haochaping.core.roles import HANDLERS
from haochaping.core.security import mask_text
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.models import SpotCheck, WorkOrder
from haochaping.workorders.states import OPEN_STATES, State

# How long the console shows a revealed number before it is masked again (the page never
# stores it: a reload shows it masked).
REVEAL_SECONDS = 120
REASON_MAX = 200


async def reveal_phone(
    *,
    db: AsyncSession,
    principal: Principal,
    order: WorkOrder,
    source_ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The rater's phone number for a callback, and an audit record of who saw it and why
    (the reason as given, with any number in it masked)."""
    if principal.is_client or principal.role not in HANDLERS:
        raise Forbidden("只有办理人员可以查看评价人联系电话", code="role_forbidden")
    lead = await db.get(Org, order.org_id)
    principal.require(lead.path)  # type: ignore[union-attr]
    if State(order.state) not in OPEN_STATES:
        raise Invalid("工单已办结，不能再查看评价人联系电话", code="work_order_closed")
    return await _reveal(
        db=db,
        principal=principal,
        evaluation_id=order.evaluation_id,
        target=("work_order", order.id, "callback"),
        source_ip=source_ip,
        reason=reason,
    )


async def reveal_spot_check_phone(
    *,
    db: AsyncSession,
    principal: Principal,
    check: SpotCheck,
    source_ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The phone number of a sampled good rating's rater, for the spot-check call, and an
    audit record of who saw it and why (the rules of a work order's reveal)."""
    if principal.is_client or principal.role not in HANDLERS:
        raise Forbidden("只有办理人员可以查看评价人联系电话", code="role_forbidden")
    org = await db.get(Org, check.org_id)
    principal.require(org.path)  # type: ignore[union-attr]
    if check.state != "pending":
        raise Invalid("该抽查任务已完成，不能再查看评价人联系电话", code="spot_check_done")
    return await _reveal(
        db=db,
        principal=principal,
        evaluation_id=check.evaluation_id,
        target=("spot_check", check.id, "spot_check"),
        source_ip=source_ip,
        reason=reason,
    )


async def _reveal(
    *,
    db: AsyncSession,
    principal: Principal,
    evaluation_id: int,
    target: tuple[str, int, str],
    source_ip: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The rater's number and name, with the audit row of the reveal: `target` is what the
    call is for, as (target type, its id, purpose)."""
    ev = await db.get(Evaluation, evaluation_id)
    if ev is None or not ev.rater_phone:
        raise Invalid("评价人未留联系电话", code="no_phone")
    target_type, target_id, purpose = target
    audit.record(
        db,
        actor=principal.name,
        actor_role=principal.role,
        action=audit.AuditAction.REVEAL_PHONE,
        target_type=target_type,
        target_id=target_id,
        detail={
            "evaluation_id": ev.id,
            "purpose": purpose,
            **({"reason": mask_text(reason.strip()[:REASON_MAX])} if reason else {}),
        },
        source_ip=source_ip,
    )
    await db.flush()
    return {"phone": ev.rater_phone, "name": None if ev.anonymous else ev.rater_name}
