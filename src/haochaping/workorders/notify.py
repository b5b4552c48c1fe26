"""Who is told what about a work order: resolved here, written to the outbox (same
transaction), delivered after commit by the outbox worker."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import User
from haochaping.core import outbox
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.choices import DEADLINE_LABELS
from haochaping.workorders.models import WorkOrder


async def _emails(db: AsyncSession, org_id: int, roles: tuple[str, ...]) -> list[str]:
    rows = (
        (
            await db.execute(
                select(User.email).where(
                    User.org_id == org_id,
                    User.role.in_(roles),
                    User.active.is_(True),
                    User.email.is_not(None),
                )
            )
        )
        .scalars()
        .all()
    )
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


async def _mail(
    db: AsyncSession,
    *,
    kind: str,
    recipients: list[str],
    subject: str,
    body: str,
    order: WorkOrder,
    dedupe: str | None = None,
) -> None:
    for rcpt in recipients:
        await outbox.enqueue(
            db,
            kind=kind,
            channel="email",
            recipient=rcpt,
            subject=subject,
            body=body,
            payload={"work_order_id": order.id},
            dedupe_key=f"{dedupe}:{rcpt}" if dedupe else None,
        )


def _opened_cache(db: AsyncSession) -> dict[int, tuple[str, list[str]]]:
    """Unit name and handlers per org, kept for the current transaction only."""
    transaction = db.sync_session.get_transaction()
    held = db.info.get("workorder_opened_recipients")
    if held is None or held[0] is not transaction:
        held = db.info["workorder_opened_recipients"] = (transaction, {})
    return held[1]


async def _unit_and_handlers(db: AsyncSession, org_id: int) -> tuple[str, list[str]]:
    """`_org_name` and `unit_handlers` of an org, looked up once per transaction: a batch of
    ratings opens many orders for the same few units (3 queries per unit, not 5 per order)."""
    cache = _opened_cache(db)
    hit = cache.get(org_id)
    if hit is None:
        who = await Recipients.load(db, {org_id})
        hit = cache[org_id] = (who.name(org_id), who.unit_handlers(org_id))
    return hit


_OPENED_IN_BULK = "workorder_opened_messages"


@asynccontextmanager
async def opened_in_bulk(db: AsyncSession) -> AsyncIterator[None]:
    """Inside, `opened` collects its messages; on leaving they go to the outbox in one
    statement (the batch route opens tens of orders at once: one INSERT, not one per message).
    Same transaction, contents and dedupe keys as one at a time; nothing is written if the
    block raises."""
    collected: list[tuple[str, str, str, str, int, str]] = []
    outer = db.info.get(_OPENED_IN_BULK)
    db.info[_OPENED_IN_BULK] = collected
    try:
        yield
    finally:
        if outer is None:
            db.info.pop(_OPENED_IN_BULK, None)
        else:
            db.info[_OPENED_IN_BULK] = outer
    if outer is not None:
        outer.extend(collected)
    else:
        await _enqueue_many(db, "workorder_opened", collected)


async def opened(
    *, db: AsyncSession, ctx: Any, order: WorkOrder, evaluation: dict[str, Any]
) -> None:
    """New bad review: the unit's handlers by e-mail; the rater gets their progress link."""
    unit, handlers = await _unit_and_handlers(db, order.org_id)
    level = LEVEL_LABELS.get(evaluation.get("level", 0), "")
    body = (
        f"{unit}：\n\n收到一条“{level}”评价，已生成差评工单 #{order.id}。\n"
        f"评价内容：{evaluation.get('comment') or '（无文字）'}\n"
        f"请在核实期限前联系评价人核实情况，并在整改期限前完成整改。\n\n"
        f"工单地址：{ctx.settings.base_url.rstrip('/')}/console/work-orders/{order.id}\n"
    )
    subject = f"【差评工单】#{order.id} {unit} 收到{level}评价"
    phone = evaluation.get("rater_phone")
    sms = None
    if phone and not evaluation.get("anonymous"):
        sms = (
            f"【好差评】您对{unit}的评价已收到，我们将尽快核实整改。"
            f"办理进度：{ctx.progress_url(order.evaluation_id)}"
        )
    collected = db.info.get(_OPENED_IN_BULK)
    if collected is not None:
        collected.extend(
            ("email", rcpt, subject, body, order.id, f"opened:{order.id}:{rcpt}")
            for rcpt in handlers
        )
        if sms is not None:
            collected.append(("sms", phone, "", sms, order.id, f"opened-sms:{order.id}"))
        return
    await _mail(
        db,
        kind="workorder_opened",
        recipients=handlers,
        subject=subject,
        body=body,
        order=order,
        dedupe=f"opened:{order.id}",
    )
    if sms is not None and phone:
        await outbox.enqueue(
            db,
            kind="workorder_opened",
            channel="sms",
            recipient=phone,
            subject="",
            body=sms,
            payload={"work_order_id": order.id},
            dedupe_key=f"opened-sms:{order.id}",
        )


async def callback_invitation(*, db: AsyncSession, ctx: Any, order: WorkOrder) -> None:
    """Rectified or explained: invite the rater to say whether they are satisfied."""
    ev = await db.get(Evaluation, order.evaluation_id)
    if ev is None or not ev.rater_phone or ev.anonymous:
        return
    unit = await _org_name(db, order.org_id)
    await outbox.enqueue(
        db,
        kind="callback_invitation",
        channel="sms",
        recipient=ev.rater_phone,
        subject="",
        body=(
            f"【好差评】{unit}已就您的评价完成整改或说明，请告诉我们您是否满意，"
            f"也可追加一次评价：{ctx.progress_url(order.evaluation_id)}"
        ),
        payload={"work_order_id": order.id},
        dedupe_key=f"callback-invite:{order.id}:{order.version}",
    )


async def escalated(*, db: AsyncSession, order: WorkOrder, reason: str) -> None:
    """Supervision opened: the management office is told."""
    unit = await _org_name(db, order.org_id)
    await _mail(
        db,
        kind="escalated",
        recipients=await office_handlers(db, order.org_id),
        subject=f"【督办】差评工单 #{order.id}（{unit}）转入督办",
        body=f"差评工单 #{order.id}（{unit}）已转入督办。原因：{reason}\n",
        order=order,
        dedupe=f"escalated:{order.id}:{order.version}",
    )


async def assigned(*, db: AsyncSession, order: WorkOrder, org_ids: list[int]) -> None:
    """Transferred or re-dispatched: the units now handling it are told."""
    for org_id in org_ids:
        unit = await _org_name(db, org_id)
        await _mail(
            db,
            kind="assigned",
            recipients=await unit_handlers(db, org_id),
            subject=f"【差评工单】#{order.id} 已派至{unit}",
            body=f"{unit}：差评工单 #{order.id} 已派至贵单位办理，请及时核实整改。\n",
            order=order,
            dedupe=f"assigned:{order.id}:{order.version}:{org_id}",
        )


async def warning(
    *, db: AsyncSession, order_id: int, org_id: int, kind: str, due_text: str
) -> None:
    """A deadline is near: the unit's handlers."""
    await warnings(db=db, kind=kind, orders=[(order_id, org_id, due_text)])


async def overdue(*, db: AsyncSession, order_id: int, org_id: int, kind: str, version: int) -> None:
    """A deadline passed and the order went to supervision: the office is told."""
    await overdues(db=db, kind=kind, orders=[(order_id, org_id, version)])


async def warnings(*, db: AsyncSession, kind: str, orders: Sequence[tuple[int, int, str]]) -> None:
    """`warning` for many orders at once, as (id, lead org, due text): a few queries in all."""
    label = DEADLINE_LABELS[kind]
    await _deadline_mails(
        db,
        "deadline_warning",
        orders,
        lambda who, order_id, org_id, due_text: (
            f"【临期预警】差评工单 #{order_id} {label}期限将至",
            f"差评工单 #{order_id} 的{label}期限为 {due_text}，请抓紧办理。\n",
            f"warn:{kind}:{order_id}",
            who.unit_handlers(org_id),
        ),
    )


async def overdues(*, db: AsyncSession, kind: str, orders: Sequence[tuple[int, int, int]]) -> None:
    """`overdue` for many orders at once, as (id, lead org, version): a few queries in all."""
    label = DEADLINE_LABELS[kind]
    await _deadline_mails(
        db,
        "overdue",
        orders,
        lambda who, order_id, org_id, version: (
            f"【超期督办】差评工单 #{order_id}（{who.name(org_id)}）{label}超期",
            f"差评工单 #{order_id}（{who.name(org_id)}）{label}已超期，已自动转入督办。\n",
            f"overdue:{kind}:{order_id}:{version}",
            who.office_handlers(org_id),
        ),
    )


async def _deadline_mails(
    db: AsyncSession,
    template: str,
    orders: Sequence[tuple[int, int, Any]],
    compose: Callable[[Recipients, int, int, Any], tuple[str, str, str, Iterable[str]]],
) -> None:
    """The deadline job's mails for many orders, as (id, lead org, extra): `compose` gives
    each order's subject, body, dedupe key and recipients (the lookups are shared)."""
    who = await Recipients.load(db, {org_id for _, org_id, _ in orders})
    mails: list[tuple[str, str, str, int, str]] = []
    for order_id, org_id, extra in orders:
        subject, body, dedupe, rcpts = compose(who, order_id, org_id, extra)
        mails.extend((rcpt, subject, body, order_id, dedupe) for rcpt in rcpts)
    await _enqueue_mails(db, template, mails)


class Recipients:
    """`unit_handlers`, `office_handlers` and org names for many organisations, looked up
    together: the deadline job tells thousands of orders' units in one pass."""

    def __init__(
        self, tree: dict[int, tuple[int | None, str]], emails: dict[tuple[int, str], set[str]]
    ) -> None:
        self._tree = tree  # org id -> (parent id, name), ancestors included
        self._emails = emails  # (org id, "unit" | "office") -> addresses

    @classmethod
    async def load(cls, db: AsyncSession, org_ids: Collection[int]) -> Recipients:
        tree: dict[int, tuple[int | None, str]] = {}
        for chunk in _chunks(sorted(set(org_ids))):
            # The organisations and all their ancestors in one round trip (a recursive CTE,
            # on both databases), not one round per level of the tree: this runs inside the
            # intake transaction of every group that holds a bad rating.
            up = (
                select(Org.id, Org.parent_id, Org.name)
                .where(Org.id.in_(chunk))
                .cte("up", recursive=True)
            )
            up = up.union(
                select(Org.id, Org.parent_id, Org.name).join(up, Org.id == up.c.parent_id)
            )
            rows = (await db.execute(select(up.c.id, up.c.parent_id, up.c.name))).all()
            tree.update({org_id: (parent_id, name) for org_id, parent_id, name in rows})
        emails: dict[tuple[int, str], set[str]] = defaultdict(set)
        for chunk in _chunks(sorted(tree)):
            for org_id, role, email in (
                await db.execute(
                    select(User.org_id, User.role, User.email).where(
                        User.org_id.in_(chunk),
                        User.role.in_(("unit", "office", "admin")),
                        User.active.is_(True),
                        User.email.is_not(None),
                    )
                )
            ).all():
                if email:
                    emails[(org_id, "unit" if role == "unit" else "office")].add(email)
        return cls(tree, emails)

    def name(self, org_id: int) -> str:
        return self._tree[org_id][1] if org_id in self._tree else ""

    def unit_handlers(self, org_id: int) -> list[str]:
        return sorted(self._emails.get((org_id, "unit"), ())) or self.office_handlers(org_id)

    def office_handlers(self, org_id: int) -> list[str]:
        node: int | None = org_id
        while node is not None and node in self._tree:
            if found := self._emails.get((node, "office")):
                return sorted(found)
            node = self._tree[node][0]
        return []


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    # Bounded IN lists: a statement takes at most 32767 parameters on PostgreSQL.
    return (values[i : i + size] for i in range(0, len(values), size))


async def _enqueue_mails(
    db: AsyncSession, kind: str, mails: list[tuple[str, str, str, int, str]]
) -> None:
    """Many e-mails in one statement: (recipient, subject, body, order id, dedupe prefix);
    dedupe keys `prefix:recipient`, as `outbox_mail` makes them."""
    await _enqueue_many(
        db,
        kind,
        [
            ("email", rcpt, subject, body, order_id, f"{dedupe}:{rcpt}")
            for rcpt, subject, body, order_id, dedupe in mails
        ],
    )


async def _enqueue_many(
    db: AsyncSession, kind: str, messages: list[tuple[str, str, str, str, int, str]]
) -> int:
    """(channel, recipient, subject, body, order id, dedupe key) of a work order's messages,
    added in one statement; how many were new."""
    return await outbox.enqueue_many(
        db,
        [
            outbox.Message(
                kind=kind,
                channel=channel,
                recipient=rcpt,
                subject=subject,
                body=body,
                payload={"work_order_id": order_id},
                dedupe_key=key,
            )
            for channel, rcpt, subject, body, order_id, key in messages
        ],
    )


async def outbox_mail(
    db: AsyncSession,
    *,
    kind: str,
    recipients: list[str],
    subject: str,
    body: str,
    order_id: int,
    dedupe: str,
) -> None:
    for rcpt in recipients:
        await outbox.enqueue(
            db,
            kind=kind,
            channel="email",
            recipient=rcpt,
            subject=subject,
            body=body,
            payload={"work_order_id": order_id},
            dedupe_key=f"{dedupe}:{rcpt}",
        )
