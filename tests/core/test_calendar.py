"""The working-day calendar: holidays, make-up days, unknown years, imports and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from haochaping.cli import app as cli_app
from haochaping.core import calendar as work_calendar
from haochaping.core.calendar import SpecialDay, WorkCalendar, import_year, load_calendar
from haochaping.core.calendar_models import CalendarDay, CalendarYear
from haochaping.core.errors import Invalid
from haochaping.core.timeutil import SHANGHAI
from haochaping.models import metadata

SAMPLE_2027 = Path(__file__).parent / "data" / "sample-calendar-2027.csv"

# A year neither the package nor anyone's import will know for a long time.
UNKNOWN = 2031
CSV_2031 = """date,type,name
2031-01-01,holiday,元旦
2031-09-28,workday,国庆节调休上班
2031-10-01,holiday,国庆节
2031-10-02,holiday,国庆节
2031-10-03,holiday,国庆节
2031-10-04,holiday,国庆节
2031-10-05,holiday,国庆节
2031-10-06,holiday,国庆节
2031-10-07,holiday,国庆节
2031-10-11,workday,国庆节调休上班
"""

package_only = WorkCalendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- what the package knows -----------------------------------------------------------------


def test_package_years_cover_2004_to_2026():
    years = work_calendar.package_years()
    assert years[0] == 2004
    assert 2026 in years
    assert package_only.known_year(2026)
    assert package_only.year_source(2026) == "chinese-calendar"
    assert not package_only.known_year(UNKNOWN)
    assert package_only.missing_years([2025, 2026, UNKNOWN, 2030]) == [2030, UNKNOWN]


def test_national_day_2026_days_off_and_make_up_days():
    # 国办发明电〔2025〕7号: 10月1日至7日放假，9月20日（周日）、10月10日（周六）上班.
    for n in range(1, 8):
        assert not package_only.is_workday(date(2026, 10, n))
    assert package_only.is_workday(d("2026-09-20"))  # Sunday, 调休上班
    assert package_only.is_workday(d("2026-10-10"))  # Saturday, 调休上班
    assert not package_only.is_workday(d("2026-10-11"))  # an ordinary Sunday
    named = {s.day: s for s in package_only.special_days(2026)}
    assert named[d("2026-10-01")].name == "国庆节"
    assert named[d("2026-10-10")].is_workday
    assert named[d("2026-10-10")].name == "国庆节调休上班"


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Arrives on the eve of the holiday: 10-08 (1), 10-09 (2), Saturday 10-10 (3).
        ("2026-09-30", 3, "2026-10-10"),
        ("2026-09-30", 1, "2026-10-08"),
        ("2026-09-30", 4, "2026-10-12"),
        # Mid-autumn 09-25..27 off, then 28, 29, 30, holiday, 10-08, 10-09.
        ("2026-09-24", 5, "2026-10-09"),
        # The Sunday make-up day 09-20 counts.
        ("2026-09-18", 3, "2026-09-22"),
        # Arriving on a holiday: counting starts on the next working day.
        ("2026-10-03", 1, "2026-10-08"),
        ("2026-10-03", 3, "2026-10-10"),
    ],
)
def test_deadlines_across_national_day_2026(start, n, expected):
    assert package_only.add_workdays(d(start), n) == (d(expected), True)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # 春节 2026: 02-15..02-23 off; Saturdays 02-14 and 02-28 are make-up working days.
        ("2026-02-13", 1, "2026-02-14"),
        ("2026-02-13", 2, "2026-02-24"),
        ("2026-02-13", 3, "2026-02-25"),
        ("2026-02-12", 10, "2026-03-04"),
        ("2026-02-14", 1, "2026-02-24"),
        ("2026-02-27", 1, "2026-02-28"),
        ("2026-02-27", 2, "2026-03-02"),
    ],
)
def test_deadlines_across_spring_festival_2026(start, n, expected):
    assert package_only.add_workdays(d(start), n) == (d(expected), True)


def test_spring_festival_2026_days():
    off = [date(2026, 2, day) for day in range(15, 24)]
    assert [package_only.is_workday(x) for x in off] == [False] * 9
    assert package_only.is_workday(d("2026-02-14"))
    assert package_only.is_workday(d("2026-02-28"))


def test_zero_working_days_is_the_same_day():
    assert package_only.add_workdays(d("2026-10-03"), 0) == (d("2026-10-03"), True)
    with pytest.raises(ValueError):
        package_only.add_workdays(d("2026-10-03"), -1)


# --- years nobody knows ---------------------------------------------------------------------


def test_unknown_year_falls_back_to_monday_to_friday_unverified():
    # 2031-09-30 is a Tuesday; Mon–Fri gives Wed 10-01, Thu 10-02, Fri 10-03.
    assert package_only.add_workdays(d("2031-09-30"), 3) == (d("2031-10-03"), False)
    assert package_only.add_workdays(d("2031-10-03"), 1) == (d("2031-10-06"), False)
    assert package_only.is_workday(d("2031-10-01"))
    assert not package_only.is_workday(d("2031-10-04"))


@pytest.mark.skipif(2027 in work_calendar.package_years(), reason="chinese-calendar knows 2027")
def test_deadline_running_into_an_unknown_year_is_unverified():
    # 12-31 (1) is known; Friday 2027-01-01 counts as a working day by Mon–Fri (2), then
    # Monday 01-04 (3) — in a year without a calendar, so unverified.
    assert package_only.add_workdays(d("2026-12-30"), 3) == (d("2027-01-04"), False)
    assert package_only.add_workdays(d("2026-12-30"), 1) == (d("2026-12-31"), True)
    # Arriving in an unknown year does not matter when every counted day is known:
    # 2004-01-01 is 元旦, Friday 01-02 is the first working day.
    assert not package_only.known_year(2003)
    assert package_only.add_workdays(d("2003-12-31"), 1) == (d("2004-01-02"), True)
    # Across a known New Year: 2026-01-01..03 off, Sunday 01-04 is a make-up working day.
    assert package_only.add_workdays(d("2025-12-31"), 1) == (d("2026-01-04"), True)
    assert "2027 年的工作日历缺失" in work_calendar.missing_warning(package_only, [2026, 2027])
    assert work_calendar.missing_warning(package_only, [2025, 2026]) is None


# --- end of day in Asia/Shanghai, remaining working days ---------------------------------


def test_deadline_is_end_of_day_in_shanghai_stored_in_utc():
    arrived = datetime(2026, 9, 30, 10, 15, tzinfo=SHANGHAI)
    due, verified = package_only.deadline_at(arrived, 3)
    assert verified
    assert due == datetime(2026, 10, 10, 15, 59, 59, 999999, tzinfo=UTC)
    assert due.tzinfo is UTC
    assert due.astimezone(SHANGHAI).isoformat() == "2026-10-10T23:59:59.999999+08:00"


def test_deadline_counts_from_the_local_day_of_arrival():
    # 2026-09-29 17:30 UTC is already 09-30 01:30 in Shanghai.
    due, _ = package_only.deadline_at(datetime(2026, 9, 29, 17, 30, tzinfo=UTC), 3)
    assert due == datetime(2026, 10, 10, 15, 59, 59, 999999, tzinfo=UTC)
    due, _ = package_only.deadline_at(datetime(2026, 9, 29, 15, 30, tzinfo=UTC), 1)
    assert due.astimezone(SHANGHAI).date() == d("2026-09-30")
    with pytest.raises(ValueError):
        package_only.deadline_at(datetime(2026, 9, 29, 15, 30), 1)  # noqa: DTZ001


def test_remaining_working_days_become_negative_when_overdue():
    deadline = d("2026-10-10")
    assert package_only.workdays_between(d("2026-09-30"), deadline) == 3
    assert package_only.workdays_between(d("2026-10-03"), deadline) == 3
    assert package_only.workdays_between(d("2026-10-09"), deadline) == 1
    assert package_only.workdays_between(deadline, deadline) == 0
    assert package_only.workdays_between(d("2026-10-12"), deadline) == -1
    assert package_only.workdays_between(d("2026-10-16"), deadline) == -5


@settings(max_examples=400, deadline=None)
@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2032, 12, 1)),
    n=st.integers(min_value=0, max_value=40),
)
def test_add_workdays_agrees_with_counting_day_by_day(start, n):
    def reference_is_workday(day: date) -> bool:
        if day.year in work_calendar.package_years():
            return chinese_calendar.is_workday(day)
        return day.weekday() < 5

    day, counted, verified = start, 0, True
    while counted < n:
        day += timedelta(days=1)
        verified &= package_only.known_year(day.year)
        counted += reference_is_workday(day)
    assert package_only.add_workdays(start, n) == (day, verified)
    assert package_only.workdays_between(start, day) == n
    assert package_only.workdays_between(day, start) == -n


# --- administrators' imports win over the package ----------------------------------------


async def test_import_makes_an_unknown_year_known_and_wins(db):
    before = await load_calendar(db)
    assert before.add_workdays(d("2031-09-30"), 3) == (d("2031-10-03"), False)

    result = await import_year(
        db=db, year=UNKNOWN, csv_text=CSV_2031, source="国办发明电〔2030〕9号", actor="admin"
    )
    assert (result.year, result.holidays, result.workdays) == (UNKNOWN, 8, 2)

    cal = await load_calendar(db)
    assert cal.known_year(UNKNOWN)
    assert cal.year_source(UNKNOWN) == "国办发明电〔2030〕9号"
    # 10-01..07 off now: Wed 10-08 (1), Thu 10-09 (2), Fri 10-10 (3).
    assert cal.add_workdays(d("2031-09-30"), 3) == (d("2031-10-10"), True)
    # Saturday 10-11 is an imported make-up working day.
    assert cal.add_workdays(d("2031-10-10"), 1) == (d("2031-10-11"), True)
    # Sunday 09-28 too.
    assert cal.add_workdays(d("2031-09-26"), 1) == (d("2031-09-28"), True)
    assert cal.missing_years([2026, UNKNOWN]) == []

    stored = await db.execute(select(CalendarDay).where(CalendarDay.day == d("2031-10-01")))
    row = stored.scalar_one()
    assert (row.is_workday, row.name, row.imported_by) == (False, "国庆节", "admin")
    year = await db.get(CalendarYear, UNKNOWN)
    assert (year.source, year.holidays, year.workdays) == ("国办发明电〔2030〕9号", 8, 2)


async def test_sample_2027_import_verifies_the_new_year_deadline(db):
    text = work_calendar.decode_csv(SAMPLE_2027.read_bytes())
    result = await import_year(
        db=db, year=2027, csv_text=text, source=SAMPLE_2027.name, actor="admin"
    )
    assert (result.holidays, result.workdays) == (29, 6)
    cal = await load_calendar(db)
    # 12-31 (1); 2027-01-01..03 off; Mon 01-04 (2), Tue 01-05 (3).
    assert cal.add_workdays(d("2026-12-30"), 3) == (d("2027-01-05"), True)
    # 2027 Spring Festival in the sample: 02-05..13 off, Sunday 01-31 and Saturday 02-20 on.
    assert cal.add_workdays(d("2027-02-04"), 1) == (d("2027-02-15"), True)
    assert cal.add_workdays(d("2027-01-29"), 1) == (d("2027-01-31"), True)


async def test_a_full_import_replaces_the_package_for_that_year(db):
    # A 2026 notice re-imported with only 元旦: the package's National Day no longer applies.
    await import_year(
        db=db, year=2026, csv_text="2026-01-01,holiday,元旦\n", source="x", actor="admin"
    )
    cal = await load_calendar(db)
    assert cal.is_workday(d("2026-10-01"))
    assert not cal.is_workday(d("2026-10-10"))  # no longer a make-up Saturday
    assert cal.add_workdays(d("2026-09-30"), 3) == (d("2026-10-05"), True)
    assert [s.day for s in cal.special_days(2026)] == [d("2026-01-01")]
    assert cal.year_source(2026) == "x"


async def test_a_single_override_day_wins_over_the_package(db):
    # An extra day off announced locally, without a full-year import.
    db.add(
        CalendarDay(
            day=d("2026-10-08"),
            is_workday=False,
            name="临时休息",
            source="console",
            imported_by="admin",
        )
    )
    await db.flush()
    cal = await load_calendar(db)
    assert not cal.is_workday(d("2026-10-08"))
    assert cal.year_source(2026) == "chinese-calendar"
    # 10-09 (1), Saturday 10-10 (2), Monday 10-12 (3).
    assert cal.add_workdays(d("2026-09-30"), 3) == (d("2026-10-12"), True)


async def test_reimport_replaces_the_previous_days_of_that_year(db):
    await import_year(db=db, year=UNKNOWN, csv_text=CSV_2031, source="first", actor="admin")
    await load_calendar(db)  # the old rows are in the session's identity map
    result = await import_year(
        db=db, year=UNKNOWN, csv_text="2031-05-01,holiday,劳动节\n", source="second", actor="admin"
    )
    assert result.replaced == 10
    cal = await load_calendar(db)
    assert cal.is_workday(d("2031-10-01"))
    assert not cal.is_workday(d("2031-05-01"))
    assert cal.year_source(UNKNOWN) == "second"


# --- bad files are refused whole ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "date,type,name\n2031-10-01,holiday,国庆节\n2030-12-31,holiday,元旦\n",
            [(3, "date", "日期 2030-12-31 不在 2031 年内")],
        ),
        ("2031-10-01,holiday,国庆节\n2031-10-11,上班,调休\n", [(2, "type", "类型“上班”无效")]),
        (
            "date,type,name\n2031-10-01,holiday,国庆节\n\n2031-10-01,holiday,国庆节\n",
            [(4, "date", "日期 2031-10-01 与第 2 行重复")],
        ),
        ("date,type,name\n2031-02-30,holiday,春节\n", [(2, "date", "日期“2031-02-30”无效")]),
        (
            "date,type,name\nhello world\n2031-10-01\n",
            [(2, None, "实有 1 列"), (3, None, "实有 1 列")],
        ),
        (
            "date,type,name\n2031-10-01,holiday,国庆节\n十月一日,rest,国庆节,多余\n",
            [(3, None, "实有 4 列")],
        ),
        ("date,type,name\n", [(1, None, "没有 2031 年的任何日期")]),
        ("\x00\x01garbage\x02", [(1, None, "实有 1 列")]),
    ],
)
async def test_bad_csv_is_refused_with_line_numbers_and_nothing_stored(db, text, expected):
    with pytest.raises(Invalid) as caught:
        await import_year(db=db, year=UNKNOWN, csv_text=text, source="bad", actor="admin")
    err = caught.value
    assert err.code == "calendar_invalid"
    assert "未导入任何数据" in err.message
    got = [(x["line"], x["field"]) for x in err.details]
    assert got == [(line, field) for line, field, _ in expected]
    for detail, (line, _, words) in zip(err.details, expected, strict=True):
        assert detail["message"].startswith(f"第 {line} 行：")
        assert words in detail["message"]
    assert await db.scalar(select(func.count()).select_from(CalendarDay)) == 0
    assert await db.get(CalendarYear, UNKNOWN) is None


async def test_every_error_of_a_file_is_reported_at_once(db):
    text = "date,type,name\n2030-01-01,holiday,元旦\n2031-10-01,off,国庆节\n2031-13-01,x,y\n"
    with pytest.raises(Invalid) as caught:
        await import_year(db=db, year=UNKNOWN, csv_text=text, source="bad", actor="admin")
    assert [(x["line"], x["field"]) for x in caught.value.details] == [
        (2, "date"),
        (3, "type"),
        (4, "date"),
        (4, "type"),
    ]


async def test_a_bad_reimport_leaves_the_previous_calendar_alone(db):
    await import_year(db=db, year=UNKNOWN, csv_text=CSV_2031, source="good", actor="admin")
    with pytest.raises(Invalid):
        await import_year(
            db=db,
            year=UNKNOWN,
            csv_text=CSV_2031 + "2031-10-01,holiday,重复\n",
            source="bad",
            actor="admin",
        )
    cal = await load_calendar(db)
    assert cal.year_source(UNKNOWN) == "good"
    assert not cal.is_workday(d("2031-10-01"))


def test_csv_from_excel_in_gb18030_with_slashes_is_read():
    text = work_calendar.decode_csv("日期,类型,名称\r\n2031/1/1,holiday,元旦\r\n".encode("gb18030"))
    assert work_calendar.parse_year_csv(text, year=UNKNOWN) == [
        SpecialDay(d("2031-01-01"), False, "元旦", "")
    ]


def test_year_outside_the_supported_span_is_refused():
    with pytest.raises(Invalid) as caught:
        work_calendar.parse_year_csv("1999-01-01,holiday,元旦\n", year=1999)
    assert "超出支持的范围" in caught.value.message


# --- the migration carries exactly these tables ------------------------------------------


async def test_migration_matches_the_calendar_models(engine):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)

    async with engine.connect() as conn:
        diffs = await conn.run_sync(diff)
    assert [x for x in diffs if "calendar_" in repr(x)] == []


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs `haochaping ...` against a fresh, migrated SQLite file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli_app, list(args))

    assert run("migrate").exit_code == 0
    return run


def test_cli_import_show_and_status(cli):
    years = work_calendar.status_years(work_calendar.local_today())
    status = cli("calendar", "status")
    assert status.exit_code == 0, status.output
    for y in years:
        state = "已知" if y in work_calendar.package_years() else "缺失"
        assert f"{y} 年  {state}" in status.output

    result = cli(
        "calendar",
        "import",
        str(SAMPLE_2027),
        "--year",
        "2027",
        "--source",
        "国办发明电〔2026〕示例号",
    )
    assert result.exit_code == 0, result.output
    assert (
        "已导入 2027 年工作日历：放假 29 天，调休上班 6 天（来源：国办发明电〔2026〕示例号）"
        in (result.output)
    )

    shown = cli("calendar", "show", "--year", "2027")
    assert shown.exit_code == 0, shown.output
    assert "2027 年工作日历（来源：国办发明电〔2026〕示例号）" in shown.output
    assert "2027-10-01 周五  放假" in shown.output
    assert "2027-10-09 周六  调休上班  国庆节调休上班" in shown.output

    status = cli("calendar", "status")
    if 2027 in years:
        assert "2027 年  已知  国办发明电〔2026〕示例号" in status.output


def test_cli_show_of_a_package_year_and_of_a_missing_year(cli):
    shown = cli("calendar", "show", "--year", "2026")
    assert shown.exit_code == 0, shown.output
    assert "2026 年工作日历（来源：chinese-calendar）" in shown.output
    assert "2026-10-10 周六  调休上班  国庆节调休上班" in shown.output
    assert "2026-02-16 周一  放假" in shown.output

    missing = cli("calendar", "show", "--year", str(UNKNOWN))
    assert missing.exit_code == 0
    assert f"{UNKNOWN} 年的工作日历缺失" in missing.output


def test_cli_refuses_a_bad_file_and_names_the_lines(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,type,name\n2027-10-01,holiday,国庆节\n2026-10-01,holiday,国庆节\n"
        "2027-10-02,rest,国庆节\n",
        encoding="utf-8",
    )
    result = cli("calendar", "import", str(bad), "--year", "2027")
    assert result.exit_code == 2
    assert "日历文件有 2 处错误，未导入任何数据" in result.output
    assert "第 3 行：日期 2026-10-01 不在 2027 年内" in result.output
    assert "第 4 行：类型“rest”无效" in result.output
    shown = cli("calendar", "show", "--year", "2027")
    assert "2027-10-01" not in shown.output

    assert cli("calendar", "import", str(tmp_path / "nope.csv"), "--year", "2027").exit_code == 2
