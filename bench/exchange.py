"""Reporting up: a child instance draining a backlog of ratings to its parent (issue 14).

    .venv/bin/python bench/exchange.py [--n 1000000] [--batch 1000] [--in-flight 2]
        [--parent-workers 1] [--intake-seconds 15] [--sender process|inline]

Creates two fresh PostgreSQL databases (child and parent, postgres@127.0.0.1:5432), seeds the
child with `--n` stored ratings (set-based INSERT, received an hour ago: all due), makes the
parent's `exchange` client, and starts both services (`haochaping serve`, periodic jobs off in
both so that only reporting up runs). Then, in one run:

1. the child's intake idle: POST /api/v1/evaluations from N keep-alive clients for a fixed
   time while the parent is still down (the sender only retries, with back-off);
2. the parent starts; the same intake load runs again while the child drains its backlog;
3. the drain finishes: every rating of the child is at the parent.

It prints the end-to-end rate (ratings at the parent per second, from the parent's start to
the last rating), the drain rate while the intake load ran and after it, and the child's
intake rate while draining against idle. The databases and servers are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import socket
import sys
import time

import harness
import intake

from haochaping.accounts import service as account_service
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations import tags
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service

# The backlog rates each seeded case once per stage of these (the intake load uses "a0".."a5").
BACKLOG_STAGES = ["whole"] + [f"b{i}" for i in range(13)]


async def seed_backlog(dsn: str, n: int) -> None:
    """`n` stored ratings of the seeded cases, received an hour ago, in one INSERT."""
    conn = await harness.pg_connect(dsn)
    try:
        stages = ", ".join(f"('{s}', {i})" for i, s in enumerate(BACKLOG_STAGES))
        await conn.execute(
            f"""
            INSERT INTO evaluation (case_id, stage, eval_count, channel, level, reasons, comment,
                tagset_version, org_id, item_id, window_id, staff_id, region_code, rater_type,
                rater_name, anonymous, is_public, is_default, client_id, evaluated_at,
                received_at)
            SELECT c.id, s.stage, 1,
                (ARRAY['pc','mobile','qrcode','pad','terminal','phone','sms'])[1 + c.r % 7],
                5, '["517"]'::json, '办事很快', '{tags.NATIONAL_VERSION}', c.org_id, c.item_id,
                c.window_id, c.staff_id, '330102', 'person', '张三', false, true, false,
                c.client_id, now() - interval '1 hour' + (c.r || ' ms')::interval,
                now() - interval '1 hour'
            FROM (SELECT id, org_id, item_id, window_id, staff_id, client_id,
                         row_number() OVER (ORDER BY id) AS r FROM service_case) c
            CROSS JOIN (VALUES {stages}) AS s(stage, k)
            ORDER BY s.k, c.id
            LIMIT {n}
            """
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def seed_parent(url: str) -> str:
    """The parent's province and the child's API client with the `exchange` channel."""
    engine = make_engine(harness.settings_for(url))
    try:
        async with make_sessionmaker(engine)() as db:
            await org_service.create_region(
                db=db,
                actor=harness.ADMIN,
                data=org_schemas.RegionCreate(code="330000", name="浙江省", parent_code=None),
            )
            await org_service.create_org(
                db=db,
                actor=harness.ADMIN,
                data=org_schemas.OrgCreate(
                    code="PROV",
                    name="省政务服务管理办公室",
                    kind="department",
                    region_code="330000",
                ),
            )
            _, key = await account_service.create_client(
                db=db, name="city-hz", org_code="PROV", channels=["exchange"]
            )
            await db.commit()
        return key
    finally:
        await engine.dispose()


async def count(dsn: str, where: str = "") -> int:
    conn = await harness.pg_connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM evaluation {where}"))
    finally:
        await conn.close()


class Split:
    """Busy cores of each party over a stretch of the run: the child's and the parent's server,
    each database's PostgreSQL backends, this process (the intake load), and the rest."""

    def __init__(self, child: harness.Server, parent: harness.Server, child_db: str, parent_db):
        self.parties = {
            "child": lambda: harness.cpu_seconds(child.pids()),
            "child pg": lambda: harness.cpu_seconds(
                harness.postgres_pids(child_db, auxiliary=False)
            ),
            "parent": lambda: harness.cpu_seconds(parent.pids()),
            "parent pg": lambda: harness.cpu_seconds(
                harness.postgres_pids(parent_db, auxiliary=False)
            ),
            "load": lambda: sum(os.times()[:2]),
        }
        self.mark()

    def _sample(self) -> dict[str, float]:
        got = {name: read() for name, read in self.parties.items()}
        got["other"] = harness.machine_busy_seconds() - sum(got.values())
        return got

    def mark(self) -> None:
        self.t0, self.start = time.perf_counter(), self._sample()

    def line(self, drained: int = 0) -> str:
        """Busy cores per party since the mark (and CPU µs per drained rating), then re-mark."""
        end, wall = self._sample(), time.perf_counter() - self.t0
        used = {k: (end[k] - self.start[k]) for k in end}
        text = ", ".join(f"{k} {v / wall:.2f}" for k, v in used.items())
        if drained:
            work = used["child"] + used["child pg"] + used["parent"] + used["parent pg"]
            text += f"; {work / drained * 1e6:,.0f} µs of CPU per drained rating (both sides)"
        self.mark()
        return f"busy cores: {text}"


async def intake_rate(
    server: harness.Server, world: harness.World, dbname: str, args, counter
) -> float:
    phase = await intake.api_phase(
        server,
        world,
        dbname=dbname,
        seconds=args.intake_seconds,
        concurrency=args.concurrency,
        warmup=2.0,
        counter=counter,
    )
    return phase.ok / phase.seconds


async def main(args: argparse.Namespace) -> int:
    child_name, child_url = await harness.create_pg_database("hcp_bench_exch_child")
    parent_name, parent_url = await harness.create_pg_database("hcp_bench_exch_parent")
    child_dsn = child_url.replace("postgresql+asyncpg", "postgresql")
    parent_dsn = parent_url.replace("postgresql+asyncpg", "postgresql")
    servers: list[harness.Server] = []
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(harness.migrate, child_url)
        await asyncio.to_thread(harness.migrate, parent_url)
        world = await harness.seed(child_url, math.ceil(args.n / len(BACKLOG_STAGES)))
        await seed_backlog(child_dsn, args.n)
        key = await seed_parent(parent_url)
        print(
            f"child {child_name}: {await count(child_dsn):,} ratings in the backlog; "
            f"parent {parent_name}; set up in {time.perf_counter() - t0:.1f} s"
        )
        print(f"machine {socket.gethostname()}, {os.cpu_count()} cores, load {os.getloadavg()}")
        print(f"child sender: {args.sender}, {args.in_flight} in flight, batch {args.batch}")
        parent = harness.Server(
            parent_url,
            access_log=False,
            workers=args.parent_workers,
            env={"HAOCHAPING_JOB_INTERVAL_SECONDS": "0"},
        )
        child = harness.Server(
            child_url,
            access_log=False,
            # `serve` runs the sender in a lower-priority process of its own; "inline" is the
            # sender on the worker's event loop, as before (uvicorn started directly).
            uvicorn=args.sender == "inline",
            env={
                "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
                "HAOCHAPING_UPSTREAM_URL": parent.base,
                "HAOCHAPING_UPSTREAM_KEY": key,
                "HAOCHAPING_UPSTREAM_BATCH_SIZE": str(args.batch),
                "HAOCHAPING_UPSTREAM_IN_FLIGHT": str(args.in_flight),
            },
        )
        servers += [child, parent]
        child.start()
        await child.wait_ready()
        counter = itertools.count()
        idle = await intake_rate(child, world, child_name, args, counter)
        print(f"\nchild intake, parent down (sender idle): {idle:,.0f} ratings/s")

        parent.start()
        await parent.wait_ready()
        # The sender backed off while the parent was down; start it now rather than wait.
        conn = await harness.pg_connect(child_dsn)
        await conn.execute("UPDATE upstream_stream SET next_attempt_at = NULL, failures = 0")
        await conn.close()
        started = time.perf_counter()
        at_start = await count(parent_dsn)
        split = Split(child, parent, child_name, parent_name)
        draining = await intake_rate(child, world, child_name, args, counter)
        during_s = time.perf_counter() - started
        during_n = await count(parent_dsn) - at_start
        print(f"child intake while draining:             {draining:,.0f} ratings/s")
        print(f"  ratio draining/idle: {draining / idle:.2f} (goal >= 0.80)")
        print(f"  {split.line()}")
        total = await count(child_dsn)
        while True:
            got = await count(parent_dsn)
            if got >= total:
                break
            if time.perf_counter() - started > args.timeout:
                print(f"timeout: {got:,} of {total:,} at the parent", file=sys.stderr)
                return 1
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - started
        after_n, after_s = got - at_start - during_n, elapsed - during_s
        print(
            f"\ndrained {total:,} ratings to the parent in {elapsed:.1f} s: "
            f"{total / elapsed:,.0f} ratings/s end to end (goal >= 10,000/s)"
        )
        print(f"  while the intake load ran: {during_n / during_s:,.0f}/s")
        if after_s > 0:
            print(f"  after it:                  {after_n / after_s:,.0f}/s")
            print(f"  after it, {split.line(after_n)}")
        print(f"load average after: {os.getloadavg()}")
        return 0
    finally:
        for s in servers:
            s.stop()
        await harness.drop_pg_database(child_name)
        await harness.drop_pg_database(parent_name)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="ratings in the child's backlog")
    p.add_argument("--batch", type=int, default=1000, help="HAOCHAPING_UPSTREAM_BATCH_SIZE")
    p.add_argument("--in-flight", type=int, default=2, help="HAOCHAPING_UPSTREAM_IN_FLIGHT")
    p.add_argument("--intake-seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--parent-workers", type=int, default=1)
    p.add_argument(
        "--sender",
        choices=("process", "inline"),
        default="process",
        help="the child's sender: its own process (serve's way) or on the worker's loop",
    )
    p.add_argument("--timeout", type=float, default=3600.0)
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
