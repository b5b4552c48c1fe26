"""The archive of monthly reports: one per region and month, never replaced."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class MonthlyReport(Base):
    """A region's 通报 of one month: the workbook in the file store (`reports/<storage_key>`)
    with its SM3 digest, and the sections it was written from (the printable page)."""

    __tablename__ = "monthly_report"
    __table_args__ = (UniqueConstraint("region_code", "month"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    sm3: Mapped[str] = mapped_column(String(64))  # of the workbook's bytes, hex
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
