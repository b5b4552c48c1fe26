"""The console's dashboard (数据看板) and rankings (榜单) rendered over the demo province.

    .venv/bin/python bench/dashboard_page.py [--db FILE | --url URL] [--cases 200000] [--runs 15]
                                        [--keep]

Without `--db` or `--url`, loads the demo province (`haochaping demo`, 200,000 cases, about
145,000 ratings over a year) into a fresh SQLite file first (about two minutes); `--keep`
leaves it for `--db` next time; `--url` measures a database already loaded with `haochaping
demo` (PostgreSQL: `postgresql+asyncpg://postgres@127.0.0.1:5432/NAME`). Then signs in as the
demo's `admin` (the province's root office) and renders each page through the ASGI app
in-process (no network, no browser: the server's share of a page view), `--runs` times after
one warm-up, and prints per page the median, p90 and minimum wall time, the median CPU time
of the process (the Python code and SQLite's threads; PostgreSQL's server process is not in
it), and the size of the HTML. The statistics' rollups are brought up to date first, as the
scheduler keeps them in a running service. The goal (issue 10): the province's dashboard
under 300 ms on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from haochaping.analytics import rollups  # noqa: E402
from haochaping.app import create_app, startup  # noqa: E402
from haochaping.config import Settings  # noqa: E402
from haochaping.db import migrate  # noqa: E402
from haochaping.demo import loader  # noqa: E402

PAGES = [
    ("dashboard, 近30天 (default)", "/console/dashboard"),
    ("dashboard, 本年, by month", "/console/dashboard?preset=year&granularity=month"),
    ("dashboard, 近7天", "/console/dashboard?preset=7d"),
    ("rankings, halls, this month", "/console/rankings?tier=hall"),
    ("rankings, windows, this month", "/console/rankings?tier=window"),
    ("download, children (xlsx)", "/console/dashboard/export?what=children&format=xlsx"),
]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def settings_for(path: str) -> Settings:
    url = path if "://" in path else f"sqlite+aiosqlite:///{path}"
    return Settings(
        env="development",
        database_url=url,
        job_interval_seconds=0,
        integrity_intake_checks=False,
        _env_file=None,
    )


async def sign_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    token = _CSRF.search(form.text)
    assert token, "no sign-in form"
    r = await client.post(
        "/login",
        data={"csrf_token": token.group(1), "username": "admin", "password": "admin12345"},
    )
    assert r.status_code == 303, r.text[-500:]


async def measure(path: str, runs: int) -> None:
    settings = settings_for(path)
    app = create_app(settings)
    await startup(app)
    # What the scheduler's passes keep current in a running service: the statistics' rollups.
    started = time.perf_counter()
    report = await rollups.refresh(app.state.sessionmaker)
    print(f"rollups: {report} ({time.perf_counter() - started:.1f} s)")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await sign_in(client)
        # The first city of the province, as its row links it (one tier down).
        home = await client.get("/console/dashboard")
        city = re.search(r'data-href="(/console/dashboard\?node=region%3A[0-9]+)"', home.text)
        pages = list(PAGES)
        if city:
            pages.insert(3, ("dashboard, a city (drill-down)", city.group(1)))
        load = os.getloadavg()[0]
        print(f"load average before: {load:.1f} (2 CPUs: above 2 means other work shares them)")
        print(f"{'page':34} {'median':>8} {'p90':>8} {'min':>8} {'CPU':>8} {'HTML':>8}")
        for label, url in pages:
            r = await client.get(url)  # warm-up: the first includes imports and caches
            assert r.status_code == 200, (url, r.status_code, r.text[-500:])
            walls, cpus = [], []
            for _ in range(runs):
                w, c = time.perf_counter(), time.process_time()
                r = await client.get(url)
                walls.append((time.perf_counter() - w) * 1000)
                cpus.append((time.process_time() - c) * 1000)
                assert r.status_code == 200
            walls.sort()
            p90 = walls[min(len(walls) - 1, int(round(0.9 * (len(walls) - 1))))]
            print(
                f"{label:34} {statistics.median(walls):7.0f}ms {p90:7.0f}ms {walls[0]:7.0f}ms "
                f"{statistics.median(cpus):7.0f}ms {len(r.content) / 1024:6.0f}KB"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    await app.state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="an SQLite file with the demo province loaded")
    parser.add_argument("--url", help="a database URL with the demo province loaded")
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the loaded demo database")
    args = parser.parse_args()
    folder = None
    path = args.url or args.db
    if path is None:
        folder = tempfile.mkdtemp(prefix="hcp-bench-dash-")
        path = os.path.join(folder, "demo.db")
        settings = settings_for(path)
        migrate.upgrade(settings)
        started = time.perf_counter()
        print(asyncio.run(loader.load(settings, cases=args.cases)).splitlines()[0])
        print(f"loaded in {time.perf_counter() - started:.0f} s: {path}")
    try:
        asyncio.run(measure(path, args.runs))
    finally:
        if folder and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
