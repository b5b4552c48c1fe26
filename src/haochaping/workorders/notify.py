"""Who is told what about a work order: resolved here, written to the outbox (same
transaction), delivered after commit by the outbox worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import User
from haochaping.core import outbox
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.models import WorkOrder


async def _emails(db: AsyncSession, org_id: int, roles: tuple[str, ...]) -> list[str]:
    rows = (await db.execute(
        select(User.email).where(User.org_id == org_id, User.role.in_(roles),
                                 User.active.is_(True), User.email.is_not(None))
    )).scalars().all()
    return sorted({e for e in rows if e})


async def unit_handlers(db: AsyncSession, org_id: int) -> list[str]:
    """E-mail addresses of the unit's handlers; its nearest office when it has none."""
    emails = await _emails(db, org_id, ("unit",))
    return emails or await office_handlers(db, org_id)


async def office_handlers(db: AsyncSession, org_id: int) -> list[str]:
    """E-mail addresses of the nearest management office above (or at) an organisation."""
    org = await db.get(Org, org_id)
    while org is not None:
        emails = await _emails(db, org.id, ("office", "admin"))
        if emails:
            return emails
        org = await db.get(Org, org.parent_id) if org.parent_id else None
    return []


async def _org_name(db: AsyncSession, org_id: int) -> str:
    org = await db.get(Org, org_id)
    return org.name if org else ""


async def _mail(db: AsyncSession, *, kind: str, recipients: list[str], subject: str, body: str,
                order: WorkOrder, dedupe: str | None = None) -> None:
    for rcpt in recipients:
        await outbox.enqueue(db, kind=kind, channel="email", recipient=rcpt, subject=subject,
                             body=body, payload={"work_order_id": order.id},
                             dedupe_key=f"{dedupe}:{rcpt}" if dedupe else None)


async def opened(*, db: AsyncSession, ctx: Any, order: WorkOrder,
                 evaluation: dict[str, Any]) -> None:
    """New bad review: the unit's handlers by e-mail; the rater gets their progress link."""
    unit = await _org_name(db, order.org_id)
    level = LEVEL_LABELS.get(evaluation.get("level", 0), "")
    body = (f"{unit}：\n\n收到一条“{level}”评价，已生成差评工单 #{order.id}。\n"
            f"评价内容：{evaluation.get('comment') or '（无文字）'}\n"
            f"请在核实期限前联系评价人核实情况，并在整改期限前完成整改。\n\n"
            f"工单地址：{ctx.settings.base_url.rstrip('/')}/console/work-orders/{order.id}\n")
    await _mail(db, kind="workorder_opened", recipients=await unit_handlers(db, order.org_id),
                subject=f"【差评工单】#{order.id} {unit} 收到{level}评价", body=body, order=order,
                dedupe=f"opened:{order.id}")
    phone = evaluation.get("rater_phone")
    if phone and not evaluation.get("anonymous"):
        await outbox.enqueue(
            db, kind="workorder_opened", channel="sms", recipient=phone, subject="",
            body=(f"【好差评】您对{unit}的评价已收到，我们将尽快核实整改。"
                  f"办理进度：{ctx.progress_url(order.evaluation_id)}"),
            payload={"work_order_id": order.id}, dedupe_key=f"opened-sms:{order.id}")


async def callback_invitation(*, db: AsyncSession, ctx: Any, order: WorkOrder) -> None:
    """Rectified or explained: invite the rater to say whether they are satisfied."""
    ev = await db.get(Evaluation, order.evaluation_id)
    if ev is None or not ev.rater_phone or ev.anonymous:
        return
    unit = await _org_name(db, order.org_id)
    await outbox.enqueue(
        db, kind="callback_invitation", channel="sms", recipient=ev.rater_phone, subject="",
        body=(f"【好差评】{unit}已就您的评价完成整改或说明，请告诉我们您是否满意，"
              f"也可追加一次评价：{ctx.progress_url(order.evaluation_id)}"),
        payload={"work_order_id": order.id},
        dedupe_key=f"callback-invite:{order.id}:{order.version}")


async def escalated(*, db: AsyncSession, order: WorkOrder, reason: str) -> None:
    """Supervision opened: the management office is told."""
    unit = await _org_name(db, order.org_id)
    await _mail(db, kind="escalated", recipients=await office_handlers(db, order.org_id),
                subject=f"【督办】差评工单 #{order.id}（{unit}）转入督办",
                body=f"差评工单 #{order.id}（{unit}）已转入督办。原因：{reason}\n",
                order=order, dedupe=f"escalated:{order.id}:{order.version}")


async def assigned(*, db: AsyncSession, order: WorkOrder, org_ids: list[int]) -> None:
    """Transferred or re-dispatched: the units now handling it are told."""
    for org_id in org_ids:
        unit = await _org_name(db, org_id)
        await _mail(db, kind="assigned", recipients=await unit_handlers(db, org_id),
                    subject=f"【差评工单】#{order.id} 已派至{unit}",
                    body=f"{unit}：差评工单 #{order.id} 已派至贵单位办理，请及时核实整改。\n",
                    order=order, dedupe=f"assigned:{order.id}:{order.version}:{org_id}")


async def warning(*, db: AsyncSession, order_id: int, org_id: int, kind: str,
                  due_text: str) -> None:
    """A deadline is near: the unit's handlers."""
    labels = {"verify": "核实", "rectify": "整改", "callback": "回访"}
    await outbox_mail(db, kind="deadline_warning", recipients=await unit_handlers(db, org_id),
                      subject=f"【临期预警】差评工单 #{order_id} {labels[kind]}期限将至",
                      body=(f"差评工单 #{order_id} 的{labels[kind]}期限为 {due_text}，"
                            "请抓紧办理。\n"),
                      order_id=order_id, dedupe=f"warn:{kind}:{order_id}")


async def overdue(*, db: AsyncSession, order_id: int, org_id: int, kind: str,
                  version: int) -> None:
    """A deadline passed and the order went to supervision: the office is told."""
    labels = {"verify": "核实", "rectify": "整改", "callback": "回访"}
    unit = await _org_name(db, org_id)
    await outbox_mail(db, kind="overdue", recipients=await office_handlers(db, org_id),
                      subject=f"【超期督办】差评工单 #{order_id}（{unit}）{labels[kind]}超期",
                      body=(f"差评工单 #{order_id}（{unit}）{labels[kind]}已超期，"
                            "已自动转入督办。\n"),
                      order_id=order_id, dedupe=f"overdue:{kind}:{order_id}:{version}")


async def outbox_mail(db: AsyncSession, *, kind: str, recipients: list[str], subject: str,
                      body: str, order_id: int, dedupe: str) -> None:
    for rcpt in recipients:
        await outbox.enqueue(db, kind=kind, channel="email", recipient=rcpt, subject=subject,
                             body=body, payload={"work_order_id": order_id},
                             dedupe_key=f"{dedupe}:{rcpt}")
