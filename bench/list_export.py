"""The console's streamed Excel download of the rating list (`/console/evaluations/export`):
time, rows per second and the peak of Python allocations for N ratings, through the real app
(signed in as the office, in-process over ASGI) on a fresh SQLite file or PostgreSQL database.

    .venv/bin/python bench/list_export.py [--rows 100000] [--pg] [--no-trace] [--profile]

`--no-trace` times without tracemalloc (which slows allocation-heavy code several times);
`--profile` prints the 25 most expensive functions (cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from openpyxl import load_workbook
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).parent))

import harness  # noqa: E402

from haochaping.accounts import service as account_service  # noqa: E402
from haochaping.app import create_app, startup  # noqa: E402
from haochaping.db.session import make_engine, make_sessionmaker  # noqa: E402
from haochaping.evaluations.models import Evaluation  # noqa: E402

PASSWORD = "bench-pass-123"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def load(url: str, world: harness.World, n: int) -> None:
    """N ratings over 30 days, one in twenty bad, every third with a comment, rater named."""
    engine = make_engine(harness.settings_for(url))
    start = datetime.now(UTC) - timedelta(days=31)
    try:
        async with make_sessionmaker(engine)() as db:
            await account_service.create_user(
                db=db, username="office", password=PASSWORD, role="office", org_code="OFFICE"
            )
            await db.commit()
        async with engine.begin() as conn:
            for k in range(0, n, 5000):
                rows = []
                for i in range(k, min(n, k + 5000)):
                    level = harness.LEVEL_CYCLE[i % 20]
                    at = start + timedelta(seconds=i * 30 * 86400 // max(n, 1))
                    rows.append(
                        {
                            "channel": "pad",
                            "level": level,
                            "reasons": [harness.REASON_BY_LEVEL[level]],
                            "comment": harness.COMMENT_BY_LEVEL[level] if i % 3 == 0 else None,
                            "tagset_version": "national-2020",
                            "org_id": world.org_id,
                            "window_id": world.window_id,
                            "item_id": world.item_id,
                            "staff_id": world.staff_id,
                            "region_code": world.region_code,
                            "rater_type": "person",
                            "rater_name": "张三丰",
                            "anonymous": False,
                            "is_public": True,
                            "is_default": False,
                            "eval_count": 1,
                            "evaluated_at": at,
                            "received_at": at,
                        }
                    )
                await conn.execute(insert(Evaluation), rows)
    finally:
        await engine.dispose()


async def export(url: str, *, trace: bool, profile: bool) -> tuple[float, int, int, int]:
    """Seconds, bytes of the file, rows in it, and the peak of traced allocations."""
    settings = harness.settings_for(url)
    app = create_app(settings)
    await startup(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        form = await client.get("/login")
        token = CSRF.search(form.text)
        assert token
        r = await client.post(
            "/login",
            data={"csrf_token": token.group(1), "username": "office", "password": PASSWORD},
        )
        assert r.status_code == 303, r.text[-500:]
        prof = cProfile.Profile() if profile else None
        if trace:
            tracemalloc.start()
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        r = await client.get("/console/evaluations/export")
        seconds = time.perf_counter() - t0
        if prof:
            prof.disable()
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    await app.state.engine.dispose()
    assert r.status_code == 200, r.text[-500:]
    ws = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    rows = sum(1 for _ in ws.iter_rows(values_only=True)) - 1
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return seconds, len(r.content), rows, peak


async def main(args: argparse.Namespace) -> int:
    if args.pg:
        name, url = await harness.create_pg_database("bench_export")
    else:
        folder, url = harness.sqlite_url()
    try:
        await asyncio.to_thread(harness.migrate, url)
        world = await harness.seed(url, 1)
        await load(url, world, args.rows)
        seconds, size, rows, peak = await export(url, trace=not args.no_trace, profile=args.profile)
        db = "PostgreSQL" if args.pg else "SQLite"
        print(
            f"{db}: {rows} rows exported in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
            f"file {size / 1e6:.1f} MB"
            + (f", traced peak {peak / 1e6:.1f} MB" if not args.no_trace else "")
            + f", load average {os.getloadavg()[0]:.1f}"
        )
        return 0 if rows == args.rows else 1
    finally:
        if args.pg:
            await harness.drop_pg_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--profile", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
