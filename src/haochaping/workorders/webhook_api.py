"""`/api/v1/webhooks`: outside systems subscribe to work-order events (deliveries through the
outbox, HMAC-SHA256 signed: see `workorders.webhooks`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import Field, StringConstraints, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import ManagerOrClient
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.outbox_models import RECIPIENT_MAX
from haochaping.core.schemas import Id, InputModel, ReadModel
from haochaping.orgs.models import Org
from haochaping.workorders import webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks 工单事件推送"])

Url = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=RECIPIENT_MAX, pattern=r"^https?://[^\s/?#]+[^\s]*$"
    ),
]


class WebhookCreate(InputModel):
    url: Url
    events: Annotated[list[str], Field(min_length=1, max_length=40)]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)]

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = [e for e in events if e != webhooks.ALL and e not in webhooks.EVENTS]
        if unknown:
            raise ValueError(
                f"未知的事件：{', '.join(unknown)}（可选：{webhooks.ALL} 或 "
                f"{', '.join(webhooks.EVENTS)}）"
            )
        return events


class WebhookRead(ReadModel):
    id: int
    org_code: str
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime


class WebhookList(ReadModel):
    items: list[WebhookRead]


@router.post("/webhooks", status_code=201, response_model=WebhookRead)
async def create_webhook(
    data: WebhookCreate, request: Request, db: DbSession, actor: ManagerOrClient
):
    """Subscribe the caller's organisation (its subtree's work orders) to events, e.g.
    `["work_order.opened", "work_order.escalate"]` or `["work_order.*"]`. Each delivery is a
    POST of JSON with `X-Haochaping-Signature: sha256=<HMAC-SHA256 of the body>` and
    `X-Haochaping-Delivery` (the same on a retry); the secret is never shown again."""
    sub = await webhooks.subscribe(
        db=db,
        actor=actor,
        url=data.url,
        events=data.events,
        secret=data.secret,
        source_ip=request.client.host if request.client else None,
    )
    body = webhooks.read(sub, await _org_code(db, sub.org_id))
    await db.commit()
    return body


@router.get("/webhooks", response_model=WebhookList)
async def list_webhooks(db: DbSession, actor: ManagerOrClient):
    """The subscriptions of the caller's subtree, newest first."""
    return {"items": await webhooks.subscriptions(db, actor)}


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    responses=declare(404, codes={404: "webhook_not_found"}),
)
async def delete_webhook(webhook_id: Id, request: Request, db: DbSession, actor: ManagerOrClient):
    """End a subscription (kept on record); what is already queued is still delivered."""
    await webhooks.unsubscribe(
        db=db,
        actor=actor,
        subscription_id=webhook_id,
        source_ip=request.client.host if request.client else None,
    )
    await db.commit()
    return Response(status_code=204)


async def _org_code(db: AsyncSession, org_id: int) -> str:
    org = await db.get(Org, org_id)
    return org.code if org else ""
