"""Appeals (申诉复核) and the register of malicious raters (恶意评价人员信息库)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.appeals.choices import AppealCategory, AppealState
from haochaping.core.choices import check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class Appeal(Base):
    """A unit's appeal against a bad rating of its own, decided by the office."""

    __tablename__ = "appeal"
    __table_args__ = (
        CheckConstraint(check_in("category", AppealCategory), name="category_valid"),
        CheckConstraint(check_in("state", AppealState), name="state_valid"),
        Index("ix_appeal_state_due", "state", "decide_due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    from_state: Mapped[str] = mapped_column(String(20))  # the work order's state when filed
    filed_by: Mapped[str] = mapped_column(String(100))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decide_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decide_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    register_rater: Mapped[bool] = mapped_column(Boolean, default=False)


class MaliciousRater(Base):
    """A rater found malicious, known only by a keyed hash of their identity, until expiry
    or an early revocation; made by an upheld appeal or by an office with its evidence."""

    __tablename__ = "malicious_rater"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    identity_hash: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # cert | phone
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeal.id"))
    # The scope of the entry: the appealing unit, or the office that made it.
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    masked: Mapped[str | None] = mapped_column(String(40))  # 138****5678, never the number
    evidence: Mapped[str | None] = mapped_column(Text)  # an entry made outside an appeal
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoke_note: Mapped[str | None] = mapped_column(Text)
