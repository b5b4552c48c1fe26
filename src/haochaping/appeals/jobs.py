"""The appeal decision deadline: the office is warned before it and told after it, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appeals.models import Appeal
from haochaping.core.timeutil import fmt_local
from haochaping.workorders import notify

WARN_BEFORE = timedelta(days=1)


async def sweep(db: AsyncSession, now: datetime) -> dict[str, int]:
    """Warn about appeals due within a day; escalate overdue ones (the caller commits)."""
    warned = (
        await db.execute(
            update(Appeal)
            .where(
                Appeal.state == "pending",
                Appeal.decide_warned_at.is_(None),
                Appeal.decide_due_at <= now + WARN_BEFORE,
                Appeal.decide_due_at > now,
            )
            .values(decide_warned_at=now)
            .returning(Appeal.id, Appeal.org_id, Appeal.decide_due_at)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for appeal_id, org_id, due in warned:
        await notify.outbox_mail(
            db,
            kind="appeal_warning",
            recipients=await notify.office_handlers(db, org_id),
            subject=f"【临期预警】申诉 #{appeal_id} 复核期限将至",
            body=f"申诉 #{appeal_id} 须在 {fmt_local(due)} 前作出复核决定。\n",
            order_id=0,
            dedupe=f"appeal-warn:{appeal_id}",
        )
    overdue = (
        await db.execute(
            update(Appeal)
            .where(
                Appeal.state == "pending", Appeal.escalated_at.is_(None), Appeal.decide_due_at < now
            )
            .values(escalated_at=now)
            .returning(Appeal.id, Appeal.org_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for appeal_id, org_id in overdue:
        await notify.outbox_mail(
            db,
            kind="appeal_overdue",
            recipients=await notify.office_handlers(db, org_id),
            subject=f"【超期督办】申诉 #{appeal_id} 复核已超期",
            body=f"申诉 #{appeal_id} 已超过复核期限，请尽快作出决定。\n",
            order_id=0,
            dedupe=f"appeal-overdue:{appeal_id}",
        )
    return {"warned": len(warned), "overdue": len(overdue)}
