"""Pads (评价器) paired with a window, and the services announced at each window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class PadDevice(Base):
    """A window evaluator: created with a one-time pairing code, then holding a long-lived
    credential (both stored as keyed digests only) until it is revoked."""

    __tablename__ = "pad_device"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # While pending: the digest of the one-time code and when it stops working.
    pairing_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Once paired: the digest of the credential the pad's browser holds (an HttpOnly cookie).
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WindowService(Base):
    """One service at a window as the queuing or business system announced it (叫号): the
    open one (no `ended_at`) is what the window's pads show now. Kept after it ends, so that
    a rating given offline still finds the service it was given for."""

    __tablename__ = "window_service"
    __table_args__ = (Index("ix_window_service_window_started", "window_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id"), index=True)
    flow_no: Mapped[str] = mapped_column(String(50))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
