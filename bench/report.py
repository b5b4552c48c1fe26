"""The monthly report (月度通报) of a region: how long its content and workbook take.

    .venv/bin/python bench/report.py [--url postgresql+asyncpg://postgres@127.0.0.1:5432/DB]
                                     [--db NAME] [--region CODE] [--month 2026-11] [--rounds 3]

Runs against an existing database (the demo province: `haochaping demo` into it first; or
`--db hcp_bench10m`, a province of `bench/dashboard.py` on the local PostgreSQL, which it
brings to the newest migration first); by default its top region and the last complete month.
Times every section builder of `reports/service.py SECTIONS` (the figures through
`analytics.metrics`, as the job does), the workbook's rendering, and the whole `write_monthly`
inside a transaction that is rolled back (nothing is archived). Prints the month's ratings,
per-section milliseconds (best of `--rounds`), the total and the workbook's size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from haochaping.analytics import jobs as analytics_jobs
from haochaping.analytics import periods as P
from haochaping.analytics import snapshots
from haochaping.config import Settings
from haochaping.db import migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Region
from haochaping.reports import service, workbook

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hcp_report_demo"


async def main(
    url: str, region_code: str | None, month: str | None, rounds: int, cold: bool
) -> None:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    maker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    month = month or P.current_period("month", now).previous().label
    period = service.parse_month(month)
    since, until = period.bounds()
    async with maker() as db:
        if region_code is None:
            region_code = (
                await db.execute(select(Region.code).where(Region.parent_code.is_(None)))
            ).scalar_one()
        region = await db.get(Region, region_code)
        assert region is not None, region_code
    # The region's rankings of the last closed months, kept as the scheduler's passes keep
    # them before the report is due (`--cold`: none kept, the report computes them).
    async with maker() as db:
        if cold:
            print(f"ranking snapshots: {await snapshots.clear(db)} forgotten (--cold)")
            await db.commit()
        else:
            warmed = await analytics_jobs.warm(
                maker, now=now, budget=3600, org_codes=[], region_codes=[region_code]
            )
            print(
                f"ranking snapshots (the scheduler's work, ahead of the report): {warmed.kept} "
                f"kept, {warmed.held} held, {warmed.seconds:.1f} s"
            )
    async with maker() as db:
        values = await service._values(db, region.code, service._last_day(period))
        ratings = await db.scalar(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.received_at >= since, Evaluation.received_at < until)
        )
        total_ratings = await db.scalar(select(func.count()).select_from(Evaluation))
        print(
            f"{engine.dialect.name}: region {region.code} {region.name}, month {month}: "
            f"{ratings:,} ratings in the month, {total_ratings:,} in the database"
        )
        best: dict[str, float] = {}
        rows: dict[str, int] = {}
        content = None
        cpu: dict[str, float] = {}
        for _ in range(rounds):
            inp = service.ReportInput(db, region, period, values, now)
            sections = []
            for name, build in service.SECTIONS:
                t0, c0 = time.perf_counter(), time.process_time()
                built = await build(inp)
                ms = (time.perf_counter() - t0) * 1000
                if ms < best.get(name, ms + 1):
                    cpu[name] = (time.process_time() - c0) * 1000
                best[name] = min(best.get(name, ms), ms)
                rows[name] = sum(len(s.rows) for s in built)
                sections.extend(built)
            content = await service.build_content(db=db, region_code=region.code, month=month)
            t0, c0 = time.perf_counter(), time.process_time()
            data = workbook.render(content, service.sections_of(content))
            ms = (time.perf_counter() - t0) * 1000
            if ms < best.get("workbook", ms + 1):
                cpu["workbook"] = (time.process_time() - c0) * 1000
            best["workbook"] = min(best.get("workbook", ms), ms)
        # Wall time on a shared machine follows its load; this process's CPU time does not
        # (PostgreSQL's own work is in the wall time only).
        print("  part            wall ms   our CPU ms  rows")
        for name, ms in best.items():
            print(f"  {name:<12} {ms:9.1f}  {cpu.get(name, 0):9.1f}   {rows.get(name, '')}")
        print(
            f"  sections + workbook: {sum(best.values()) / 1000:.2f} s wall, "
            f"{sum(cpu.values()) / 1000:.2f} s CPU in this process, {len(data):,} bytes"
        )
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            report, created = await service.write_monthly(
                db=db,
                region_code=region.code,
                month=month,
                upload_dir=Path(folder),
                created_by="bench",
                now=now,
            )
            ms = (time.perf_counter() - t0) * 1000
            print(f"  write_monthly (archived: {created}, rolled back): {ms / 1000:.2f} s")
        await db.rollback()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--db", help="a database on the local PostgreSQL (instead of --url)")
    parser.add_argument("--region")
    parser.add_argument("--month")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="no kept rankings")
    args = parser.parse_args()
    url = args.url
    if args.db:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{args.db}"
        migrate.upgrade(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    print(f"load average {os.getloadavg()[0]:.1f}")
    asyncio.run(main(url, args.region, args.month, args.rounds, args.cold))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
