"""The transactional outbox: notifications written with the change, delivered after commit.

`enqueue` adds a message in the caller's transaction, so a change and its notification are
committed (or lost) together. `deliver_due` runs in the worker: it claims due messages with a
lease (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: its single writer), sends each outside any
transaction, and records the outcome. Failures are retried with exponential back-off; after
the last attempt a message is `dead`: kept, listed for the console, requeued by an
administrator. A worker that dies after claiming leaves its lease to expire, and the message is
sent again — at least once after a crash or a send that timed out, exactly once when workers
merely run side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, event, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from haochaping.config import Settings
from haochaping.core import audit
from haochaping.core.db import rows_changed
from haochaping.core.errors import Conflict, NotFound
from haochaping.core.notify import DeliveryError, Notifier
from haochaping.core.outbox_models import (
    DEDUPE_KEY_MAX,
    RECIPIENT_MAX,
    SUBJECT_MAX,
    OutboxChannel,
    OutboxMessage,
    OutboxStatus,
)
from haochaping.db.base import utcnow

log = logging.getLogger(__name__)

M = OutboxMessage
S = OutboxStatus
LEASE_EXPIRED_ERROR = "多次投递中断（发送进程退出或超时），已停止重试"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How many messages a run claims, how often a message is tried, how long a claim holds."""

    batch_size: int = 50
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        """The policy configured by the HAOCHAPING_OUTBOX_* settings."""
        return cls(
            batch_size=settings.outbox_batch_size,
            max_attempts=settings.outbox_max_attempts,
            backoff_base=timedelta(seconds=settings.outbox_backoff_base_seconds),
            backoff_max=timedelta(seconds=settings.outbox_backoff_max_seconds),
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base, ... capped."""
        return min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_max)


@dataclass
class DeliveryReport:
    """What one `deliver_due` run did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0  # will be retried
    dead: int = 0  # given up, including expired leases past the last attempt
    released: int = 0  # claimed but handed back unsent: the run ran out of lease time
    lost: int = 0  # sent, but another worker had taken the message over (lease expired)


@dataclass(frozen=True)
class ClaimedMessage:
    """A message claimed by one worker: what it needs to send it."""

    id: int
    channel: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    attempts: int  # counting this one

    @property
    def key(self) -> str:
        return f"hcp-outbox-{self.id}-{int(self.created_at.timestamp())}"


async def enqueue(
    db: AsyncSession,
    *,
    kind: str,
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Add a message in the caller's transaction (never commits); False if `dedupe_key` exists."""
    return (
        await enqueue_many(
            db,
            [
                Message(
                    kind=kind,
                    channel=channel,
                    recipient=recipient,
                    subject=subject,
                    body=body,
                    payload=payload,
                    dedupe_key=dedupe_key,
                    not_before=not_before,
                )
            ],
        )
        == 1
    )


@dataclass(frozen=True)
class Message:
    """One notification to add: what `enqueue` takes, for `enqueue_many`."""

    kind: str
    channel: str
    recipient: str
    subject: str
    body: str
    payload: dict[str, Any] | None = None
    dedupe_key: str | None = None
    not_before: datetime | None = None

    def row(self, now: datetime) -> dict[str, Any]:
        """The outbox row, checked; long texts are shortened, never refused."""
        if self.channel not in {c.value for c in OutboxChannel}:
            raise ValueError(f"unknown outbox channel {self.channel!r}")
        if not self.recipient or len(self.recipient) > RECIPIENT_MAX:
            raise ValueError(f"an outbox recipient has 1 to {RECIPIENT_MAX} characters")
        # A notification must never make the change it reports fail.
        subject, key = self.subject, self.dedupe_key
        if len(subject) > SUBJECT_MAX:
            subject = subject[: SUBJECT_MAX - 1] + "…"
        if key is not None and len(key) > DEDUPE_KEY_MAX:
            digest = hashlib.sha256(key.encode()).hexdigest()
            key = f"{key[: DEDUPE_KEY_MAX - len(digest) - 1]}#{digest}"
        return {
            "kind": str(self.kind),
            "channel": str(self.channel),
            "recipient": self.recipient,
            "subject": subject,
            "body": self.body,
            "payload": self.payload or {},
            "dedupe_key": key,
            "status": S.PENDING.value,
            "attempts": 0,
            "next_attempt_at": self.not_before or now,
            "created_at": now,
        }


async def enqueue_many(db: AsyncSession, messages: Sequence[Message]) -> int:
    """Add messages in the caller's transaction, in one statement; how many were new (a
    message whose `dedupe_key` exists is skipped). The commit wakes the sender."""
    if not messages:
        return 0
    now = utcnow()
    rows = [m.row(now) for m in messages]
    ins = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = len((await db.execute(ins(M).on_conflict_do_nothing().returning(M.id), rows)).all())
    if added:
        db.sync_session.info["outbox_pending"] = True
    return added


def _due(now: datetime, policy: DeliveryPolicy) -> ColumnElement[bool]:
    return or_(
        and_(M.status.in_([S.PENDING.value, S.FAILED.value]), M.next_attempt_at <= now),
        # A claim whose worker never reported back (crashed, killed, hung past its lease).
        and_(M.status == S.SENDING.value, M.locked_until < now, M.attempts < policy.max_attempts),
    )


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    worker_id: str,
    now: datetime | None = None,
    policy: DeliveryPolicy = DeliveryPolicy(),
    batch: int | None = None,
    channels: Collection[str] | None = None,
) -> list[ClaimedMessage]:
    """Claim up to `batch` due messages for this worker and commit the claim (only those of
    `channels` when given: a worker of its own for webhooks, say)."""
    only = M.channel.in_(list(channels)) if channels is not None else true()
    now = now or utcnow()
    async with sessionmaker() as db, db.begin():
        # PostgreSQL: rows another worker is claiming are skipped, not waited for or shared.
        # SQLite: the transaction began IMMEDIATE, so no other writer runs until we commit.
        ids = (
            (
                await db.execute(
                    select(M.id)
                    .where(_due(now, policy), only)
                    .order_by(M.next_attempt_at, M.id)
                    .limit(batch or policy.batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        rows = (
            await db.execute(
                update(M)
                .where(M.id.in_(ids), _due(now, policy))
                .values(
                    status=S.SENDING.value,
                    attempts=M.attempts + 1,
                    locked_by=worker_id,
                    locked_until=now + policy.lease,
                )
                .returning(
                    M.id, M.channel, M.recipient, M.subject, M.body, M.created_at, M.attempts
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
    return sorted((ClaimedMessage(*row) for row in rows), key=lambda c: c.id)


async def _bury_expired(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, policy: DeliveryPolicy
) -> int:
    """Give up on claims that expired on their last attempt (a message that kills its worker)."""
    async with sessionmaker() as db, db.begin():
        result = await db.execute(
            update(M)
            .where(
                M.status == S.SENDING.value, M.locked_until < now, M.attempts >= policy.max_attempts
            )
            .values(
                status=S.DEAD.value,
                last_error=LEASE_EXPIRED_ERROR,
                locked_by=None,
                locked_until=None,
            )
            .execution_options(synchronize_session=False)
        )
    return rows_changed(result)


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    message_id: int,
    worker_id: str,
    **values: Any,
) -> bool:
    async with sessionmaker() as db, db.begin():
        # Fenced by the claim: a worker whose lease was taken over records nothing.
        result = await db.execute(
            update(M)
            .where(M.id == message_id, M.status == S.SENDING.value, M.locked_by == worker_id)
            .values(locked_by=None, locked_until=None, **values)
            .execution_options(synchronize_session=False)
        )
    return rows_changed(result) == 1


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession], ids: Sequence[int], worker_id: str
) -> int:
    """Hand unsent claims back, as if they had never been claimed."""
    async with sessionmaker() as db, db.begin():
        result = await db.execute(
            update(M)
            .where(M.id.in_(ids), M.status == S.SENDING.value, M.locked_by == worker_id)
            .values(
                status=case((M.last_error.is_(None), S.PENDING.value), else_=S.FAILED.value),
                attempts=M.attempts - 1,
                locked_by=None,
                locked_until=None,
            )
            .execution_options(synchronize_session=False)
        )
    return rows_changed(result)


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    *,
    worker_id: str,
    now: datetime | None = None,
    policy: DeliveryPolicy = DeliveryPolicy(),
    batch: int | None = None,
    channels: Collection[str] | None = None,
) -> DeliveryReport:
    """Send the messages that are due (of `channels`, when given), once each, and record
    every outcome."""
    clock = now or utcnow()
    report = DeliveryReport()
    report.dead += await _bury_expired(sessionmaker, now=clock, policy=policy)
    claimed = await claim_due(
        sessionmaker, worker_id=worker_id, now=clock, policy=policy, batch=batch, channels=channels
    )
    report.claimed = len(claimed)
    # Sends start only in the first half of the lease and each may take a quarter of it, so no
    # other worker can take a message over while it is still being sent.
    budget_ends = time.monotonic() + policy.lease.total_seconds() / 2
    send_limit = policy.lease.total_seconds() / 4
    for index, message in enumerate(claimed):
        if time.monotonic() > budget_ends:
            report.released += await _release(
                sessionmaker, [m.id for m in claimed[index:]], worker_id
            )
            break
        error: DeliveryError | None = None
        try:
            async with asyncio.timeout(send_limit):
                await notifier.send(
                    channel=message.channel,
                    recipient=message.recipient,
                    subject=message.subject,
                    body=message.body,
                    key=message.key,
                )
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"发送超时（超过 {send_limit:g} 秒）")
        except Exception as exc:  # a bug in a sender must not leave the message claimed
            log.exception("outbox message %s: unexpected error while sending", message.id)
            error = DeliveryError(f"发送时出现内部错误：{type(exc).__name__}: {exc}")
        stamp = now or utcnow()
        if error is None:
            ok = await _record(
                sessionmaker, message.id, worker_id, status=S.SENT.value, sent_at=stamp
            )
            report.sent += int(ok)
        else:
            ok = await _record_failure(
                sessionmaker,
                message,
                worker_id,
                error=error,
                now=stamp,
                policy=policy,
                report=report,
            )
        if not ok:
            report.lost += 1
            log.warning("outbox message %s: lease lost to another worker", message.id)
    return report


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession],
    message: ClaimedMessage,
    worker_id: str,
    *,
    error: DeliveryError,
    now: datetime,
    policy: DeliveryPolicy,
    report: DeliveryReport,
) -> bool:
    text = str(error)[:2000]
    if error.permanent or message.attempts >= policy.max_attempts:
        log.warning(
            "outbox message %s is dead after %s attempts: %s", message.id, message.attempts, text
        )
        ok = await _record(
            sessionmaker, message.id, worker_id, status=S.DEAD.value, last_error=text
        )
        report.dead += int(ok)
    else:
        ok = await _record(
            sessionmaker,
            message.id,
            worker_id,
            status=S.FAILED.value,
            last_error=text,
            next_attempt_at=now + policy.backoff(message.attempts),
        )
        report.failed += int(ok)
    return ok


async def failed_messages(db: AsyncSession, *, limit: int = 100) -> list[OutboxMessage]:
    """Deliveries that failed (retrying) or were given up (dead), newest first, for the console."""
    return list(
        (
            await db.execute(
                select(M)
                .where(M.status.in_([S.FAILED.value, S.DEAD.value]))
                .order_by(M.created_at.desc(), M.id.desc())
                .limit(limit)
            )
        ).scalars()
    )


async def status_counts(db: AsyncSession) -> dict[str, int]:
    """How many messages are in each status (the console's outbox summary)."""
    rows = await db.execute(select(M.status, func.count()).group_by(M.status))
    counts = {status.value: 0 for status in S}
    counts.update(dict(rows.all()))
    return counts


async def retry_message(
    db: AsyncSession, *, message_id: int, actor: str, actor_role: str | None
) -> OutboxMessage:
    """Requeue a dead or failed message for delivery now, with a fresh set of attempts."""
    message = await db.get(M, message_id, with_for_update=True)
    if message is None:
        raise NotFound("通知消息不存在", code="outbox_message_not_found")
    if message.status in (S.SENT.value, S.SENDING.value):
        raise Conflict("该通知已发送或正在发送，不能重新发送", code="outbox_message_not_retryable")
    message.status = S.PENDING.value
    message.attempts = 0
    message.next_attempt_at = utcnow()
    audit.record(
        db,
        actor=actor,
        actor_role=actor_role,
        action=audit.AuditAction.RETRY_MESSAGE,
        target_type="outbox_message",
        target_id=message.id,
        detail={"kind": message.kind, "channel": message.channel},
    )
    await db.flush()
    return message


# --- delivery right after commit ------------------------------------------------------------
# A committed transaction that enqueued messages wakes the in-process worker, so that
# notifications leave seconds after the change instead of at the next periodic pass.

_WAKERS: list[Any] = []


def on_commit_wake(callback: Any) -> None:
    """Register a callable run after any commit that enqueued a message."""
    _WAKERS.append(callback)


def forget_wake(callback: Any) -> None:
    if callback in _WAKERS:
        _WAKERS.remove(callback)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop("outbox_pending", False):
        for callback in list(_WAKERS):
            callback()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop("outbox_pending", None)
