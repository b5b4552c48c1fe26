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
    ev = await db.get(Evaluation, order.evaluation_id)
    if ev is None or not ev.rater_phone:
        raise Invalid("评价人未留联系电话", code="no_phone")
    audit.record(
        db,
        actor=principal.name,
        actor_role=principal.role,
        action=audit.AuditAction.REVEAL_PHONE,
        target_type="work_order",
        target_id=order.id,
        detail={
            "evaluation_id": ev.id,
            "purpose": "callback",
            **({"reason": mask_text(reason.strip()[:REASON_MAX])} if reason else {}),
        },
        source_ip=source_ip,
    )
    await db.flush()
    return {"phone": ev.rater_phone, "name": None if ev.anonymous else ev.rater_name}


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
    ev = await db.get(Evaluation, check.evaluation_id)
    if ev is None or not ev.rater_phone:
        raise Invalid("评价人未留联系电话", code="no_phone")
    audit.record(
        db,
        actor=principal.name,
        actor_role=principal.role,
        action=audit.AuditAction.REVEAL_PHONE,
        target_type="spot_check",
        target_id=check.id,
        detail={
            "evaluation_id": ev.id,
            "purpose": "spot_check",
            **({"reason": mask_text(reason.strip()[:REASON_MAX])} if reason else {}),
        },
        source_ip=source_ip,
    )
    await db.flush()
    return {"phone": ev.rater_phone, "name": None if ev.anonymous else ev.rater_name}
