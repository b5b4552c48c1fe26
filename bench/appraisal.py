"""Appraisal scores (考核得分) over the demo province.

    .venv/bin/python bench/appraisal.py [--db FILE | --url URL] [--cases 200000] [--runs 3]

Without `--db` or `--url`, loads the demo province (`haochaping demo`) into a fresh SQLite
file first. Brings the schema up to date, publishes a scheme for the province's top region
and this year as the demo's `assessor` (four indicators: 好评率, 差评按期整改率, 回访满意率,
主动评价率, the Wikipedia leader example's judgements), then times `appraisal.service.scores`
for halls, departments and windows over the last complete month, its quarter and the year,
`--runs` times each after a warm-up; prints the median wall time, the process's CPU time and
the number of units. The scores ask `analytics.metrics` per unit (summary and 主动评价率), so
the cost grows with the number of units."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from haochaping.accounts.models import User  # noqa: E402
from haochaping.analytics import periods as P  # noqa: E402
from haochaping.appraisal import service  # noqa: E402
from haochaping.appraisal.schemas import SchemeCreate  # noqa: E402
from haochaping.config import Settings  # noqa: E402
from haochaping.core.auth import Principal  # noqa: E402
from haochaping.core.roles import Role  # noqa: E402
from haochaping.core.timeutil import utcnow  # noqa: E402
from haochaping.db import migrate  # noqa: E402
from haochaping.db.session import make_engine, make_sessionmaker  # noqa: E402
from haochaping.demo import loader  # noqa: E402
from haochaping.orgs.models import Org  # noqa: E402

LEADER = [[1, 4, 3, 7], ["1/4", 1, "1/3", 3], ["1/3", 3, 1, 5], ["1/7", "1/3", "1/5", 1]]
INDICATORS = [
    {"code": "I1", "metric": "good_rate", "weight_label": "好评率"},
    {"code": "I2", "metric": "rectified_on_time_rate", "weight_label": "差评按期整改率"},
    {"code": "I3", "metric": "callback_satisfied_rate", "weight_label": "回访满意率"},
    {"code": "I4", "metric": "active_rating_rate", "weight_label": "主动评价率"},
]


def settings_for(path: str) -> Settings:
    url = path if "://" in path else f"sqlite+aiosqlite:///{path}"
    return Settings(
        env="development",
        database_url=url,
        job_interval_seconds=0,
        integrity_intake_checks=False,
        _env_file=None,
    )


async def measure(settings: Settings, runs: int, tiers: list[str]) -> None:
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    async with sessions() as db:
        user = (await db.execute(select(User).where(User.username == "assessor"))).scalar_one()
        org = await db.get(Org, user.org_id)
        assert org is not None
        actor = Principal(
            kind="user",
            id=user.id,
            name=user.username,
            org_id=org.id,
            org_path=org.path,
            role=Role.ASSESSOR,
        )
        region = await service.own_region(db, actor)
        assert region is not None
        month = P.current_period("month", utcnow()).previous()
        scheme = await service.create_scheme(
            db=db,
            actor=actor,
            data=SchemeCreate.model_validate(
                {
                    "region_code": region.code,
                    "year": month.start.year,
                    "indicators": INDICATORS,
                    "judgements": LEADER,
                }
            ),
        )
        await db.commit()
        print(
            f"scheme {region.code} {scheme.year} v{scheme.version}, CR {scheme.cr:.4f}", flush=True
        )
        quarter = f"{month.start.year}-Q{(month.start.month - 1) // 3 + 1}"
        print("| tier | period | units scored / unscored | median wall | CPU |")
        print("|---|---|---|---|---|")
        for tier in tiers:
            for period in (month.label, quarter, str(month.start.year)):
                walls, cpus = [], []
                for run in range(runs + 1):
                    w0, c0 = time.perf_counter(), time.process_time()
                    result = await service.scores(
                        db=db, actor=actor, region_code=region.code, period=period, tier=tier
                    )
                    if run:  # the first is the warm-up
                        walls.append(time.perf_counter() - w0)
                        cpus.append(time.process_time() - c0)
                print(
                    f"| {tier} | {period} | {len(result.items)} / {len(result.unscored)} "
                    f"| {statistics.median(walls) * 1000:,.0f} ms "
                    f"| {statistics.median(cpus) * 1000:,.0f} ms |",
                    flush=True,
                )
        await db.rollback()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="an SQLite file with the demo province loaded")
    parser.add_argument("--url", help="a database URL with the demo province loaded")
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiers", default="hall,department,window")
    args = parser.parse_args()
    folder = None
    path = args.url or args.db
    if path is None:
        folder = tempfile.mkdtemp(prefix="hcp-bench-appraisal-")
        path = os.path.join(folder, "demo.db")
        migrate.upgrade(settings_for(path))
        print(asyncio.run(loader.load(settings_for(path), cases=args.cases)).splitlines()[0])
    settings = settings_for(path)
    migrate.upgrade(settings)
    try:
        asyncio.run(measure(settings, args.runs, args.tiers.split(",")))
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
