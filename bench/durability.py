"""Durability of rating intake: a rating acknowledged with 201 survives SIGKILL of the server.

    .venv/bin/python bench/durability.py [--db postgres|sqlite] [--seconds 4] [--rounds 3]

Starts the real service (`haochaping serve`), drives POST /api/v1/evaluations from concurrent
clients and records every id answered 201, sends SIGKILL to the server's whole process group
in the middle of the load, restarts it, and checks that every acknowledged rating is there,
with its level and channel, both through GET /api/v1/evaluations/{id} and in the database.
Repeats for several rounds. Exits 1 if a single acknowledged rating is missing or changed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field

import harness
from sqlalchemy import func, select

from haochaping.db.session import make_engine
from haochaping.evaluations.models import Evaluation


@dataclass
class Ledger:
    """What the clients were told: acknowledged ratings and requests cut off by the kill."""

    acked: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (level, channel)
    in_flight: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # status -> count (not 201)


async def load_until_killed(
    server: harness.Server,
    world: harness.World,
    *,
    ledger: Ledger,
    counter: itertools.count,
    concurrency: int,
    kill_after: float,
    stage_prefix: str,
) -> None:
    """Post ratings from `concurrency` clients; SIGKILL the server after `kill_after` s."""
    headers = {"X-Api-Key": world.key}
    killed = asyncio.Event()

    async def client() -> None:
        conn = await harness.HttpConnection.open("127.0.0.1", server.port)
        try:
            while not killed.is_set():
                body = harness.rating_body(world, next(counter), stage_prefix)
                try:
                    status, answer = await conn.request(
                        "POST", "/api/v1/evaluations", json.dumps(body).encode(), headers
                    )
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ledger.in_flight += 1  # no answer: the rating may or may not be stored
                    return
                if status == 201:
                    got = json.loads(answer)
                    ledger.acked[got["id"]] = (body["level"], body["channel"])
                else:
                    ledger.refused[status] = ledger.refused.get(status, 0) + 1
        finally:
            conn.close()

    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    await asyncio.sleep(kill_after)
    server.kill(signal.SIGKILL)  # the whole group: supervisor and every worker, no cleanup
    killed.set()
    await asyncio.gather(*tasks)


async def check_api(
    server: harness.Server, world: harness.World, acked: dict[int, tuple[int, str]]
) -> tuple[list[int], list[int]]:
    """GET every acknowledged rating; returns the missing and the changed ids."""
    missing, changed = [], []
    ids = list(acked)

    async def reader(part: list[int]) -> None:
        conn = await harness.HttpConnection.open("127.0.0.1", server.port)
        try:
            for eid in part:
                status, answer = await conn.request(
                    "GET", f"/api/v1/evaluations/{eid}", headers={"X-Api-Key": world.key}
                )
                if status != 200:
                    missing.append(eid)
                    continue
                got = json.loads(answer)
                if (got["level"], got["channel"]) != acked[eid]:
                    changed.append(eid)
        finally:
            conn.close()

    await asyncio.gather(*(reader(ids[i::8]) for i in range(8)))
    return missing, changed


async def check_db(
    url: str, acked: dict[int, tuple[int, str]], stage_prefix: str
) -> tuple[list[int], list[int], int]:
    """Look for every acknowledged rating in the database; also count this run's rows."""
    engine = make_engine(harness.settings_for(url))
    found: dict[int, tuple[int, str]] = {}
    try:
        async with engine.connect() as conn:
            ids = list(acked)
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(Evaluation.id, Evaluation.level, Evaluation.channel).where(
                        Evaluation.id.in_(ids[start : start + 500])
                    )
                )
                found.update({eid: (level, channel) for eid, level, channel in rows})
            stored = (
                await conn.execute(
                    select(func.count())
                    .select_from(Evaluation)
                    .where(Evaluation.stage.like(f"{stage_prefix}%"))
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    missing = [eid for eid in acked if eid not in found]
    changed = [eid for eid in acked if eid in found and found[eid] != acked[eid]]
    return missing, changed, stored


async def main(args: argparse.Namespace) -> int:
    """Set up, run the kill rounds, report, clean up."""
    rng = random.Random(args.seed)
    folder = name = None
    if args.db == "postgres":
        name, url = await harness.create_pg_database("hcp_durability")
    else:
        folder, url = harness.sqlite_url()
    workers = args.workers or (2 if args.db == "postgres" else 1)
    server = None
    failures = 0
    try:
        await asyncio.to_thread(harness.migrate, url)
        world = await harness.seed(url, args.cases)
        server = harness.Server(url, workers=workers)
        print(
            f"{args.db} ({url.split('@')[-1]}), haochaping serve --workers {workers}, "
            f"{args.concurrency} clients, {args.rounds} round(s)"
        )
        total = Ledger()
        for rnd in range(1, args.rounds + 1):
            server.start()
            await server.wait_ready()
            ledger = Ledger()
            # The seeded region's stages are a closed list (harness.seed: a0-a5, b0-b12): round
            # r rates stage a<r-1> of every case, counting from case 0 again. (Its own "d<r>x"
            # stages were refused 422 unknown_stage once stages became a policy's closed list.)
            counter = itertools.count((rnd - 1) * args.cases)
            prefix = f"a{rnd - 1}"
            kill_after = rng.uniform(args.seconds / 2, args.seconds)
            await load_until_killed(
                server,
                world,
                ledger=ledger,
                counter=counter,
                concurrency=args.concurrency,
                kill_after=kill_after,
                stage_prefix="a",
            )
            t0 = time.perf_counter()
            server.start()  # restart on the same database and port
            await server.wait_ready()
            restart = time.perf_counter() - t0
            api_missing, api_changed = await check_api(server, world, ledger.acked)
            server.stop()
            db_missing, db_changed, stored = await check_db(url, ledger.acked, prefix)
            lost = set(api_missing) | set(db_missing)
            bad = set(api_changed) | set(db_changed)
            failures += len(lost) + len(bad)
            print(
                f"round {rnd}: SIGKILL after {kill_after:.1f} s; acknowledged (201) "
                f"{len(ledger.acked)}, cut off in flight {ledger.in_flight}, other answers "
                f"{ledger.refused or 'none'}; restarted in {restart:.1f} s"
            )
            print(
                f"  missing after restart: {len(lost)} (API {len(api_missing)}, database "
                f"{len(db_missing)}); level/channel changed: {len(bad)}; stored in total "
                f"{stored} (committed but unanswered: {stored - len(ledger.acked)})"
            )
            if lost or bad:
                print(f"  LOST: {sorted(lost)[:20]}  CHANGED: {sorted(bad)[:20]}")
            total.acked.update(ledger.acked)
            total.in_flight += ledger.in_flight
        print(
            f"acknowledged: {len(total.acked)}  cut off in flight: {total.in_flight}  "
            f"missing: {failures}"
        )
        if not total.acked:
            print("no rating was acknowledged: nothing was proven", file=sys.stderr)
            return 2
        return 1 if failures else 0
    finally:
        if server is not None:
            server.stop()
        if name is not None:
            with contextlib.suppress(Exception):
                await harness.drop_pg_database(name)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    """The command line of the durability check."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="load lasts a random time between half this and this before SIGKILL",
    )
    p.add_argument(
        "--rounds", type=int, choices=range(1, 7), default=3, help="kill/restart rounds (1-6)"
    )
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server workers (default 2 on PostgreSQL, 1 on SQLite)",
    )
    p.add_argument("--cases", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=None, help="random seed for the kill times")
    return p.parse_args()


if __name__ == "__main__":
    try:
        sys.exit(harness.run(main(parse_args())))
    except KeyboardInterrupt:
        print("interrupted; server stopped and database removed", file=sys.stderr)
        sys.exit(130)
