"""Evaluations (评价): append-only; no route updates or deletes one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from haochaping.core.choices import check_between, check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import (
    BigIntPK,
    EncryptedString,
    EncryptedText,
    identity_hash_default,
)
from haochaping.evaluations.choices import STORED_CHANNELS, Level


class ReasonTag(Base):
    """A selectable reason for one level, in one version of the tag set."""

    __tablename__ = "reason_tag"
    __table_args__ = (CheckConstraint(check_between("level", Level), name="level_range"),)

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(String(200))


class Evaluation(Base):
    """One rating of a case (or of an org/item for general and supervisory channels)."""

    __tablename__ = "evaluation"
    __table_args__ = (
        CheckConstraint(check_between("level", Level), name="level_range"),
        CheckConstraint("eval_count BETWEEN 1 AND 2", name="count_range"),
        CheckConstraint(check_in("channel", STORED_CHANNELS), name="channel_valid"),
        # Once per case, stage and count: a second rating is a conflict, never an overwrite.
        UniqueConstraint("case_id", "stage", "eval_count"),
        Index("ix_evaluation_org_received", "org_id", "received_at"),
        Index("ix_evaluation_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_case.id"))
    stage: Mapped[str] = mapped_column(String(30), default="whole")
    eval_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    channel: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(SmallInteger)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # As stored and shown: ID-card and mobile numbers the rater typed are masked at intake.
    comment: Mapped[str | None] = mapped_column(Text)
    # The comment as typed, SM4-encrypted, kept only when masking changed it; revealed to a
    # handler through an audited route (POST /evaluations/{id}/reveal-comment).
    comment_original: Mapped[str | None] = mapped_column(EncryptedText)
    tagset_version: Mapped[str] = mapped_column(String(32))
    # Who was rated: the serving organisation, and where known the item, window and staff.
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("org.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    # Who rated (personal data: masked in every answer).
    rater_type: Mapped[str] = mapped_column(String(20), default="person")
    rater_name: Mapped[str | None] = mapped_column(String(200))
    rater_cert_type: Mapped[str | None] = mapped_column(String(20))
    # SM4-encrypted at rest; the keyed hashes find a rater without decrypting anything.
    rater_cert_no: Mapped[str | None] = mapped_column(EncryptedString)
    rater_phone: Mapped[str | None] = mapped_column(EncryptedString)
    rater_cert_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("rater_cert_no")
    )
    rater_phone_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("rater_phone")
    )
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    # A system default rating (默认评价) recorded by policy: marked and reported apart.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where it came from.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitation.id"))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(100))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invitation(Base):
    """A signed, single-use rating link for a case's applicant."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id"), index=True)
    stage: Mapped[str] = mapped_column(String(30), default="whole")
    channel: Mapped[str] = mapped_column(String(20), default="qrcode")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Plain column, not a foreign key: evaluation.invitation_id already links the pair.
    evaluation_id: Mapped[int | None] = mapped_column(BigIntPK)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
