"""The monthly report's emerging complaint topics (issue 12): the matter whose complaints grew
over the month's last weeks is in the report, first, with a masked example."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook

from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.reports import service as report_service
from haochaping.reports import workbook
from haochaping.topics import jobs as topic_jobs
from tests.factories import ADMIN, TOPIC_PHONE, add_weeks_of_comments

MONTH = "2025-07"  # a month only this test writes a report for (330102's archive)
END = datetime(2025, 7, 31, 12, 0, tzinfo=UTC)  # the data's last day, inside the month


async def test_the_report_names_the_emerging_matter_first(db, world, sessionmaker, settings):
    code = f"ITEM-R{uuid.uuid4().hex[:6]}"
    await org_service.create_item(
        db=db,
        actor=ADMIN,
        data=org_schemas.ItemCreate(code=code, name="出入境证件办理", org_code="HALL-A"),
    )
    await add_weeks_of_comments(db, world, code, [4] * 12, planted=[0] * 9 + [3, 6, 10], now=END)
    await db.commit()
    # The job folds ratings in id order up to those received within its grace of `now`:
    # other tests' ratings of today come before these, so `now` is past all of them.
    await topic_jobs.refresh(
        sessionmaker, lexicons=topic_jobs.Lexicons(), now=datetime.now(UTC) + timedelta(days=1)
    )
    report, _created = await report_service.write_monthly(
        db=db,
        region_code="330102",
        month=MONTH,
        upload_dir=Path(settings.upload_dir),
        created_by="test",
    )
    await db.commit()
    section = next(s for s in report.content["sections"] if s["key"] == "topics")
    assert section["title"] == "新出现的投诉热点"
    first = section["rows"][0]
    assert (first[0], first[2]) == (code, "预约号")
    assert first[3] > 0 and first[3] > first[4]
    # The workbook carries the same sheet; its examples are masked.
    data = await report_service.read_workbook(report=report, upload_dir=Path(settings.upload_dir))
    wb = load_workbook(io.BytesIO(data))
    ws = wb["新出现的投诉热点"]
    rows = [tuple(c.value for c in r) for r in ws.iter_rows(min_row=workbook.header_row(ws))]
    assert rows[1][0] == code and rows[1][2] == "预约号"
    assert TOPIC_PHONE not in repr(rows)
