"""Service cases (办件) pushed by business systems."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.cases.choices import CaseStatus, ServiceMode
from haochaping.core.choices import check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK, EncryptedString, identity_hash_default


class Case(Base):
    """One handling of one service item for one applicant."""

    __tablename__ = "service_case"
    __table_args__ = (
        CheckConstraint(check_in("status", CaseStatus), name="status_valid"),
        CheckConstraint(check_in("mode", ServiceMode), name="mode_valid"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(50), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("org.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    mode: Mapped[str] = mapped_column(String(10))
    case_type: Mapped[str] = mapped_column(String(20), default="immediate")
    status: Mapped[str] = mapped_column(String(20))
    applicant_type: Mapped[str] = mapped_column(String(20))
    applicant_name: Mapped[str | None] = mapped_column(String(200))
    applicant_cert_type: Mapped[str | None] = mapped_column(String(20))
    # Personal identifiers: SM4-encrypted at rest, found through keyed hashes (HMAC-SM3).
    applicant_cert_no: Mapped[str | None] = mapped_column(EncryptedString)
    applicant_phone: Mapped[str | None] = mapped_column(EncryptedString)
    applicant_cert_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("applicant_cert_no", "cert")
    )
    applicant_phone_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("applicant_phone", "phone")
    )
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
