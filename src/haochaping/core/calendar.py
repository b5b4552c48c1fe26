"""The Chinese working-day calendar (工作日历) used by work-order deadlines.

Sources, strongest first:

1. the `calendar_day` rows administrators import from the State Council's annual notice
   (国务院办公厅关于某年部分节假日安排的通知); a year imported in full (`calendar_year`)
   replaces the package's data for that year entirely;
2. the maintained `chinese-calendar` package, for the years it ships;
3. Monday to Friday, for any other year — such a year is *unknown* and every deadline that
   counts a day in it is returned with ``verified=False``.

Counting follows the rule of the Civil Code (民法典第二百零一条、第二百零三条) as applied to
administrative time limits counted in working days (行政许可法第八十二条): the day of arrival
does not count, counting starts on the next working day, and a time limit ends at 24:00 of
its last day — here 23:59:59.999999 Asia/Shanghai, stored in UTC.

`WorkCalendar` is immutable and precomputes, over 2000–2199, the ordinal rank of every
working day, so `add_workdays` and `workdays_between` are O(1) list look-ups.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from itertools import accumulate

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.calendar_models import FIRST_YEAR, LAST_YEAR, CalendarDay, CalendarYear
from haochaping.core.choices import ChoiceSet
from haochaping.core.db import rows_changed
from haochaping.core.errors import Invalid
from haochaping.core.timeutil import SHANGHAI

PACKAGE_SOURCE = "chinese-calendar"
WEEKDAY_LABELS = ("一", "二", "三", "四", "五", "六", "日")

_LO = date(FIRST_YEAR, 1, 1).toordinal()
_HI = date(LAST_YEAR + 1, 1, 1).toordinal()
_SIZE = _HI - _LO


class DayType(ChoiceSet):
    """The `type` column of an imported calendar CSV."""

    HOLIDAY = "holiday", "放假"  # 放假（休息日）
    WORKDAY = "workday", "调休上班"


DAY_TYPE_LABELS = DayType.labels()


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """A day whose status or name departs from the plain Monday–Friday week."""

    day: date
    is_workday: bool
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import stored: the year, its days off and make-up working days."""

    year: int
    holidays: int
    workdays: int
    replaced: int
    source: str


@cache
def _package() -> tuple[range, dict[date, SpecialDay]]:
    """The years the chinese-calendar package ships and its special days, named in Chinese."""
    from chinese_calendar import constants

    chinese = {h.value: h.chinese for h in constants.Holiday}
    years = range(min(constants.holidays).year, max(constants.holidays).year + 1)
    days: dict[date, SpecialDay] = {}
    for day, label in constants.holidays.items():
        days[day] = SpecialDay(day, False, chinese.get(label, label), PACKAGE_SOURCE)
    for day, label in constants.workdays.items():
        name = f"{chinese.get(label, label)}调休上班"
        days[day] = SpecialDay(day, True, name, PACKAGE_SOURCE)
    return years, days


def package_years() -> range:
    """The years the installed chinese-calendar package knows."""
    return _package()[0]


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{year} 年超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）")


class WorkCalendar:
    """Chinese working days with O(1) deadline arithmetic; build it with `load_calendar`."""

    __slots__ = (
        "_is_work",
        "_rank",
        "_work_idx",
        "_work_dates",
        "_unknown_cum",
        "_year_sources",
        "_special",
        "_end_of_day",
    )

    def __init__(
        self,
        days: Iterable[SpecialDay] = (),
        years: Mapping[int, str] | None = None,
        *,
        package: bool = True,
    ) -> None:
        """`days`: administrators' overrides; `years`: years imported in full -> source."""
        years = dict(years or {})
        for year in years:
            _check_year(year)
        pkg_years, pkg_days = _package() if package else (range(0), {})

        year_sources: dict[int, str] = dict.fromkeys(pkg_years, PACKAGE_SOURCE)
        year_sources.update(years)  # an imported year replaces the package's
        special = {d: s for d, s in pkg_days.items() if d.year not in years}
        for s in days:
            special[s.day] = s

        # Monday–Friday everywhere, then the special days on top.
        is_work = bytearray(_SIZE)
        first_weekday = date(FIRST_YEAR, 1, 1).weekday()
        week = bytes(1 if (first_weekday + k) % 7 < 5 else 0 for k in range(7))
        is_work[:] = (week * (_SIZE // 7 + 1))[:_SIZE]
        for day, s in special.items():
            i = day.toordinal() - _LO
            if 0 <= i < _SIZE:
                is_work[i] = s.is_workday

        # rank[i]: working days at indices <= i; the n-th working day after index i is
        # work_idx[rank[i] + n - 1].
        self._is_work = bytes(is_work)
        self._rank = list(accumulate(is_work))
        self._work_idx = [i for i, w in enumerate(is_work) if w]
        self._work_dates = [date.fromordinal(_LO + i) for i in self._work_idx]
        # unknown_cum[i]: days in unknown years at indices < i.
        unknown_cum = [0]
        total = 0
        for year in range(FIRST_YEAR, LAST_YEAR + 1):
            length = 366 if _is_leap(year) else 365
            if year in year_sources:
                unknown_cum.extend([total] * length)
            else:
                unknown_cum.extend(range(total + 1, total + length + 1))
                total += length
        self._unknown_cum = unknown_cum
        self._year_sources = year_sources
        self._special = special
        self._end_of_day: dict[date, datetime] = {}

    def _index(self, day: date) -> int:
        i = day.toordinal() - _LO
        if not 0 <= i < _SIZE:
            raise ValueError(f"日期 {day} 超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）")
        return i

    def is_workday(self, day: date) -> bool:
        """Whether people work on this day (调休上班 counts; statutory holidays do not)."""
        i = day.toordinal() - _LO
        if 0 <= i < _SIZE:
            return bool(self._is_work[i])
        return day.weekday() < 5

    def known_year(self, year: int) -> bool:
        """Whether the package or a full import covers this year."""
        return year in self._year_sources

    def year_source(self, year: int) -> str | None:
        """Where the year's calendar comes from (`chinese-calendar` or the import's source)."""
        return self._year_sources.get(year)

    def missing_years(self, years: Iterable[int]) -> list[int]:
        """The given years that neither the package nor an import covers, sorted."""
        return sorted({y for y in years if y not in self._year_sources})

    def add_workdays(self, start: date, n: int) -> tuple[date, bool]:
        """The n-th working day after `start` (which never counts), and whether it is verified.

        ``n == 0`` is a same-day limit (当日): `start` itself, verified. A result is verified
        when every day counted lies in a known year.
        """
        if n <= 0:
            if n == 0:
                return start, True
            raise ValueError("工作日数不能为负数")
        i = start.toordinal() - _LO
        if not 0 <= i < _SIZE:
            i = self._index(start)  # raises
        k = self._rank[i] + n - 1
        if k >= len(self._work_idx):
            raise ValueError(f"期限超出工作日历支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）")
        unknown = self._unknown_cum
        return self._work_dates[k], unknown[self._work_idx[k] + 1] == unknown[i + 1]

    def workdays_between(self, a: date, b: date) -> int:
        """Working days in (a, b]; negative, -(working days in (b, a]), when b is before a.

        With a = today and b = a deadline this is the number of working days remaining:
        0 on the last day, negative once overdue. `add_workdays(a, n)` gives b with
        `workdays_between(a, b) == n`.
        """
        return self._rank[self._index(b)] - self._rank[self._index(a)]

    def deadline_at(self, start: datetime, n: int) -> tuple[datetime, bool]:
        """End of the n-th working day after `start`'s day in Asia/Shanghai, in UTC."""
        if start.tzinfo is None:
            raise ValueError("naive datetime given to deadline_at")
        day, verified = self.add_workdays(start.astimezone(SHANGHAI).date(), n)
        end = self._end_of_day.get(day)
        if end is None:
            end = self._end_of_day[day] = end_of_day(day)
        return end, verified

    def special_days(self, year: int) -> list[SpecialDay]:
        """The year's named days off and make-up working days, in date order."""
        return sorted((s for d, s in self._special.items() if d.year == year), key=lambda s: s.day)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def end_of_day(day: date) -> datetime:
    """23:59:59.999999 of `day` in Asia/Shanghai, as a UTC datetime."""
    return datetime.combine(day, time.max, SHANGHAI).astimezone(UTC)


def local_today(now: datetime | None = None) -> date:
    """Today's date in Asia/Shanghai."""
    return (now or datetime.now(UTC)).astimezone(SHANGHAI).date()


def status_years(today: date) -> range:
    """The years whose calendar must be known: last year, this year and next year."""
    return range(today.year - 1, today.year + 2)


def missing_warning(cal: WorkCalendar, years: Iterable[int]) -> str | None:
    """The console's warning about missing years, or None when every year is known."""
    missing = cal.missing_years(years)
    if not missing:
        return None
    listed = "、".join(f"{y} 年" for y in missing)
    return (
        f"{listed}的工作日历缺失：这些年份内的期限暂按周一至周五推算，未经核实。"
        "请导入国务院办公厅当年的部分节假日安排通知。"
    )


async def calendar_years(db: AsyncSession) -> list[CalendarYear]:
    """The years imported into the database, newest first."""
    return list(
        (await db.execute(select(CalendarYear).order_by(CalendarYear.year.desc()))).scalars()
    )


async def load_calendar(db: AsyncSession) -> WorkCalendar:
    """The working-day calendar: the package's data with administrators' overrides on top."""
    rows = (await db.execute(select(CalendarDay))).scalars().all()
    years = (await db.execute(select(CalendarYear))).scalars().all()
    days = [SpecialDay(r.day, r.is_workday, r.name, r.source) for r in rows]
    return WorkCalendar(days, {y.year: y.source for y in years})


# --- import of the State Council's annual notice -------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
MAX_NAME = 50
_TYPES = frozenset(t.value for t in DayType)


def decode_csv(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (with or without BOM), else GB18030 as saved by Excel."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise Invalid(
                "文件编码无法识别，请另存为 UTF-8 编码的 CSV 文件", code="calendar_invalid"
            ) from exc


def parse_year_csv(text: str, *, year: int) -> list[SpecialDay]:
    """Validate a `date,type,name` CSV for one year; Invalid names every bad line."""
    errors: list[dict[str, object]] = []

    def fail(line: int, field: str | None, message: str) -> None:
        errors.append({"line": line, "field": field, "message": f"第 {line} 行：{message}"})

    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise Invalid(
            f"年份 {year} 超出支持的范围（{FIRST_YEAR}–{LAST_YEAR} 年）",
            code="calendar_invalid",
            details=[{"line": None, "field": "year", "message": "年份超出范围"}],
        )
    entries: list[SpecialDay] = []
    seen: dict[date, int] = {}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise Invalid(
            f"第 {reader.line_num} 行：不是有效的 CSV（{exc}）",
            code="calendar_invalid",
            details=[
                {
                    "line": reader.line_num,
                    "field": None,
                    "message": f"第 {reader.line_num} 行：不是有效的 CSV",
                }
            ],
        ) from exc
    header_done = False
    for line, raw in enumerate(rows, start=1):
        fields = [f.strip() for f in raw]
        if not any(fields):
            continue
        if not header_done:
            header_done = True
            if fields[0].lower() in ("date", "日期"):
                continue
        if len(fields) not in (2, 3):
            fail(line, None, f"应有 date,type,name 三列，实有 {len(fields)} 列")
            continue
        date_text, type_text = fields[0], fields[1].lower()
        name = fields[2] if len(fields) == 3 else ""
        day = _parse_date(date_text)
        if day is None:
            fail(line, "date", f"日期“{date_text}”无效，应写作 {year}-10-01 这样的格式")
        elif day.year != year:
            fail(line, "date", f"日期 {day} 不在 {year} 年内")
        elif day in seen:
            fail(line, "date", f"日期 {day} 与第 {seen[day]} 行重复")
        else:
            seen[day] = line
        if type_text not in _TYPES:
            fail(
                line, "type", f"类型“{fields[1]}”无效，只能是 holiday（放假）或 workday（调休上班）"
            )
        if len(name) > MAX_NAME:
            fail(line, "name", f"名称过长（最多 {MAX_NAME} 个字）")
        if not errors and day is not None:
            kind = DayType(type_text)
            label = name or DAY_TYPE_LABELS[kind]
            entries.append(SpecialDay(day, kind is DayType.WORKDAY, label, ""))
    if not errors and not entries:
        fail(max(len(rows), 1), None, f"文件中没有 {year} 年的任何日期")
    if errors:
        raise Invalid(
            f"日历文件有 {len(errors)} 处错误，未导入任何数据",
            code="calendar_invalid",
            details=errors,
        )
    return sorted(entries, key=lambda s: s.day)


def _parse_date(text: str) -> date | None:
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


async def import_year(
    *,
    db: AsyncSession,
    year: int,
    csv_text: str,
    source: str,
    actor: str,
    actor_role: str | None = None,
) -> ImportResult:
    """Replace a year's calendar with a validated CSV and mark the year known (all or nothing)."""
    entries = parse_year_csv(csv_text, year=year)
    source = source.strip()[:200] or f"import:{year}"
    actor = actor[:100]
    first, last = date(year, 1, 1), date(year, 12, 31)
    replaced = rows_changed(
        await db.execute(
            delete(CalendarDay).where(CalendarDay.day >= first, CalendarDay.day <= last)
        )
    )
    now = datetime.now(UTC)
    db.add_all(
        CalendarDay(
            day=e.day,
            is_workday=e.is_workday,
            name=e.name,
            source=source,
            imported_at=now,
            imported_by=actor,
        )
        for e in entries
    )
    holidays = sum(1 for e in entries if not e.is_workday)
    workdays = len(entries) - holidays
    record = await db.get(CalendarYear, year)
    if record is None:
        record = CalendarYear(year=year)
        db.add(record)
    record.source, record.holidays, record.workdays = source, holidays, workdays
    record.imported_at, record.imported_by = now, actor
    await db.flush()
    audit.record(
        db,
        actor=actor,
        actor_role=actor_role,
        action=audit.AuditAction.IMPORT_CALENDAR,
        target_type="calendar_year",
        target_id=year,
        detail={"source": source, "holidays": holidays, "workdays": workdays, "replaced": replaced},
    )
    return ImportResult(year, holidays, workdays, replaced, source)


def describe_day(s: SpecialDay) -> str:
    """One line of `calendar show`: 2026-10-01 周四  放假      国庆节."""
    # Padded to the terminal width of "调休上班" (CJK characters take two columns).
    kind = "调休上班" if s.is_workday else "放假    "
    return f"{s.day} 周{WEEKDAY_LABELS[s.day.weekday()]}  {kind}  {s.name}"
