"""The periodic writing of the monthly reports: on the first working day of each month (the
working-day calendar), the report of the month before for every region whose policy turns
`monthly_report` on and that holds an organisation; each once (`service.write_monthly`).

A watermark in `job_state` (the month done, as 202611) makes every other pass one query."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.analytics import periods as P
from haochaping.core import jobs
from haochaping.core.calendar import WorkCalendar, local_today
from haochaping.core.errors import NotFound
from haochaping.orgs.models import Org, Region
from haochaping.policies import service as policy_service
from haochaping.reports import service

JOB = "reports.monthly"
log = logging.getLogger("haochaping.jobs")


@dataclass
class MonthlyRun:
    """What a pass did: the month reported (None: not due), the reports written, the ones
    already there."""

    month: str | None = None
    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.month is None:
            return "月度通报：未到生成时间"
        text = (
            f"月度通报 {self.month}：新生成 {len(self.written)} 份，已存在 {len(self.existing)} 份"
        )
        if self.failed:
            text += f"，失败 {len(self.failed)} 份（{'、'.join(self.failed)}，下一轮重试）"
        return text


def first_workday(calendar: WorkCalendar, day: date) -> date:
    """The first working day of the month of `day`."""
    current = day.replace(day=1)
    while not calendar.is_workday(current):
        current += timedelta(days=1)
    return current


def _mark(period: P.Period) -> int:
    year, month = period.label.split("-")
    return int(year) * 100 + int(month)


async def enabled_regions(db: AsyncSession, on: date) -> list[str]:
    """The regions whose policy in force on `on` turns the monthly report on and that hold
    an organisation (themselves or below), by code."""
    regions = (await db.execute(select(Region.code, Region.path))).all()
    located = set((await db.execute(select(Org.region_code).distinct())).scalars())
    paths = dict(regions)
    holding = {
        code for code, path in regions if any(paths.get(r, "").startswith(path) for r in located)
    }
    out = []
    for code in sorted(holding):
        try:
            values, _ = await policy_service.effective(db=db, region_code=code, on=on)
        except NotFound:
            continue
        if values.monthly_report:
            out.append(code)
    return out


async def write_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    calendar: WorkCalendar,
    upload_dir: Path,
    now: datetime,
) -> MonthlyRun:
    """From the month's first working day on, write the reports of the month before that
    are not written yet, one transaction per report; then, when none failed, record the
    month as done."""
    today = local_today(now)
    if today < first_workday(calendar, today):
        return MonthlyRun()
    previous = P.month_of(today).previous()
    run = MonthlyRun(month=previous.label)
    async with sessionmaker() as db:
        done = await jobs.watermark(db, JOB)
        await db.commit()
        if done >= _mark(previous):
            return MonthlyRun()
        codes = await enabled_regions(db, P.local_day(previous.bounds()[1] - timedelta(days=1)))
    for code in codes:
        try:
            async with sessionmaker() as db:
                report, created = await service.write_monthly(
                    db=db,
                    region_code=code,
                    month=previous.label,
                    upload_dir=upload_dir,
                    created_by="系统（定时任务）",
                    now=now,
                )
                await db.commit()
        except Exception:  # noqa: BLE001 - one region's failure does not stop the others
            log.exception("monthly report %s %s failed", code, previous.label)
            run.failed.append(code)
            continue
        (run.written if created else run.existing).append(code)
        if created:
            log.info("monthly report %s %s written (sm3 %s)", code, previous.label, report.sm3)
    if run.failed:  # the month is not done: the next pass writes what is missing
        return run
    async with sessionmaker() as db:
        await jobs.watermark(db, JOB)
        await jobs.advance(db, JOB, _mark(previous))
        await db.commit()
    return run
