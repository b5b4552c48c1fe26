"""The notification outbox (通知发件箱): messages written with a change, delivered after it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK, LookupEncryptedString

RECIPIENT_MAX = 254  # the longest e-mail address SMTP allows
SUBJECT_MAX = 200
DEDUPE_KEY_MAX = 255


class OutboxChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt
    SENDING = "sending"  # claimed by a worker until `locked_until`
    SENT = "sent"
    FAILED = "failed"  # an attempt failed; retried at `next_attempt_at`
    DEAD = "dead"  # given up: kept for the console, requeued only by an administrator


class OutboxKind(StrEnum):
    """Known kinds; the column is free text so that a new kind needs no migration."""

    WORKORDER_OPENED = "workorder_opened"
    DEADLINE_WARNING = "deadline_warning"
    OVERDUE = "overdue"
    ESCALATED = "escalated"
    CALLBACK_INVITATION = "callback_invitation"


CHANNEL_LABELS = {OutboxChannel.EMAIL: "电子邮件", OutboxChannel.SMS: "短信"}

STATUS_LABELS = {
    OutboxStatus.PENDING: "待发送",
    OutboxStatus.SENDING: "发送中",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.FAILED: "发送失败，等待重试",
    OutboxStatus.DEAD: "已停止重试",
}

KIND_LABELS = {
    OutboxKind.WORKORDER_OPENED: "新差评工单",
    OutboxKind.DEADLINE_WARNING: "超期预警",
    OutboxKind.OVERDUE: "已超期",
    OutboxKind.ESCALATED: "督办升级",
    OutboxKind.CALLBACK_INVITATION: "回访邀请",
}


class OutboxMessage(Base):
    """One notification to one recipient, delivered at least once and never silently dropped."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms')", name="channel_valid"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'dead')", name="status_valid"
        ),
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        # The claim query: due messages by status and time.
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    # E-mail address or phone: personal data, stored encrypted (deterministically, so that
    # a lookup by recipient still works); RECIPIENT_MAX bounds the plaintext.
    recipient: Mapped[str] = mapped_column(LookupEncryptedString)
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX), default="")
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A periodic job that runs twice, or in two processes at once, enqueues a key only once.
    dedupe_key: Mapped[str | None] = mapped_column(String(DEDUPE_KEY_MAX), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
