"""Work orders (差评工单), their event trail, units, attachments, callbacks, spot checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK, EncryptedString
from haochaping.workorders.choices import CallbackMethod, Verdict
from haochaping.workorders.states import State


class WorkOrder(Base):
    """The closed loop of one bad review: verify, rectify, call back, supervise, close."""

    __tablename__ = "work_order"
    __table_args__ = (
        CheckConstraint(check_in("state", State), name="state_valid"),
        # The deadline job scans by state and due time: these keep a pass set-based and fast.
        Index("ix_work_order_state_verify_due", "state", "verify_due_at"),
        Index("ix_work_order_state_rectify_due", "state", "rectify_due_at"),
        Index("ix_work_order_state_callback_due", "state", "callback_due_at"),
        # Warnings are due when warn <= now < due: with both times in the key PostgreSQL sees
        # how few orders that is. On (state, warn) alone it took (state, due) instead and read
        # every order of the state not yet due (bench/sweep.py).
        Index("ix_work_order_state_verify_warn", "state", "verify_warn_at", "verify_due_at"),
        Index("ix_work_order_state_rectify_warn", "state", "rectify_warn_at", "rectify_due_at"),
        Index("ix_work_order_state_callback_warn", "state", "callback_warn_at", "callback_due_at"),
        Index("ix_work_order_org_state", "org_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_case.id"), index=True)
    origin: Mapped[str] = mapped_column(String(20), default="bad_rating")
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))  # the lead unit (谁办理谁负责)
    region_code: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(20), default="verifying")
    # Optimistic lock: two handlers acting at once — one wins, the other gets 409.
    version: Mapped[int] = mapped_column(Integer, default=1)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policy_set.id"))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)  # the values it was opened under
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectify_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # False when a deadline fell in a year the working-day calendar does not know.
    deadlines_verified: Mapped[bool] = mapped_column(Boolean, default=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    supervising_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_verify_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_rectify_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    followups: Mapped[int] = mapped_column(Integer, default=0)
    close_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WorkOrderUnit(Base):
    """A unit that sees and handles a work order: the lead, and co-handling units (协办)."""

    __tablename__ = "work_order_unit"

    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10), default="lead")  # lead | co
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WorkOrderEvent(Base):
    """One step of the trail (全过程留痕): who did what, when, from which state to which."""

    __tablename__ = "work_order_event"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A stored file (evidence, rectification proof), size-limited and type-checked."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("work_order_event.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackAttempt(Base):
    """One attempt to call the rater back (回访): method, reached or not, verdict."""

    __tablename__ = "callback_attempt"
    __table_args__ = (
        CheckConstraint(check_in("method", CallbackMethod), name="method_valid"),
        CheckConstraint("verdict IS NULL OR " + check_in("verdict", Verdict), name="verdict_valid"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"), index=True)
    spot_check_id: Mapped[int | None] = mapped_column(ForeignKey("spot_check.id"), index=True)
    method: Mapped[str] = mapped_column(String(10))
    reached: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    actor_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpotCheck(Base):
    """A callback task on a sampled good rating (抽查回访)."""

    __tablename__ = "spot_check"
    __table_args__ = (
        UniqueConstraint("evaluation_id"),
        Index("ix_spot_check_org_state", "org_id", "state"),
        # The spot-check queue: by sampled time within a state, the id breaking ties.
        Index("ix_spot_check_state_created_id", "state", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done
    verdict: Mapped[str | None] = mapped_column(String(20))
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookSubscription(Base):
    """An outside system told of work-order events (12345 ticketing, a province's
    supervision platform): deliveries go through the outbox, signed with its secret."""

    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # Events of work orders whose lead unit lies in this organisation's subtree.
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The HMAC key, encrypted at rest like personal data (it signs what the receiver trusts).
    secret: Mapped[str] = mapped_column(EncryptedString)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
