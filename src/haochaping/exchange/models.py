"""Reporting up (上报): the child's send position per stream, and the parent's copy of the
work-order outcomes its children report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class UpstreamStream(Base):
    """What a child has reported of one stream (ratings, work-order outcomes): every row up to
    `watermark` (an id) has been accepted by the parent; the lease keeps one sender at a time;
    `failures` and `next_attempt_at` are the back-off while the parent is unreachable."""

    __tablename__ = "upstream_stream"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)
    # Records the parent refused (a stable code each, logged and kept in last_error).
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time of the newest rating (work-order event) accepted: the lag is now minus it.
    sent_through: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExchangeWorkOrder(Base):
    """A child's work order as last reported (办理结果): its state and outcome, keyed by the
    child and the order's id there; the rating it answers is found by the same pair."""

    __tablename__ = "exchange_work_order"
    __table_args__ = (UniqueConstraint("client_id", "origin_ref"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id"))
    origin_ref: Mapped[int] = mapped_column(BigInteger)
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluation.id"), index=True)
    case_no: Mapped[str | None] = mapped_column(String(50))
    stage: Mapped[str] = mapped_column(String(30), default="whole")
    eval_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    state: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(200))
    # The deadlines and milestones the bad-review funnel counts (verified / rectified on time,
    # overdue), as the child's order holds them; named as on `work_order` so that one overdue
    # rule reads both tables.
    verify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Escalated or under supervision; the rater reached by a callback; satisfied when reached.
    supervised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    called_back: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    callback_satisfied: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The child's event id of the state reported: an older report never overwrites a newer.
    event_ref: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
