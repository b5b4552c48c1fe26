"""The notification outbox (通知发件箱): messages written with a change, delivered after it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import ChoiceSet, check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK, LookupEncryptedString

RECIPIENT_MAX = 254  # the longest e-mail address SMTP allows
SUBJECT_MAX = 200
DEDUPE_KEY_MAX = 255


class OutboxChannel(ChoiceSet):
    EMAIL = "email", "电子邮件"
    SMS = "sms", "短信"
    # A signed POST to a subscriber's URL (the subject holds the signature header).
    WEBHOOK = "webhook", "Webhook 推送"


class OutboxStatus(ChoiceSet):
    PENDING = "pending", "待发送"  # waiting for its first attempt
    SENDING = "sending", "发送中"  # claimed by a worker until `locked_until`
    SENT = "sent", "已发送"
    FAILED = "failed", "发送失败，等待重试"  # an attempt failed; retried at `next_attempt_at`
    # given up: kept for the console, requeued only by an administrator
    DEAD = "dead", "已停止重试"


class OutboxKind(ChoiceSet):
    """Known kinds; the column is free text so that a new kind needs no migration."""

    WORKORDER_OPENED = "workorder_opened", "新差评工单"
    DEADLINE_WARNING = "deadline_warning", "超期预警"
    OVERDUE = "overdue", "已超期"
    ESCALATED = "escalated", "督办升级"
    CALLBACK_INVITATION = "callback_invitation", "回访邀请"
    WORKORDER_EVENT = "workorder_event", "工单事件推送"


CHANNEL_LABELS = OutboxChannel.labels()

STATUS_LABELS = OutboxStatus.labels()

KIND_LABELS = OutboxKind.labels()


class OutboxMessage(Base):
    """One notification to one recipient, delivered at least once and never silently dropped."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(check_in("channel", OutboxChannel), name="channel_valid"),
        CheckConstraint(check_in("status", OutboxStatus), name="status_valid"),
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
