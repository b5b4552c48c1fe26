"""Flags raised by the detectors, and the staff identities the self-rating check compares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK
from haochaping.integrity.choices import FlagStage, FlagState


class IntegrityFlag(Base):
    """One check's suspicion about one rating, with its evidence, until a reviewer decides."""

    __tablename__ = "integrity_flag"
    __table_args__ = (
        # A check flags a rating once: re-running a batch check never duplicates its flags.
        UniqueConstraint("evaluation_id", "check_name"),
        CheckConstraint(check_in("stage", FlagStage), name="stage_valid"),
        CheckConstraint(check_in("state", FlagState), name="state_valid"),
        Index("ix_integrity_flag_state_id", "state", "id"),
        # The review queue: by raised time within a state, the id breaking ties.
        Index("ix_integrity_flag_state_created_id", "state", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"))
    # The rated organisation, kept beside the flag so the queue is scoped without a join.
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    check_name: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(10))
    # What the suspicion is about (a phone, a pad, a window...): flags of one pattern group.
    subject: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(12), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)


class StaffIdentity(Base):
    """A keyed hash of a staff member's ID number or phone (never the number itself)."""

    __tablename__ = "staff_identity"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # cert | phone
    identity_hash: Mapped[str] = mapped_column(String(64), index=True)
    recorded_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
