"""Webhook subscriptions to work-order events (issue 13 §2): deliveries through the outbox to a
real receiving HTTP server, HMAC-SHA256 signed, retried with back-off, scoped by subtree."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, text, update

from haochaping.core import outbox
from haochaping.core.models import AuditEvent
from haochaping.core.outbox_models import OutboxMessage
from haochaping.core.timeutil import utcnow
from haochaping.integrations.notify import ChannelNotifier
from haochaping.integrations.webhook import HttpWebhookSender
from haochaping.workorders.models import WebhookSubscription
from tests.factories import assert_error, table_counts
from tests.workorders.conftest import rate_badly

SECRET = "s3cret-for-the-12345-platform"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tickets?src=hcp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
async def receiver(db):
    r = Receiver()
    yield r
    r.close()
    # Subscriptions outlive the test in the shared database: end them.
    await db.execute(update(WebhookSubscription).values(active=False))
    await db.commit()


NOTIFIER = ChannelNotifier(
    email=None,
    sms=None,
    webhook=HttpWebhookSender(timeout=5, signature_header="X-Haochaping-Signature"),
)


async def deliver(sessionmaker, now=None):
    return await outbox.deliver_due(
        sessionmaker, NOTIFIER, worker_id="t", channels=["webhook"], now=now
    )


async def subscribe(client, world, url, events, key="all"):
    r = await client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": events, "secret": SECRET},
        headers={"X-Api-Key": world.keys[key]},
    )
    assert r.status_code == 201, r.text
    return r.json()


def verified(request) -> dict:
    """The body, after checking its signature as a receiver does."""
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Haochaping-Signature"] == expected
    return json.loads(request["body"])


async def test_a_bad_rating_and_its_steps_reach_the_subscriber_signed(
    client, db, world, handlers, sessionmaker, receiver
):
    sub = await subscribe(client, world, receiver.url, ["work_order.opened", "work_order.verify"])
    assert sub["org_code"] == world.code("OFFICE") and "secret" not in sub
    ev, order = await rate_badly(client, db, world)
    await deliver(sessionmaker)
    assert len(receiver.requests) == 1
    body = verified(receiver.requests[0])
    assert body["event"] == "work_order.opened"
    assert body["work_order"]["id"] == order.id and body["work_order"]["state"] == "verifying"
    assert body["work_order"]["org_code"] == world.code("HALL-A")
    assert body["work_order"]["case_no"] == ev["case_no"]
    assert "13812345678" not in receiver.requests[0]["body"].decode()  # no personal data

    r = await client.post(
        f"/api/v1/work-orders/{order.id}/actions",
        json={"action": "verify", "note": "属实"},
        headers=handlers["unit_a"],
    )
    assert r.status_code == 200, r.text
    await deliver(sessionmaker)
    step = verified(receiver.requests[1])
    assert step["event"] == "work_order.verify"
    assert (step["work_order"]["from_state"], step["work_order"]["state"]) == (
        "verifying",
        "rectifying",
    )
    # Not subscribed: report_rectified is not sent.
    r = await client.post(
        f"/api/v1/work-orders/{order.id}/actions",
        json={"action": "report_rectified", "note": "已整改"},
        headers=handlers["unit_a"],
    )
    await deliver(sessionmaker)
    assert len(receiver.requests) == 2


async def test_a_failing_receiver_is_retried_with_back_off_and_then_gets_it(
    client, db, world, handlers, sessionmaker, receiver
):
    await subscribe(client, world, receiver.url, ["work_order.*"])
    receiver.status = 503
    await rate_badly(client, db, world)
    report = await deliver(sessionmaker)
    assert report.failed >= 1 and len(receiver.requests) == 1
    msg = (
        await db.execute(
            select(OutboxMessage)
            .where(OutboxMessage.channel == "webhook")
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
    ).scalar_one()
    assert msg.status == "failed" and msg.attempts == 1 and "503" in (msg.last_error or "")
    await deliver(sessionmaker)  # not due yet: the back-off holds it
    assert len(receiver.requests) == 1
    receiver.status = 200
    await deliver(sessionmaker, now=utcnow() + timedelta(hours=7))
    assert len(receiver.requests) == 2
    # The same delivery id both times: a receiver can drop the duplicate.
    first, second = (r["headers"]["X-Haochaping-Delivery"] for r in receiver.requests)
    assert first == second
    await db.refresh(msg)
    assert msg.status == "sent"


async def test_only_the_subscribers_subtree_and_no_event_after_it_ends(
    client, db, world, handlers, sessionmaker, receiver
):
    other = await subscribe(client, world, receiver.url, ["work_order.*"], key="hall_b")
    await rate_badly(client, db, world)  # at HALL-A: not HALL-B's
    await deliver(sessionmaker)
    assert receiver.requests == []
    mine = await subscribe(client, world, receiver.url, ["work_order.*"])
    r = await client.delete(
        f"/api/v1/webhooks/{mine['id']}", headers={"X-Api-Key": world.keys["all"]}
    )
    assert r.status_code == 204
    await rate_badly(client, db, world)
    await deliver(sessionmaker)
    assert receiver.requests == []
    # hall_b's key neither sees nor ends the office's subscription.
    listed = await client.get("/api/v1/webhooks", headers={"X-Api-Key": world.keys["hall_b"]})
    assert [s["id"] for s in listed.json()["items"]] == [other["id"]]
    r = await client.delete(
        f"/api/v1/webhooks/{mine['id']}", headers={"X-Api-Key": world.keys["hall_b"]}
    )
    assert_error(r, 404, "webhook_not_found")
    audits = (
        await db.execute(
            select(AuditEvent.action).where(
                AuditEvent.target_type == "webhook_subscription",
                AuditEvent.target_id == mine["id"],
            )
        )
    ).scalars()
    assert sorted(audits) == ["create_webhook", "delete_webhook"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.org/x", "events": ["work_order.*"], "secret": SECRET},
        {"url": "http://", "events": ["work_order.*"], "secret": SECRET},
        {"url": "https://example.org/" + "x" * 300, "events": ["work_order.*"], "secret": SECRET},
        {"url": "https://example.org/x", "events": ["work_order.deleted"], "secret": SECRET},
        {"url": "https://example.org/x", "events": [], "secret": SECRET},
        {"url": "https://example.org/x", "events": ["work_order.*"], "secret": "short"},
        {"url": "https://example.org/x", "events": "work_order.*", "secret": SECRET},
    ],
)
async def test_a_bad_subscription_is_422_and_stores_nothing(client, db, world, body):
    before = await table_counts(db)
    r = await client.post("/api/v1/webhooks", json=body, headers={"X-Api-Key": world.keys["all"]})
    assert_error(r, 422)
    assert await table_counts(db) == before


async def test_who_may_subscribe(client, db, world, handlers, receiver):
    body = {"url": receiver.url, "events": ["work_order.*"], "secret": SECRET}
    for name in ("unit_a", "assessor"):
        r = await client.post("/api/v1/webhooks", json=body, headers=handlers[name])
        assert_error(r, 403, "role_forbidden")
    r = await client.post("/api/v1/webhooks", json=body, headers=handlers["office"])
    assert r.status_code == 201
    assert (await client.post("/api/v1/webhooks", json=body)).status_code == 401


async def test_the_secret_is_encrypted_at_rest(client, db, world, receiver):
    sub = await subscribe(client, world, receiver.url, ["work_order.*"])
    raw = (
        await db.execute(
            text("SELECT secret FROM webhook_subscription WHERE id = :id"), {"id": sub["id"]}
        )
    ).scalar_one()
    assert SECRET not in raw
