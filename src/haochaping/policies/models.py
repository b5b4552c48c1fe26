"""Jurisdiction policy sets: every number the closed loop uses, versioned per region."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class PolicySet(Base):
    """One version of a region's policy: partial values, inherited by the region's subtree."""

    __tablename__ = "policy_set"
    __table_args__ = (UniqueConstraint("region_code", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    # Only the values this region sets; the rest come from its ancestors and the defaults.
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
