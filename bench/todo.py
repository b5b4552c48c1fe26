"""The console navigation's to-do counts (console/todo.py) over N open work orders on
PostgreSQL: the time of the one round trip a page pays, for the province office (the widest
scope), a county office and a unit.

    .venv/bin/python bench/todo.py [--orders 100000] [--repeat 30]

The data is bench/sweep.py's (a Zhejiang org tree and N open work orders in a mix of states
and deadlines, loaded by COPY); the database is dropped at the end. Each scope reports the
median and the 95th percentile of `--repeat` timed calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))

import sweep  # noqa: E402

from haochaping.config import Settings  # noqa: E402
from haochaping.console.todo import todo_counts  # noqa: E402
from haochaping.core.auth import Principal  # noqa: E402
from haochaping.core.roles import Role  # noqa: E402
from haochaping.db import migrate as db_migrate  # noqa: E402
from haochaping.db.session import make_engine, make_sessionmaker  # noqa: E402
from haochaping.orgs.models import Org  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    name = f"bench_todo_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(f"{sweep.PG}/test")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    settings = Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", _env_file=None
    )
    engine = None
    try:
        await asyncio.to_thread(db_migrate.upgrade, settings)
        t0 = time.perf_counter()
        await sweep.load(f"{sweep.PG}/{name}", args.orders)
        print(f"{args.orders:,} open work orders loaded in {time.perf_counter() - t0:.1f} s")
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        async with sessions() as db:
            orgs = {
                kind: (await db.execute(select(Org).where(Org.kind == kind).limit(1))).scalar_one()
                for kind in ("department", "hall")
            }
            province = (
                await db.execute(select(Org).where(Org.parent_id.is_(None)).limit(1))
            ).scalar_one()
            county = (
                await db.execute(select(Org).where(Org.id == orgs["hall"].parent_id))
            ).scalar_one()
        scopes = [
            ("province office", province, Role.OFFICE),
            ("county office", county, Role.OFFICE),
            ("unit (department)", orgs["department"], Role.UNIT),
        ]
        for label, org, role in scopes:
            who = Principal(
                kind="user", id=1, name="bench", org_id=org.id, org_path=org.path, role=role
            )
            times = []
            async with sessions() as db:
                found = await todo_counts(db, who)  # warm-up
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    await todo_counts(db, who)
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            shown = {path: badge.total for path, badge in found.items()}
            print(
                f"{label:18} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  "
                f"counts {shown}"
            )
    finally:
        if engine is not None:
            await engine.dispose()
        admin = await asyncpg.connect(f"{sweep.PG}/test")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    raise SystemExit(asyncio.run(main(parser.parse_args())))
