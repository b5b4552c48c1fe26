"""Work-order events for outside systems (Jiangsu-style: every 差评 becomes a 12345 ticket).

A subscription names a URL, the events it wants and a secret. Each event of a work order
whose lead unit lies in the subscriber's subtree becomes one outbox message (channel
`webhook`) in the transaction that records the event: delivered at least once after the
commit, retried with back-off, visible and retryable on the console's outbox page, never
sent for a change that rolled back. The body is JSON without personal data; the header
`X-Haochaping-Signature: sha256=<hex>` is HMAC-SHA256 of the body under the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core import audit, outbox
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.core.outbox_models import OutboxChannel, OutboxKind
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.choices import OrderEvent
from haochaping.workorders.models import WebhookSubscription, WorkOrder
from haochaping.workorders.states import Action

ALL = "work_order.*"
OPENED = "work_order.opened"
# Every event a subscriber may ask for: the opening, each action of the state machine, and
# the rater's follow-up rating.
EVENTS: tuple[str, ...] = (
    OPENED,
    *(f"work_order.{a.value}" for a in Action),
    f"work_order.{OrderEvent.FOLLOWUP.value}",
)
SIGNATURE_HEADER = "X-Haochaping-Signature"


@dataclass(frozen=True)
class Happened:
    """One event of a work order, as its writer knows it."""

    work_order_id: int
    action: str
    from_state: str | None
    to_state: str
    at: datetime


def event_name(action: str) -> str:
    return OPENED if action == OrderEvent.OPEN.value else f"work_order.{action}"


def wants(events: Sequence[str], name: str) -> bool:
    return ALL in events or name in events


def sign(secret: str, body: str) -> str:
    """The signature header's value: `sha256=` and HMAC-SHA256 of the body's UTF-8 bytes."""
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def publish(db: AsyncSession, happened: Sequence[Happened]) -> int:
    """Queue the deliveries of these events in the caller's transaction; how many. Without
    an active subscription this is one small query."""
    if not happened:
        return 0
    subs = (
        await db.execute(
            select(WebhookSubscription, Org.path)
            .join(Org, Org.id == WebhookSubscription.org_id)
            .where(WebhookSubscription.active.is_(True))
        )
    ).all()
    if not subs:
        return 0
    ids = {h.work_order_id for h in happened}
    orders = {
        row.id: row
        for row in (
            await db.execute(
                select(
                    WorkOrder.id,
                    WorkOrder.evaluation_id,
                    WorkOrder.region_code,
                    Org.code.label("org_code"),
                    Org.path,
                    Case.case_no,
                )
                .join(Org, Org.id == WorkOrder.org_id)
                .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
                .outerjoin(Case, Case.id == Evaluation.case_id)
                .where(WorkOrder.id.in_(ids))
            )
        ).all()
    }
    messages = []
    for h in happened:
        order = orders.get(h.work_order_id)
        if order is None:
            continue
        name = event_name(h.action)
        body = json.dumps(
            {
                "event": name,
                "occurred_at": h.at.isoformat(),
                "work_order": {
                    "id": order.id,
                    "state": h.to_state,
                    "from_state": h.from_state,
                    "org_code": order.org_code,
                    "region_code": order.region_code,
                    "case_no": order.case_no,
                    "evaluation_id": order.evaluation_id,
                },
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        stamp = int(h.at.timestamp() * 1_000_000)
        for sub, path in subs:
            if not order.path.startswith(path) or not wants(sub.events, name):
                continue
            messages.append(
                outbox.Message(
                    kind=OutboxKind.WORKORDER_EVENT,
                    channel=OutboxChannel.WEBHOOK,
                    recipient=sub.url,
                    subject=sign(sub.secret, body),
                    body=body,
                    payload={"subscription_id": sub.id, "event": name, "work_order_id": order.id},
                    dedupe_key=f"webhook:{sub.id}:{order.id}:{h.action}:{h.to_state}:{stamp}",
                )
            )
    return await outbox.enqueue_many(db, messages)


# --- subscriptions -------------------------------------------------------------------------


async def subscribe(
    *,
    db: AsyncSession,
    actor: Principal,
    url: str,
    events: Sequence[str],
    secret: str,
    source_ip: str | None = None,
) -> WebhookSubscription:
    """A subscription for the caller's organisation (its subtree's work orders), on record."""
    sub = WebhookSubscription(
        org_id=actor.org_id,
        client_id=actor.id if actor.is_client else None,
        url=url,
        events=sorted(set(events)),
        secret=secret,
        active=True,
        created_by=actor.name,
        created_at=utcnow(),
    )
    db.add(sub)
    await db.flush()
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.CREATE_WEBHOOK,
        target_type="webhook_subscription",
        target_id=sub.id,
        detail={"url": url, "events": sub.events},
        source_ip=source_ip,
    )
    return sub


def _visible(actor: Principal) -> Any:
    return (
        select(WebhookSubscription, Org.code)
        .join(Org, Org.id == WebhookSubscription.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
    )


async def subscriptions(db: AsyncSession, actor: Principal) -> list[dict[str, Any]]:
    """The subscriptions of the caller's subtree, newest first (secrets never shown)."""
    rows = (await db.execute(_visible(actor).order_by(WebhookSubscription.id.desc()))).all()
    return [read(sub, code) for sub, code in rows]


async def unsubscribe(
    *, db: AsyncSession, actor: Principal, subscription_id: int, source_ip: str | None = None
) -> None:
    """End a subscription (kept on record, inactive); deliveries already queued still go."""
    row = (
        await db.execute(_visible(actor).where(WebhookSubscription.id == subscription_id))
    ).first()
    if row is None:
        raise NotFound("订阅不存在或不在本账号的权限范围内", code="webhook_not_found")
    sub = row[0]
    sub.active = False
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.DELETE_WEBHOOK,
        target_type="webhook_subscription",
        target_id=sub.id,
        detail={"url": sub.url},
        source_ip=source_ip,
    )
    await db.flush()


def read(sub: WebhookSubscription, org_code: str) -> dict[str, Any]:
    return {
        "id": sub.id,
        "org_code": org_code,
        "url": sub.url,
        "events": list(sub.events),
        "active": sub.active,
        "created_by": sub.created_by,
        "created_at": sub.created_at,
    }
