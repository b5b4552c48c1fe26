"""Reaching the rater for a callback: the handler may reveal the phone number, on record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid
from haochaping.core.roles import HANDLERS
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import OPEN_STATES, State


async def reveal_phone(
    *, db: AsyncSession, principal: Principal, order: WorkOrder, source_ip: str | None
) -> dict[str, Any]:
    """The rater's phone number for a callback, and an audit record of who saw it."""
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
        detail={"evaluation_id": ev.id, "purpose": "callback"},
        source_ip=source_ip,
    )
    await db.flush()
    return {"phone": ev.rater_phone, "name": None if ev.anonymous else ev.rater_name}
