"""The notification outbox: written with the change, delivered after commit, retried, never lost.

Delivery runs in its own committing transactions, so those tests use a committing session
factory (not the rolled-back `db` fixture, whose open transaction would hold SQLite's write
lock) and unique recipients, and delete their own rows at the end.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update

from haochaping.core import outbox
from haochaping.core.errors import Conflict, NotFound
from haochaping.core.outbox_models import OutboxMessage, OutboxStatus
from haochaping.core.security import mask_phone
from haochaping.db.base import utcnow
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.integrations import build_notifier
from tests.integrations.servers import FakeOperator, SmtpSink, free_port

SUBJECT = "【好差评】新的差评工单 GD-2026-0001"
BODY = "您单位收到一条差评（2 星），请于 3 个工作日内核实。\n办件：不动产登记"
# A run claims the due messages oldest first, up to a batch: messages other tests committed and
# left pending in the shared test database (the live server runs no job) come before this
# test's own, so the tests' runs take a batch big enough for any such backlog.
BATCH = 1000
FAST = outbox.DeliveryPolicy(
    batch_size=BATCH,
    max_attempts=3,
    backoff_base=timedelta(seconds=10),
    backoff_max=timedelta(seconds=25),
    lease=timedelta(minutes=5),
)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def committed(engine, tag):
    """A committing session factory; removes this test's messages afterwards."""
    sm = make_sessionmaker(engine)
    yield sm
    async with sm() as db, db.begin():
        await db.execute(delete(OutboxMessage).where(OutboxMessage.recipient.contains(tag)))


@pytest.fixture
def notifier_for(settings, tmp_path):
    """The notifier the settings build, with SMTP on `port` and SMS logged under tmp_path."""

    def build(port: int, **extra):
        return build_notifier(
            settings.model_copy(
                update={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "smtp_timeout_seconds": 5,
                    "mail_from": "好差评平台 <noreply@haochaping.test>",
                    "sms_gateway": "log",
                    "sms_log_path": str(tmp_path / "sms.jsonl"),
                    **extra,
                }
            )
        )

    return build


async def put(db, recipient: str, *, channel="email", dedupe_key=None, **kw) -> bool:
    return await outbox.enqueue(
        db,
        kind=kw.pop("kind", "workorder_opened"),
        channel=channel,
        recipient=recipient,
        subject=kw.pop("subject", SUBJECT),
        body=kw.pop("body", BODY),
        dedupe_key=dedupe_key,
        **kw,
    )


async def message_to(sm, recipient: str) -> OutboxMessage:
    async with sm() as db:
        return (
            await db.execute(select(OutboxMessage).where(OutboxMessage.recipient == recipient))
        ).scalar_one()


async def count_to(db, recipient: str) -> int:
    return (
        await db.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.recipient == recipient)
        )
    ).scalar_one()


# --- enqueue: in the caller's transaction ------------------------------------------------


async def test_enqueue_stores_a_pending_message(db, tag):
    to = f"unit-{tag}@gov.test"
    assert await put(db, to, payload={"work_order_id": 7}, kind="deadline_warning")
    row = (
        await db.execute(select(OutboxMessage).where(OutboxMessage.recipient == to))
    ).scalar_one()
    assert (row.status, row.attempts, row.kind, row.channel) == (
        "pending",
        0,
        "deadline_warning",
        "email",
    )
    assert (row.subject, row.body, row.payload) == (SUBJECT, BODY, {"work_order_id": 7})
    assert row.next_attempt_at <= utcnow() and row.sent_at is None


async def test_same_dedupe_key_twice_is_one_message(db, tag):
    to = f"unit-{tag}@gov.test"
    assert await put(db, to, dedupe_key=f"warn:verify:{tag}") is True
    assert await put(db, to, dedupe_key=f"warn:verify:{tag}") is False
    assert await put(db, to) is True  # without a key nothing is deduplicated
    assert await count_to(db, to) == 2


async def test_enqueue_is_rolled_back_with_the_change(db, tag):
    to = f"unit-{tag}@gov.test"
    await put(db, to, dedupe_key=f"k:{tag}")
    await db.rollback()
    assert await count_to(db, to) == 0
    # The key is free again: nothing of the rolled-back attempt remains.
    assert await put(db, to, dedupe_key=f"k:{tag}") is True


async def test_enqueue_refuses_an_unknown_channel_or_no_recipient(db):
    with pytest.raises(ValueError):
        await put(db, "someone@gov.test", channel="wechat")
    with pytest.raises(ValueError):
        await put(db, "")
    with pytest.raises(ValueError):
        await put(db, "x" * 250 + "@gov.test")


async def test_long_texts_never_make_the_change_fail(db, tag):
    """A subject or key longer than its column is shortened, and the key still deduplicates."""
    to = f"unit-{tag}@gov.test"
    long_key = f"warn:{tag}:" + "很长的键" * 100
    assert await put(db, to, subject="超期预警" * 100, dedupe_key=long_key) is True
    assert await put(db, to, subject="超期预警", dedupe_key=long_key) is False
    assert await put(db, to, dedupe_key=long_key + "!") is True
    query = select(OutboxMessage).where(OutboxMessage.recipient == to).order_by(OutboxMessage.id)
    rows = (await db.execute(query)).scalars().all()
    assert len(rows) == 2
    assert all(len(r.dedupe_key) <= 255 for r in rows)
    assert len(rows[0].subject) == 200 and rows[0].subject.endswith("…")


async def test_concurrent_enqueues_of_one_key_keep_one(settings, committed, tag):
    """Two processes running the same periodic job enqueue the warning once."""
    other = make_engine(settings)  # a second process, as far as the database knows
    try:
        sm2 = make_sessionmaker(other)

        async def job(sm) -> bool:
            async with sm() as db:
                new = await put(db, f"unit-{tag}@gov.test", dedupe_key=f"warn:verify:{tag}")
                await asyncio.sleep(0.05)  # hold the transaction open while the other inserts
                await db.commit()
                return new

        results = await asyncio.gather(job(committed), job(sm2))
    finally:
        await other.dispose()
    assert sorted(results) == [False, True]
    async with committed() as db:
        assert await count_to(db, f"unit-{tag}@gov.test") == 1


# --- delivery ----------------------------------------------------------------------------


async def test_crash_before_commit_sends_nothing(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        # The process dies here: the session closes without commit.
    with SmtpSink() as sink:
        await outbox.deliver_due(committed, notifier_for(sink.port), worker_id="w", batch=BATCH)
    assert sink.to(to) == []
    async with committed() as db:
        assert await count_to(db, to) == 0


async def test_committed_message_is_delivered_by_the_next_run(committed, tag, notifier_for):
    """A crash between commit and delivery loses nothing: the next run sends it."""
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to, dedupe_key=f"open:{tag}")
        await db.commit()
    # ... the process dies before any delivery; later a worker starts.
    with SmtpSink() as sink:
        report = await outbox.deliver_due(
            committed, notifier_for(sink.port), worker_id="w1", batch=BATCH
        )
        await outbox.deliver_due(committed, notifier_for(sink.port), worker_id="w1", batch=BATCH)
    [mail] = sink.to(to)
    assert mail.message["Subject"] == SUBJECT
    assert mail.message.get_content().rstrip("\n") == BODY
    row = await message_to(committed, to)
    assert (row.status, row.attempts, row.locked_by) == ("sent", 1, None)
    assert row.sent_at is not None
    assert mail.message["Message-ID"].startswith(f"<hcp-outbox-{row.id}-")
    assert report.sent >= 1


async def test_sms_is_delivered_to_the_log_gateway(committed, tag, tmp_path, notifier_for):
    phone = f"138{tag}"
    async with committed() as db:
        await put(
            db,
            phone,
            channel="sms",
            kind="callback_invitation",
            subject="",
            body="【好差评】请对整改结果评价：https://hcp.test/r/abc",
        )
        await db.commit()
    await outbox.deliver_due(committed, notifier_for(free_port()), worker_id="w", batch=BATCH)
    lines = [json.loads(x) for x in (tmp_path / "sms.jsonl").read_text().splitlines()]
    # The log keeps the number masked (personal data); the outbox row has it in full.
    assert [(x["to"], x["text"]) for x in lines if x["to"] == mask_phone(phone)] == [
        (mask_phone(phone), "【好差评】请对整改结果评价：https://hcp.test/r/abc")
    ]
    assert phone not in (tmp_path / "sms.jsonl").read_text()
    assert (await message_to(committed, phone)).status == "sent"


async def test_operator_failure_is_retried_then_delivered(committed, tag, notifier_for):
    phone = f"139{tag}"
    async with committed() as db:
        await put(db, phone, channel="sms", body="【好差评】工单已超期")
        await db.commit()
    t0 = utcnow()
    with FakeOperator(status=500) as operator:
        notifier = notifier_for(free_port(), sms_gateway="http", sms_http_url=operator.url)
        await outbox.deliver_due(committed, notifier, worker_id="w", now=t0, policy=FAST)
        row = await message_to(committed, phone)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "HTTP 500" in row.last_error
        operator.status = 200
        await outbox.deliver_due(
            committed, notifier, worker_id="w", policy=FAST, now=t0 + timedelta(seconds=10)
        )
    assert [r.body["to"] for r in operator.requests].count(phone) == 2
    assert (await message_to(committed, phone)).status == "sent"


async def test_smtp_down_backs_off_then_dead_then_retried_by_an_admin(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to, kind="overdue")
        await db.commit()
    port = free_port()  # nothing listens here yet
    notifier = notifier_for(port)
    t0 = utcnow()

    async def run(at):
        await outbox.deliver_due(committed, notifier, worker_id="w", now=at, policy=FAST)
        return await message_to(committed, to)

    row = await run(t0)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at == t0 + timedelta(seconds=10)
    assert f"127.0.0.1:{port}" in row.last_error
    assert (await run(t0 + timedelta(seconds=9))).attempts == 1  # not due yet
    row = await run(t0 + timedelta(seconds=10))
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.next_attempt_at == t0 + timedelta(seconds=10 + 20)  # the wait doubled
    row = await run(t0 + timedelta(seconds=30))
    assert (row.status, row.attempts) == ("dead", 3)
    assert (await run(t0 + timedelta(days=30))).attempts == 3  # dead stays dead, and stays

    async with committed() as db:
        listed = await outbox.failed_messages(db, limit=500)
        assert to in [m.recipient for m in listed]
        assert (await outbox.status_counts(db))["dead"] >= 1
        again = await outbox.retry_message(db, message_id=row.id, actor="admin", actor_role="admin")
        assert (again.status, again.attempts) == ("pending", 0)
        await db.commit()

    with SmtpSink(port=port) as sink:
        await outbox.deliver_due(committed, notifier, worker_id="w", policy=FAST)
    assert len(sink.to(to)) == 1
    row = await message_to(committed, to)
    assert (row.status, row.attempts) == ("sent", 1)
    async with committed() as db:
        assert row.id not in [m.id for m in await outbox.failed_messages(db, limit=500)]


async def test_refused_recipient_is_dead_at_once(committed, tag, notifier_for):
    to = f"nobody-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        await db.commit()
    with SmtpSink() as sink:
        await outbox.deliver_due(committed, notifier_for(sink.port), worker_id="w", policy=FAST)
    row = await message_to(committed, to)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "550" in row.last_error


async def test_claim_lost_in_a_crash_is_sent_after_the_lease(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        await db.commit()
    t0 = utcnow()
    claimed = await outbox.claim_due(committed, worker_id="crashed", now=t0, policy=FAST)
    assert to in [c.recipient for c in claimed]
    # ... the worker dies before sending.
    with SmtpSink() as sink:
        notifier = notifier_for(sink.port)
        await outbox.deliver_due(
            committed,
            notifier,
            worker_id="w2",
            policy=FAST,
            now=t0 + FAST.lease - timedelta(seconds=1),
        )
        assert sink.to(to) == []  # still leased: never taken from a live worker
        await outbox.deliver_due(
            committed,
            notifier,
            worker_id="w2",
            policy=FAST,
            now=t0 + FAST.lease + timedelta(seconds=1),
        )
    assert len(sink.to(to)) == 1
    row = await message_to(committed, to)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_message_that_keeps_killing_its_worker_ends_dead(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        await db.commit()
    once = outbox.DeliveryPolicy(batch_size=BATCH, max_attempts=1, lease=timedelta(minutes=5))
    t0 = utcnow()
    await outbox.claim_due(committed, worker_id="crashed", now=t0, policy=once)
    with SmtpSink() as sink:
        report = await outbox.deliver_due(
            committed,
            notifier_for(sink.port),
            worker_id="w",
            policy=once,
            now=t0 + timedelta(minutes=6),
        )
    assert sink.to(to) == []
    row = await message_to(committed, to)
    assert (row.status, row.last_error) == ("dead", outbox.LEASE_EXPIRED_ERROR)
    assert report.dead >= 1


async def test_run_out_of_lease_time_hands_claims_back(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        await db.commit()
    no_time = outbox.DeliveryPolicy(lease=timedelta(0))
    with SmtpSink() as sink:
        report = await outbox.deliver_due(
            committed, notifier_for(sink.port), worker_id="w", policy=no_time
        )
    assert sink.to(to) == []
    assert report.released == report.claimed >= 1
    row = await message_to(committed, to)
    assert (row.status, row.attempts, row.locked_by) == ("pending", 0, None)


async def test_a_send_that_hangs_is_abandoned_within_the_lease(committed, tag, notifier_for):
    to = f"unit-{tag}@gov.test"
    async with committed() as db:
        await put(db, to)
        # First in the due order (next attempt, then id): the half-lease budget covers two
        # sends, and other tests leave due messages in the shared test database, claims of
        # theirs whose lease ran out among them, whatever their next attempt says.
        earliest = (await db.execute(select(func.min(OutboxMessage.next_attempt_at)))).scalar_one()
        first = min(earliest, datetime(2001, 1, 1, tzinfo=UTC)) - timedelta(days=1)
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.recipient == to).values(next_attempt_at=first)
        )
        await db.commit()
    short = outbox.DeliveryPolicy(lease=timedelta(seconds=1))  # each send may take 0.25 s
    with SmtpSink(delay=1.0) as sink:
        await outbox.deliver_due(committed, notifier_for(sink.port), worker_id="w", policy=short)
    row = await message_to(committed, to)
    assert (row.status, row.attempts, row.locked_by) == ("failed", 1, None)
    assert "发送超时" in row.last_error


async def test_a_claim_in_progress_is_never_shared(engine, committed, tag):
    """While worker A's claim is uncommitted, worker B gets none of A's messages."""
    recipients = [f"u{i}-{tag}@gov.test" for i in range(3)]
    async with committed() as db:
        for to in recipients:
            await put(db, to)
        await db.commit()
    async with engine.connect() as conn:
        # Worker A, mid-claim: its rows are locked (PostgreSQL) / it holds the write lock
        # (SQLite), and it has not committed yet.
        trans = await conn.begin()
        await conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.recipient.in_(recipients))
            .values(
                status="sending",
                attempts=1,
                locked_by="worker-a",
                locked_until=utcnow() + timedelta(minutes=5),
            )
        )
        worker_b = asyncio.create_task(outbox.claim_due(committed, worker_id="worker-b", batch=500))
        await asyncio.sleep(0.3)
        await trans.commit()
    claimed_by_b = await asyncio.wait_for(worker_b, timeout=30)
    assert not {c.recipient for c in claimed_by_b} & set(recipients)
    async with committed() as db:
        owners = (
            await db.execute(
                select(OutboxMessage.locked_by).where(OutboxMessage.recipient.in_(recipients))
            )
        ).scalars()
        assert set(owners) == {"worker-a"}


async def test_two_workers_at_once_send_each_message_exactly_once(
    settings, committed, tag, notifier_for
):
    recipients = [f"u{i}-{tag}@gov.test" for i in range(24)]
    async with committed() as db:
        for to in recipients:
            await put(db, to)
        await db.commit()
    other = make_engine(settings)  # worker-b runs as another process would
    sent_by: dict[str, int] = {}
    failed = 0
    try:
        with SmtpSink(delay=0.01) as sink:
            # A loaded machine (two suites side by side) can hold a send past a short timeout.
            notifier = notifier_for(sink.port, smtp_timeout_seconds=30)

            async def worker(sm, name, now=None):
                nonlocal failed
                sent_by.setdefault(name, 0)
                while (
                    report := await outbox.deliver_due(
                        sm, notifier, worker_id=name, batch=3, now=now
                    )
                ).claimed:
                    sent_by[name] += report.sent
                    failed += report.failed

            await asyncio.gather(
                worker(committed, "worker-a"), worker(make_sessionmaker(other), "worker-b")
            )
            if failed:  # a send that failed anyway is retried later, and still sent once
                await worker(committed, "worker-a", now=utcnow() + timedelta(days=1))
    finally:
        await other.dispose()
    got = Counter(rcpt for mail in sink.received for rcpt in mail.rcpt_tos if tag in rcpt)
    assert got == Counter(recipients)  # every message, each exactly once
    assert sent_by["worker-a"] > 0 and sent_by["worker-b"] > 0  # they really ran side by side
    async with committed() as db:
        for to in recipients:
            row = (
                await db.execute(select(OutboxMessage).where(OutboxMessage.recipient == to))
            ).scalar_one()
            # A second attempt only after a failed first one, which left its error.
            assert row.status == "sent"
            assert row.attempts == 1 or row.last_error, (row.attempts, row.last_error)


# --- the console's view ------------------------------------------------------------------


async def test_retry_refuses_what_cannot_be_retried(db, tag):
    with pytest.raises(NotFound):
        await outbox.retry_message(db, message_id=10**9, actor="admin", actor_role="admin")
    to = f"unit-{tag}@gov.test"
    await put(db, to)
    row = (
        await db.execute(select(OutboxMessage).where(OutboxMessage.recipient == to))
    ).scalar_one()
    row.status = OutboxStatus.SENT.value
    await db.flush()
    with pytest.raises(Conflict) as exc:
        await outbox.retry_message(db, message_id=row.id, actor="admin", actor_role="admin")
    assert exc.value.code == "outbox_message_not_retryable"


def test_backoff_doubles_and_is_capped():
    policy = outbox.DeliveryPolicy(
        backoff_base=timedelta(seconds=30), backoff_max=timedelta(minutes=3)
    )
    assert [policy.backoff(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 180, 180]


def test_policy_comes_from_settings(settings):
    policy = outbox.DeliveryPolicy.from_settings(
        settings.model_copy(
            update={
                "outbox_batch_size": 7,
                "outbox_max_attempts": 4,
                "outbox_backoff_base_seconds": 5,
                "outbox_backoff_max_seconds": 60,
                "outbox_lease_seconds": 120,
            }
        )
    )
    assert policy == outbox.DeliveryPolicy(
        batch_size=7,
        max_attempts=4,
        backoff_base=timedelta(seconds=5),
        backoff_max=timedelta(seconds=60),
        lease=timedelta(seconds=120),
    )
