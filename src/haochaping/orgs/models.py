"""Regions, organisations, staff and service items (reference data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from haochaping.core.choices import check_between, check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK
from haochaping.orgs.choices import OrgKind, RegionTier


class Region(Base):
    """An administrative region: province, city, county, town or village (five tiers)."""

    __tablename__ = "region"
    __table_args__ = (
        CheckConstraint(check_between("tier", RegionTier), name="tier_range"),
        # A subtree is `path LIKE '/330000/%'`: on PostgreSQL the pattern operator class lets
        # an index serve that prefix whatever the database's collation (a plain b-tree only
        # does under the "C" collation).
        Index("ix_region_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    tier: Mapped[int] = mapped_column(Integer)
    # Materialised path of codes ("/330000/330100/"): a subtree is one prefix match.
    path: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Org(Base):
    """An organisation: a department, a service hall or a window inside a hall (a tree)."""

    __tablename__ = "org"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org.id"), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    # Materialised path of org codes ("/P/HALL1/W01/"): scope checks are a prefix test.
    path: Mapped[str] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deactivated, never deleted: ratings, work orders and accounts keep pointing at it.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    parent: Mapped[Org | None] = relationship(remote_side=[id], lazy="raise")

    __table_args__ = (
        CheckConstraint(check_in("kind", OrgKind), name="kind_valid"),
        # Prefix search on PostgreSQL whatever the collation (see Region).
        Index("ix_org_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )


class Staff(Base):
    """A staff member (工作人员) of an organisation, known by staff number (工号)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deactivated, never deleted: ratings, work orders and accounts keep pointing at it.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The photo shown by the window evaluator and "服务之星": a file under the upload folder
    # (`staff/<photo_key>`), its content type checked by its bytes.
    photo_key: Mapped[str | None] = mapped_column(String(64))
    photo_type: Mapped[str | None] = mapped_column(String(20))
    # The staff member's consent to be named on the public portal (窗口服务之星: name, staff
    # number, photo), on record when set: when and by whom it was recorded; None: no consent.
    publish_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_consent_by: Mapped[str | None] = mapped_column(String(100))


class Item(Base):
    """A government service item (政务服务事项), keyed by its implementation code (实施编码)."""

    __tablename__ = "item"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    basic_code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deactivated, never deleted: ratings, work orders and accounts keep pointing at it.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class DirectoryChange(Base):
    """A change of an organisation, region, staff member or item, noted by a trigger in the
    database (migration 0034): what a kept ranking (`analytics/snapshots.py`) looks at to
    know its names and tree are still current. Rows are only ever inserted."""

    __tablename__ = "directory_change"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
