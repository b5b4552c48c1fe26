"""Periods of the statistics: months, quarters, years and the date ranges of a question.

Every period and every day is a calendar period in Asia/Shanghai local time (UTC+8, no
daylight saving since 1991): the month `2026-11` runs from 2026-11-01 00:00 to 2026-12-01
00:00 Beijing time, i.e. from 2026-10-31T16:00Z. Pure Python: no database, no HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from haochaping.core.errors import Invalid
from haochaping.core.timeutil import SHANGHAI

# The longest range one question may cover (issue 10): five years of days.
MAX_RANGE = timedelta(days=5 * 366)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def local_start(day: date) -> datetime:
    """Midnight of a local (Beijing) day, as an aware UTC time."""
    return datetime.combine(day, time(), SHANGHAI).astimezone(UTC)


def local_day(moment: datetime) -> date:
    """The local (Beijing) day of an aware time."""
    return moment.astimezone(SHANGHAI).date()


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month, quarter or year (local time); `start` inclusive, `end` exclusive."""

    kind: str  # month | quarter | year
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.kind == "year":
            return f"{self.start.year}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.kind]

    def shift(self, steps: int) -> Period:
        """The period `steps` lengths later (negative: earlier), across year boundaries."""
        start = _add_months(self.start, steps * self.months)
        return Period(self.kind, start, _add_months(start, self.months))

    def previous(self) -> Period:
        return self.shift(-1)

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants [since, until)."""
        return local_start(self.start), local_start(self.end)


def month_of(day: date) -> Period:
    start = date(day.year, day.month, 1)
    return Period("month", start, _add_months(start, 1))


def parse_period(value: str) -> Period:
    """`2026-11`, `2026-Q4` or `2026`; anything else is 422 `invalid_period`."""
    text = value.strip()
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12 and 1900 <= year <= 2999:
            return month_of(date(year, month, 1))
    elif m := _QUARTER.match(text):
        year, quarter = int(m[1]), int(m[2])
        if 1900 <= year <= 2999:
            start = date(year, 3 * (quarter - 1) + 1, 1)
            return Period("quarter", start, _add_months(start, 3))
    elif (m := _YEAR.match(text)) and 1900 <= int(m[1]) <= 2999:
        start = date(int(m[1]), 1, 1)
        return Period("year", start, date(start.year + 1, 1, 1))
    raise Invalid(
        "统计周期格式不正确，应为 2026-11（月）、2026-Q4（季度）或 2026（年）",
        code="invalid_period",
        details=[{"field": "period", "value": value[:40]}],
    )


def current_period(kind: str, now: datetime) -> Period:
    """The period of this kind that contains `now` (local time)."""
    month = month_of(local_day(now))
    if kind == "year":
        return parse_period(f"{month.start.year}")
    if kind == "quarter":
        return parse_period(f"{month.start.year}-Q{(month.start.month - 1) // 3 + 1}")
    return month


def check_range(since: datetime | None, until: datetime | None) -> None:
    """422 when `until` is before `since` (`invalid_range`) or the range is over five years
    (`range_too_long`)."""
    if since is not None and until is not None:
        if until < since:
            raise Invalid(
                "结束时间不能早于开始时间",
                code="invalid_range",
                details=[{"field": "until"}],
            )
        if until - since > MAX_RANGE:
            raise Invalid(
                "统计时间范围不能超过 5 年",
                code="range_too_long",
                details=[{"field": "since"}, {"field": "until"}],
            )


def day_label(day: date) -> str:
    return day.isoformat()


def week_label(day: date) -> str:
    """ISO week of a local day: `2026-W48` (weeks start on Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month_label(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def days(since: date, until: date) -> list[date]:
    """Every local day in [since, until)."""
    return [since + timedelta(days=n) for n in range((until - since).days)]
