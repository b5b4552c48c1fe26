"""Working-day calendar tables: administrators' overrides and the years they have completed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime, utcnow

# The span the working-day calendar precomputes (see haochaping.core.calendar).
FIRST_YEAR = 2000
LAST_YEAR = 2199


class CalendarDay(Base):
    """One day whose status differs from, or is named beyond, the plain Monday–Friday week."""

    __tablename__ = "calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # False: a day off (法定节假日, including weekends inside a holiday block);
    # True: a make-up working day (调休上班) or a correction of the package.
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(50), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(100), default="")


class CalendarYear(Base):
    """A year whose calendar administrators imported in full: it counts as known."""

    __tablename__ = "calendar_year"
    __table_args__ = (
        CheckConstraint(f"year BETWEEN {FIRST_YEAR} AND {LAST_YEAR}", name="year_range"),
    )

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(200), default="")
    holidays: Mapped[int] = mapped_column(Integer, default=0)
    workdays: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(100), default="")
