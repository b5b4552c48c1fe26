"""The monthly report (月度通报): the workbook's numbers are the statistics API's for the same
month, a report is written once (a re-run replaces nothing), the periodic job writes it on
the first working day of the month (the working-day calendar), and who may read it."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3
from openpyxl import load_workbook
from sqlalchemy import func, select

from haochaping import scheduler
from haochaping.analytics import periods as P
from haochaping.core import jobs as job_state
from haochaping.core.calendar import load_calendar
from haochaping.core.timeutil import SHANGHAI
from haochaping.ledger.hashing import sm3
from haochaping.reports import jobs as report_jobs
from haochaping.reports import service as report_service
from haochaping.reports import workbook
from haochaping.reports.models import MonthlyReport
from tests.factories import (
    add_rating,
    add_work_order,
    assert_error,
    bearer_headers,
    key_headers,
)
from tests.pages.helpers import sign_in

MONTH = "2025-03"  # months only these tests write reports for (the archive is per region)
AT = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


async def _policy(client, world, values: dict, region: str = "330000") -> None:
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": region, "effective_from": "2024-01-01", "values": values},
    )
    assert r.status_code == 201, r.text


async def _ratings(db, world) -> None:
    """Ratings of March 2025 in both halls (HALL-A in 330102, HALL-B in 330100), one bad
    one with an order rectified late, and one in April (outside the month)."""
    for n, level in enumerate([5, 5, 4, 3, 5, 2]):
        await add_rating(db, world, level=level, at=AT + timedelta(hours=n))
    for n, level in enumerate([5, 4, 4, 1]):
        await add_rating(
            db,
            world,
            level=level,
            at=AT + timedelta(days=1, hours=n),
            org="HALL-B",
            window="W-B1",
            staff="S-B1",
            item="ITEM-B1",
        )
    bad = await add_rating(db, world, level=1, at=AT + timedelta(days=3), staff=None)
    await add_work_order(
        db,
        bad,
        state="callback",
        rectify_due_at=AT + timedelta(days=8),
        rectified_at=AT + timedelta(days=9),
        verified_at=AT + timedelta(days=4),
    )
    await add_rating(db, world, level=1, at=datetime(2025, 4, 2, tzinfo=UTC))
    await db.commit()


def _sheet_rows(wb, title: str) -> list[tuple]:
    ws = wb[title]
    start = workbook.header_row(ws)
    return [tuple(c.value for c in row) for row in ws.iter_rows(min_row=start)]


async def test_the_workbook_has_the_numbers_of_the_stats_api(client, db, world, settings):
    await _policy(client, world, {"min_sample": 2})
    await _ratings(db, world)
    report, created = await report_service.write_monthly(
        db=db,
        region_code="330100",
        month=MONTH,
        upload_dir=Path(settings.upload_dir),
        created_by="test",
    )
    await db.commit()
    assert created
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get(f"/api/v1/reports/{report.id}/download", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert sm3(r.content).hex() == report.sm3 == r.headers["x-content-sm3"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[0] == "概况"
    assert "杭州市" in wb["概况"]["A1"].value and "2025年3月" in wb["概况"]["A1"].value
    overview = {row[0]: row[1] for row in _sheet_rows(wb, "概况")[1:]}

    since, until = P.parse_period(MONTH).bounds()
    stats = await client.get(
        "/api/v1/stats/summary",
        headers=headers,
        params={"region_code": "330100", "since": since.isoformat(), "until": until.isoformat()},
    )
    s = stats.json()
    assert s["total"] == 11  # both halls' ten first ratings and the bad one with an order
    assert overview["评价总数（计入统计）"] == s["total"]
    assert overview["好评数"] == s["good"]
    assert overview["差评数"] == s["bad"]
    assert overview["好评率"] == s["good_rate"]
    assert overview["差评率"] == s["bad_rate"]
    assert overview["平均分"] == s["score"]
    assert overview["差评工单"] == s["opened"] == 1
    assert overview["按时整改"] == s["rectified_on_time"] == 0
    assert wb["概况"].cell(row=workbook.header_row(wb["概况"]) + 4, column=2).number_format == (
        "0.00%"
    )

    for tier, title in (("hall", "排名·大厅"), ("staff", "排名·工作人员"), ("item", "排名·事项")):
        ranked = await client.get(
            "/api/v1/stats/rankings",
            headers=headers,
            params={"tier": tier, "period": MONTH, "region_code": "330100"},
        )
        api_rows = [
            (x["rank"], x["code"], x["total"], x["good_rate"], x["score"])
            for x in ranked.json()["items"]
        ]
        sheet = [(row[0], row[1], row[3], row[4], row[6]) for row in _sheet_rows(wb, title)[1:]]
        assert api_rows, tier
        assert sheet == api_rows, tier

    bad_rows = _sheet_rows(wb, "差评整改")[1:]
    assert len(bad_rows) == 3  # the month's three bad ratings, not April's
    assert [row[-1] for row in bad_rows].count("逾期") == 1  # rectified after its deadline


async def test_a_report_is_written_once(client, db, world, settings):
    await _ratings(db, world)
    upload = Path(settings.upload_dir)
    first, created = await report_service.write_monthly(
        db=db, region_code="330102", month=MONTH, upload_dir=upload, created_by="test"
    )
    await db.commit()
    assert created
    data = (upload / "reports" / first.storage_key).read_bytes()
    # The recorded digest is SM3 of the stored bytes (the reference implementation agrees).
    assert first.sm3 == gm_sm3.sm3_hash(gm_func.bytes_to_list(data))
    # More ratings of the month arrive; a second run (CLI or job) replaces nothing.
    await add_rating(db, world, level=2, at=AT + timedelta(days=5))
    await db.commit()
    again, created_again = await report_service.write_monthly(
        db=db, region_code="330102", month=MONTH, upload_dir=upload, created_by="again"
    )
    await db.commit()
    assert not created_again
    assert (again.id, again.sm3, again.created_by) == (first.id, first.sm3, "test")
    assert (upload / "reports" / first.storage_key).read_bytes() == data
    n = await db.scalar(
        select(func.count())
        .select_from(MonthlyReport)
        .where(MonthlyReport.region_code == "330102", MonthlyReport.month == MONTH)
    )
    assert n == 1
    # An altered archive is refused on download, never served.
    (upload / "reports" / first.storage_key).write_bytes(data + b"x")
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.get(f"/api/v1/reports/{first.id}/download", headers=headers)
    assert_error(r, 409, "report_tampered")
    (upload / "reports" / first.storage_key).write_bytes(data)


async def test_a_month_not_over_is_refused(db, world, settings):
    this_month = P.current_period("month", datetime.now(UTC)).label
    with pytest.raises(report_service.Invalid) as err:
        await report_service.write_monthly(
            db=db,
            region_code="330102",
            month=this_month,
            upload_dir=Path(settings.upload_dir),
            created_by="test",
        )
    assert err.value.code == "month_not_over"
    for bad in ("2025-13", "2025-3", "202503", ""):
        with pytest.raises(report_service.Invalid):
            report_service.parse_month(bad)


def _local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


async def test_the_job_writes_on_the_first_working_day(
    app, client, db, sessionmaker, world, settings
):
    """October 2025 starts with the National Day holidays (1–8 October): the report of
    September is written on the 9th, the first working day, not before; once."""
    await _policy(client, world, {"monthly_report": True}, region="330102")
    await add_rating(db, world, level=5, at=datetime(2025, 9, 15, 3, tzinfo=UTC))
    await job_state.watermark(db, report_jobs.JOB)
    await job_state.advance(db, report_jobs.JOB, 0)  # whatever another test's pass recorded
    await db.commit()
    calendar = await load_calendar(db)
    assert report_jobs.first_workday(calendar, date(2025, 10, 20)) == date(2025, 10, 9)
    upload = Path(settings.upload_dir)

    async def run(day: date, hour: int = 9) -> report_jobs.MonthlyRun:
        return await report_jobs.write_due(
            sessionmaker, calendar=calendar, upload_dir=upload, now=_local(day, hour)
        )

    async def written() -> list[str]:
        rows = await db.execute(
            select(MonthlyReport.region_code).where(MonthlyReport.month == "2025-09")
        )
        return sorted(rows.scalars())

    for day in (date(2025, 10, 1), date(2025, 10, 6), date(2025, 10, 8)):
        assert (await run(day)).month is None, day
    assert await written() == []
    # A report that cannot be stored fails alone and leaves the month to the next pass.
    blocked = Path(settings.upload_dir) / "not-a-folder"
    blocked.write_bytes(b"")
    failed = await report_jobs.write_due(
        sessionmaker, calendar=calendar, upload_dir=blocked, now=_local(date(2025, 10, 9), 8)
    )
    assert (failed.failed, failed.written) == (["330102"], [])
    assert "失败 1 份" in str(failed)
    assert await written() == []
    # The scheduler's pass runs it (here at 09:00 on the 9th).
    said = await scheduler.monthly_reports(app.state, now=_local(date(2025, 10, 9), 9))
    assert said == "月度通报 2025-09：新生成 1 份，已存在 0 份"
    await job_state.advance(db, report_jobs.JOB, 0)
    await db.commit()
    first = await run(date(2025, 10, 9))
    assert first.month == "2025-09"
    # 330102 turns it on (330100 and 330000 do not): only its report, already written.
    assert (first.written, first.existing) == ([], ["330102"])
    assert await written() == ["330102"]
    assert (await run(date(2025, 10, 9), 15)).written == []  # later passes: nothing
    assert (await run(date(2025, 10, 10))).written == []
    assert await written() == ["330102"]


async def test_who_reads_the_reports(client, db, world, settings):
    await _ratings(db, world)
    upload = Path(settings.upload_dir)
    city, _ = await report_service.write_monthly(
        db=db, region_code="330100", month="2025-04", upload_dir=upload, created_by="test"
    )
    county, _ = await report_service.write_monthly(
        db=db, region_code="330102", month="2025-04", upload_dir=upload, created_by="test"
    )
    from haochaping.accounts import service as account_service

    await account_service.create_user(
        db=db,
        username="county_office",
        password="pass-word-123",
        role="office",
        org_code=world.code("HALL-A"),
    )
    await db.commit()
    ids = {city.id, county.id}

    async def listed(username: str, **params) -> set[int]:
        headers = await bearer_headers(client, username)
        r = await client.get("/api/v1/reports", headers=headers, params=params)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert all(set(x) == {"id", "region_code", "month", "created_at", "sm3"} for x in items)
        return {x["id"] for x in items} & ids

    # Offices, administrators and assessors of the province see both reports.
    for who in ("office", "admin", "assessor"):
        assert await listed(world.users[who], month="2025-04") == ids, who
        headers = await bearer_headers(client, world.users[who])
        r = await client.get(f"/api/v1/reports/{city.id}/download", headers=headers)
        assert r.status_code == 200, who
    assert await listed(world.users["office"], region_code="330102") == {county.id}
    # The county's office sees its county's report, not the city's.
    assert await listed("county_office") == {county.id}
    headers = await bearer_headers(client, "county_office")
    r = await client.get(f"/api/v1/reports/{city.id}/download", headers=headers)
    assert_error(r, 403, "out_of_scope")
    r = await client.get("/api/v1/reports", headers=headers, params={"region_code": "330100"})
    assert_error(r, 403, "out_of_scope")
    # Units and API clients: no reports at all.
    unit = await bearer_headers(client, world.users["unit_a"])
    assert_error(await client.get("/api/v1/reports", headers=unit), 403, "role_forbidden")
    r = await client.get(f"/api/v1/reports/{county.id}/download", headers=unit)
    assert_error(r, 403, "role_forbidden")
    r = await client.get("/api/v1/reports", headers=key_headers(world))
    assert r.status_code == 403
    # Bad input: 4xx with a stable code.
    office = await bearer_headers(client, world.users["office"])
    r = await client.get("/api/v1/reports", headers=office, params={"month": "2025-13"})
    assert_error(r, 422, "invalid_month")
    r = await client.get("/api/v1/reports", headers=office, params={"region_code": "999999"})
    assert_error(r, 404, "region_not_found")
    assert_error(await client.get("/api/v1/reports/0/download", headers=office), 422)
    r = await client.get(f"/api/v1/reports/{2**62}/download", headers=office)
    assert_error(r, 404, "report_not_found")
    # The console: the same people, the same scope.
    for who, status in (("office", 200), ("assessor", 200), ("unit_a", 403)):
        client.cookies.clear()
        await sign_in(client, world.users[who])
        r = await client.get("/console/reports")
        assert r.status_code == status, who
        r = await client.get(f"/console/reports/{city.id}")
        assert r.status_code == status, who
        if status == 200:
            assert "杭州市" in r.text and "2025-04" in r.text
            r = await client.get(f"/console/reports/{city.id}/download")
            assert r.content.startswith(b"PK")
    client.cookies.clear()
    await sign_in(client, "county_office")
    assert (await client.get(f"/console/reports/{city.id}")).status_code == 403
    assert (await client.get(f"/console/reports/{county.id}")).status_code == 200
