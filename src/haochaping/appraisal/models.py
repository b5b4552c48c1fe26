"""Appraisal schemes (考核方案) and elastic bonus/deduction items (弹性加减分项)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class AppraisalScheme(Base):
    """One version of a region's indicator scheme for a year; never changed once stored (a
    change is the next version, so the scores of an older version stay reproducible)."""

    __tablename__ = "appraisal_scheme"
    __table_args__ = (
        UniqueConstraint("region_code", "year", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("year BETWEEN 1900 AND 2999", name="year_valid"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    # [{code, metric, weight_label, direction, description, weight}], in matrix order.
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The judgement matrix as entered, each cell as text ("3", "1/3").
    judgements: Mapped[list[list[str]]] = mapped_column(JSON)
    lambda_max: Mapped[float] = mapped_column(Float)
    ci: Mapped[float] = mapped_column(Float)
    cr: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppraisalAdjustment(Base):
    """An elastic bonus (+) or deduction (−) for one unit in one month, with its note and
    evidence file; on record, never edited (a correction is a reversing item)."""

    __tablename__ = "appraisal_adjustment"
    __table_args__ = (
        CheckConstraint("points_tenths BETWEEN -200 AND 200", name="points_range"),
        CheckConstraint("points_tenths <> 0", name="points_nonzero"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # 2026-11
    # Tenths of a point (+2 → 20, −0.5 → −5): exact on both databases.
    points_tenths: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def points(self) -> float:
        return self.points_tenths / 10
