"""监督查评 (supervisory inspection) visits, their photos, and each region's checklist."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import check_between
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK
from haochaping.evaluations.choices import Level


class InspectionChecklist(Base):
    """One version of a region's list of inspection items (检查项目); the newest version of
    the nearest region up the tree applies. Never edited: a change is a new version."""

    __tablename__ = "inspection_checklist"
    __table_args__ = (Index("ix_inspection_checklist_region_id", "region_code", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InspectionVisit(Base):
    """One inspector's visit to a unit: the checklist as answered, the level given and the
    notes; the rating it stored (channel `inspection`) is `evaluation_id`."""

    __tablename__ = "inspection_visit"
    __table_args__ = (
        CheckConstraint(check_between("level", Level), name="level_range"),
        Index("ix_inspection_visit_visited_id", "visited_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # [{"item": text, "passed": bool}, ...]: the texts as they were on the day, so a later
    # change of the region's list leaves a visit's record as it was.
    answers: Mapped[list[dict]] = mapped_column(JSON, default=list)
    checklist_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_checklist.id"))
    level: Mapped[int] = mapped_column(SmallInteger)
    notes: Mapped[str | None] = mapped_column(Text)
    evaluation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("evaluation.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InspectionPhoto(Base):
    """A photo taken on a visit, stored under a random key in `<upload_dir>/inspections/`."""

    __tablename__ = "inspection_photo"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    visit_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("inspection_visit.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
