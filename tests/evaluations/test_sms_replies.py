"""Ratings by SMS reply (issue 13 §2): the operator's signed inbound webhook, answered by SMS
through the outbox. Only the operator is faked: a real HTTP server on 127.0.0.1 that the HTTP
gateway sends to."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select, update

from haochaping.app import create_app, startup
from haochaping.cases.models import Case
from haochaping.core import outbox
from haochaping.core.outbox_models import OutboxMessage
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import sms
from haochaping.evaluations.models import Evaluation, Invitation, SmsDialogue
from haochaping.integrations.notify import ChannelNotifier
from haochaping.integrations.sms import HttpSmsGateway
from tests.factories import assert_error, iso, key_headers, make_case, now, publish_policy

SECRET = "operator-inbound-secret-0123456789"


class Operator:
    """The SMS operator's send API: records each message it is asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.sent.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def to(self, phone: str) -> list[str]:
        return [m["text"] for m in self.sent if m["to"] == phone]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def operator():
    op = Operator()
    yield op
    op.close()


@pytest.fixture
async def sms_app(settings, engine, sessionmaker):
    app = create_app(settings.model_copy(update={"sms_inbound_secret": SECRET}))
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    return app


@pytest.fixture
async def sms_client(sms_app):
    transport = httpx.ASGITransport(app=sms_app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def deliver(sessionmaker, operator):
    """The outbox's SMS delivery, to the faked operator (a batch big enough for the SMS that
    other tests committed and left pending in the shared database: they are due first)."""
    gateway = HttpSmsGateway(
        url=operator.url, template={"to": "$to", "text": "$text", "id": "$key"}, timeout=5
    )
    notifier = ChannelNotifier(email=None, sms=gateway, webhook=None)
    return await outbox.deliver_due(
        sessionmaker, notifier, worker_id="t", channels=["sms"], batch=1000
    )


def phone() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


async def invited(client, db, world, number: str) -> dict:
    """A completed case of `number`'s applicant with an SMS rating invitation."""
    case = await make_case(db, world, applicant__phone=number)
    r = await client.post(
        f"/api/v1/cases/{case['case_no']}/invitations",
        headers=key_headers(world),
        json={"channel": "sms"},
    )
    assert r.status_code == 201, r.text
    return case


def reply(client, number: str, text: str, *, secret: str | None = SECRET, minute: int = 0):
    body = json.dumps(
        {
            "from": number,
            "text": text,
            "received_at": (utcnow() + timedelta(minutes=minute)).isoformat(),
        },
        ensure_ascii=False,
    ).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Haochaping-Signature"] = "sha256=" + digest
    return client.post("/api/v1/sms/inbound", content=body, headers=headers)


async def ratings_of(db, case: dict) -> list[Evaluation]:
    case_id = select(Case.id).where(Case.case_no == case["case_no"]).scalar_subquery()
    return list(
        (await db.execute(select(Evaluation).where(Evaluation.case_id == case_id))).scalars()
    )


async def messages_to(db, number: str) -> int:
    return (
        await db.execute(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.recipient == number)
        )
    ).scalar_one()


async def test_a_good_level_is_stored_at_once_and_thanked(
    sms_client, db, world, sessionmaker, operator
):
    number = phone()
    case = await invited(sms_client, db, world, number)
    r = await reply(sms_client, number, "满意")
    assert r.status_code == 200, r.text
    assert r.json() == {"outcome": "rated"}
    [ev] = await ratings_of(db, case)
    assert (ev.level, ev.channel, ev.stage) == (4, "sms", "whole")
    await deliver(sessionmaker, operator)
    assert operator.to(number) == ["【好差评】已收到您的评价，感谢您的支持！"]
    # The invitation is spent: a second reply gets the help text, nothing more is stored.
    r = await reply(sms_client, number, "5", minute=1)
    assert r.json() == {"outcome": "help"}
    assert len(await ratings_of(db, case)) == 1


async def test_a_bad_level_asks_for_the_reason_and_the_reason_becomes_the_comment(
    sms_client, db, world, sessionmaker, operator
):
    number = phone()
    case = await invited(sms_client, db, world, number)
    r = await reply(sms_client, "+86" + number, "1")
    assert r.json() == {"outcome": "reason_asked"}
    assert await ratings_of(db, case) == []
    await deliver(sessionmaker, operator)
    assert "不满意的原因" in operator.to(number)[0]
    r = await reply(sms_client, number, "窗口让我跑了三趟", minute=1)
    assert r.json() == {"outcome": "rated"}
    [ev] = await ratings_of(db, case)
    assert (ev.level, ev.channel, ev.comment) == (1, "sms", "窗口让我跑了三趟")
    await deliver(sessionmaker, operator)
    # Thanked (the closed loop's own notice of the bad rating may come besides).
    assert "【好差评】已收到您的评价，感谢您的支持！" in operator.to(number)[1:]
    # The phone is kept only as its keyed hash.
    [row] = (
        await db.execute(select(SmsDialogue).where(SmsDialogue.invitation_id == ev.invitation_id))
    ).scalars()
    assert number not in row.phone_hash and row.closed_at is not None and row.level == 1


async def test_a_bad_level_whose_reason_never_comes_is_not_stored(
    sms_client, db, world, sessionmaker, operator
):
    """The held level lapses with the invitation's window: a bad rating needs a reason, so no
    rating is stored; the dialogue row keeps the level that was given."""
    number = phone()
    case = await invited(sms_client, db, world, number)
    assert (await reply(sms_client, number, "不满意")).json() == {"outcome": "reason_asked"}
    case_id = select(Case.id).where(Case.case_no == case["case_no"]).scalar_subquery()
    await db.execute(
        update(Invitation)
        .where(Invitation.case_id == case_id)
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    await db.commit()
    r = await reply(sms_client, number, "态度不好", minute=1)
    assert r.json() == {"outcome": "help"}
    assert await ratings_of(db, case) == []
    [row] = (
        await db.execute(select(SmsDialogue).join(Invitation).where(Invitation.case_id == case_id))
    ).scalars()
    assert (row.level, row.closed_at) == (2, None)
    await deliver(sessionmaker, operator)
    assert "超过评价期限" in operator.to(number)[-1]


async def test_unclear_text_and_unknown_phones_get_help_and_nothing_is_stored(
    sms_client, db, world, sessionmaker, operator
):
    number = phone()
    case = await invited(sms_client, db, world, number)
    assert (await reply(sms_client, number, "你好")).json() == {"outcome": "help"}
    stranger = phone()
    assert (await reply(sms_client, stranger, "5")).json() == {"outcome": "help"}
    assert await ratings_of(db, case) == []
    await deliver(sessionmaker, operator)
    assert "请回复 1-5" in operator.to(number)[0]
    assert "未找到您可评价的办件" in operator.to(stranger)[0]


@pytest.mark.parametrize("secret", [None, "not-the-operators-secret"])
async def test_unsigned_or_badly_signed_is_401_and_nothing_is_stored(sms_client, db, world, secret):
    number = phone()
    case = await invited(sms_client, db, world, number)
    r = await reply(sms_client, number, "5", secret=secret)
    assert_error(r, 401, "sms_signature_invalid")
    assert await ratings_of(db, case) == []
    assert await messages_to(db, number) == 0


async def test_a_signed_but_malformed_body_is_422(sms_client, db, world):
    number = phone()
    await invited(sms_client, db, world, number)
    body = json.dumps({"from": number, "text": ""}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = await sms_client.post(
        "/api/v1/sms/inbound", content=body, headers={"X-Haochaping-Signature": sig}
    )
    assert_error(r, 422, "validation_failed")
    assert await messages_to(db, number) == 0


async def test_without_a_configured_secret_the_route_is_404(client, db, world):
    number = phone()
    await invited(client, db, world, number)
    r = await reply(client, number, "5")
    assert_error(r, 404, "sms_inbound_disabled")
    assert await messages_to(db, number) == 0


async def aged(db, world, number: str | None, ago: timedelta) -> dict:
    """A case of `number`'s applicant, completed `ago`."""
    done = now() - ago
    return await make_case(
        db,
        world,
        applicant__phone=number,
        received_at=iso(done - timedelta(days=1)),
        accepted_at=iso(done - timedelta(days=1)),
        completed_at=iso(done),
    )


async def invite_due(app, db):
    settings = app.state.settings
    run = await sms.invite_due(
        db,
        policies=app.state.policy_cache,
        secret=settings.secret_key,
        base_url=settings.base_url,
        default_window_days=settings.evaluation_window_days,
    )
    await db.commit()
    return run


async def sms_invitations_of(db, case: dict) -> list[Invitation]:
    case_id = select(Case.id).where(Case.case_no == case["case_no"]).scalar_subquery()
    return list(
        (
            await db.execute(
                select(Invitation).where(Invitation.case_id == case_id, Invitation.channel == "sms")
            )
        ).scalars()
    )


async def test_no_policy_no_sms_invitation(sms_app, db, world):
    """Off by default: a case long completed and unrated is not invited."""
    case = await aged(db, world, phone(), timedelta(days=5))
    await invite_due(sms_app, db)
    assert await sms_invitations_of(db, case) == []


async def test_the_job_invites_an_unrated_case_once_and_the_reply_rates_it(
    sms_app, sms_client, db, world, sessionmaker, operator
):
    await publish_policy(sms_client, world, {"sms_invite_after_hours": 72})
    number, quiet, early = phone(), phone(), phone()
    due = await aged(db, world, number, timedelta(hours=73))
    too_soon = await aged(db, world, early, timedelta(hours=70))
    rated = await aged(db, world, quiet, timedelta(hours=80))
    r = await sms_client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json={"case_no": rated["case_no"], "channel": "pc", "level": 5},
    )
    assert r.status_code == 201, r.text
    run = await invite_due(sms_app, db)
    assert run.sent >= 1
    [inv] = await sms_invitations_of(db, due)
    assert inv.used_at is None
    assert await sms_invitations_of(db, too_soon) == []
    assert await sms_invitations_of(db, rated) == []
    # Once per case: the next passes send nothing more to it.
    await invite_due(sms_app, db)
    await invite_due(sms_app, db)
    assert len(await sms_invitations_of(db, due)) == 1
    assert await messages_to(db, number) == 1
    await deliver(sessionmaker, operator)
    [text] = operator.to(number)
    assert text.startswith("【好差评】您在") and "请对本次服务进行评价" in text
    # The link is a real rating link the citizen can open.
    link = text.rsplit("：", 1)[1]
    assert link.startswith("http://testserver/r/")
    page = await sms_client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200 and "满意" in page.text
    assert operator.to(early) == [] and operator.to(quiet) == []
    # And the reply rates the invited case.
    assert (await reply(sms_client, number, "5")).json() == {"outcome": "rated"}
    [ev] = await ratings_of(db, due)
    assert (ev.level, ev.channel, ev.invitation_id) == (5, "sms", inv.id)


async def test_a_case_another_process_invited_gets_no_second_invitation(
    sms_app, sms_client, db, world
):
    """The outbox's dedupe key is the guard across processes: when the case's invitation SMS
    is already queued (another worker's pass), this pass rolls its own invitation back."""
    await publish_policy(sms_client, world, {"sms_invite_after_hours": 24})
    number = phone()
    case = await aged(db, world, number, timedelta(hours=30))
    case_id = (
        await db.execute(select(Case.id).where(Case.case_no == case["case_no"]))
    ).scalar_one()
    await outbox.enqueue(
        db,
        kind="sms_invitation",
        channel="sms",
        recipient=number,
        subject="短信评价邀请",
        body="(queued by another worker)",
        dedupe_key=f"sms-invite:{case_id}",
    )
    await db.commit()
    await invite_due(sms_app, db)
    assert await sms_invitations_of(db, case) == []
    assert await messages_to(db, number) == 1


async def test_a_case_without_a_phone_is_not_invited(sms_app, sms_client, db, world):
    await publish_policy(sms_client, world, {"sms_invite_after_hours": 24})
    case = await aged(db, world, None, timedelta(hours=30))
    await invite_due(sms_app, db)
    assert await sms_invitations_of(db, case) == []


async def test_the_setting_is_published_and_shown_on_the_console_policy_page(client, db, world):
    from tests.pages.helpers import sign_in
    from tests.pages.test_settings_pages import effective, publish

    await sign_in(client, world.users["admin"])
    page = await client.get("/console/policies", params={"region": "330102"})
    assert effective(page.text, "sms_invite_after_hours")[0] == "不发送"
    r = await publish(client, region_code="330102", sms_invite_after_hours="72")
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert effective(page.text, "sms_invite_after_hours") == (
        "办结 72 小时后仍未评价的发送评价短信",
        "上城区",
    )


async def test_the_reply_rates_the_latest_open_invitation_of_the_phone(sms_client, db, world):
    number = phone()
    older = await invited(sms_client, db, world, number)
    newer = await invited(sms_client, db, world, number)
    assert (await reply(sms_client, number, "5")).json() == {"outcome": "rated"}
    assert len(await ratings_of(db, newer)) == 1 and await ratings_of(db, older) == []
    # The newer one is spent: the next reply rates the older case, still open.
    assert (await reply(sms_client, number, "4", minute=1)).json() == {"outcome": "rated"}
    [ev] = await ratings_of(db, older)
    assert ev.level == 4
