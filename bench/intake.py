"""Rating intake throughput: the API against raw single-row INSERTs, and the batch route.

    .venv/bin/python bench/intake.py [--seconds 15] [--concurrency 32] [--workers 2]
    .venv/bin/python bench/intake.py --integrity-ab [--seconds 60] [--slices 10]

Creates a fresh PostgreSQL database (postgres@127.0.0.1:5432), migrates and seeds it, starts
the real service (`haochaping serve`) on a free port, then measures in turn:

1. POST /api/v1/evaluations from N keep-alive clients for a fixed time: accepted/s, latency;
2. raw single-row INSERTs of equivalent rows into the same table (same indexes, constraints
   and foreign keys), one autocommit transaction per row, from N asyncpg connections;
3. POST /api/v1/evaluations/batch with 1,000 ratings per request from a few clients.

The last line reads `intake/raw ratio: 0.NN`. The database and the server are removed at the
end, also on Ctrl-C or error.

With --integrity-ab it measures instead what the fake-rating detectors' intake checks cost:
two servers on the same database, one with HAOCHAPING_INTEGRITY_INTAKE_CHECKS=false, their
slices of the single and the batch route interleaved; it prints the rates, the server's CPU per
rating and the ratio on/off for each route.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import harness

USER_AGENT = "hcp-bench/1.0"
# The baseline copies a row the API stored (every column: encrypted identifiers, keyed hashes,
# defaults) and changes only what differs between ratings, so the rows are alike byte for byte.
TEMPLATE_ROW = "SELECT * FROM evaluation WHERE stage LIKE 'a%' ORDER BY id LIMIT 1"
PER_RATING = (
    "case_id",
    "stage",
    "channel",
    "level",
    "reasons",
    "comment",
    "evaluated_at",
    "received_at",
)


@dataclass
class Phase:
    """What one timed phase observed."""

    name: str
    seconds: float = 0.0
    ok: int = 0  # accepted ratings (201 / inserted rows)
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    spread: list[int] = field(default_factory=list)  # connections per server worker

    def merge(self, other: Phase) -> None:
        """Add the observations of another slice of the same phase."""
        total = self.seconds + other.seconds
        self.cpu = {
            k: (self.cpu.get(k, 0.0) * self.seconds + v * other.seconds) / total
            for k, v in other.cpu.items()
        }
        self.seconds = total
        self.ok += other.ok
        self.requests += other.requests
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        self.spread = self.spread or other.spread

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def capacity(self) -> float:
        """Operations per second the machine's cores would carry at this phase's CPU cost."""
        used = sum(v for k, v in self.cpu.items() if k != "other") * self.seconds
        return (os.cpu_count() or 1) * self.ok / used if used > 0 else 0.0

    def report(self, unit: str) -> None:
        lat = sorted(self.latencies)
        print(
            f"  {unit}: {self.ok} in {self.seconds:.1f} s = {self.rate:,.0f}/s"
            f"  ({self.requests} requests)"
        )
        print(
            "  latency ms: "
            + "  ".join(f"p{p} {harness.percentile(lat, p) * 1000:.1f}" for p in (50, 90, 99))
            + f"  max {lat[-1] * 1000 if lat else float('nan'):.1f}"
        )
        print(f"  errors: {dict(self.errors) if self.errors else 'none'}")
        if self.spread:
            print(f"  connections per server worker: {self.spread}")
        if self.cpu:
            print(
                "  cpu (cores busy): "
                + ", ".join(f"{k} {v:.2f}" for k, v in self.cpu.items())
                + f"  of {os.cpu_count()}"
            )
            if self.ok:
                print(
                    f"  cpu per {unit.split()[-1].rstrip('s')}: "
                    + ", ".join(
                        f"{k} {v * self.seconds / self.ok * 1e6:.0f} us"
                        for k, v in self.cpu.items()
                        if k != "other"
                    )
                )
            if self.cpu.get("other", 0) > 0.15:
                print(
                    f"  WARNING: other processes kept {self.cpu['other']:.2f} cores busy: "
                    "this phase's rate is depressed; rerun on a quiet machine"
                )


class CpuMeter:
    """CPU use of the server, PostgreSQL and this process over a phase, in busy cores."""

    nice: int | None = None  # set from --nice: raise the benchmark above other work

    def __init__(self, server: harness.Server | None, dbname: str) -> None:
        self.server, self.dbname = server, dbname
        if self.nice is not None:  # this process, the server, and this database's backends
            harness.renice(
                [
                    os.getpid(),
                    *(server.pids() if server else []),
                    *harness.postgres_pids(dbname, auxiliary=False),
                ],
                self.nice,
            )

    def _sample(self) -> dict[str, float]:
        own = os.times()
        out = {
            "postgres": harness.cpu_seconds(harness.postgres_pids(self.dbname)),
            "load generator": own.user + own.system,
        }
        if self.server is not None:
            out = {"server": harness.cpu_seconds(self.server.pids()), **out}
        # Anything else busy on the machine (other jobs) skews the figures: show it.
        out["other"] = harness.machine_busy_seconds() - sum(out.values())
        return out

    def __enter__(self) -> CpuMeter:
        self.t0, self.start = time.perf_counter(), self._sample()
        return self

    def __exit__(self, *exc) -> None:
        end, wall = self._sample(), time.perf_counter() - self.t0
        self.result = {k: (end[k] - self.start[k]) / wall for k in end}


async def api_phase(
    server: harness.Server,
    world: harness.World,
    *,
    dbname: str,
    seconds: float,
    concurrency: int,
    warmup: float,
    counter: itertools.count,
    own_phone: bool = False,
) -> Phase:
    """Closed-loop single ratings: each client posts, waits for the answer, posts again."""
    phase = Phase("api")
    headers = {"X-Api-Key": world.key, "User-Agent": USER_AGENT}
    measuring = asyncio.Event()
    stop_at = [float("inf")]

    async def client(conn: harness.HttpConnection) -> None:
        try:
            while time.perf_counter() < stop_at[0]:
                body = json.dumps(
                    harness.rating_body(world, next(counter), "a", own_phone=own_phone)
                ).encode()
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.request("POST", "/api/v1/evaluations", body, headers)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    if measuring.is_set():
                        phase.errors[type(exc).__name__] += 1
                    conn.close()
                    conn = await harness.HttpConnection.open("127.0.0.1", server.port)
                    continue
                t1 = time.perf_counter()
                if not measuring.is_set() or t1 > stop_at[0]:
                    continue  # only answers received inside the timed window count
                phase.requests += 1
                phase.latencies.append(t1 - t0)
                if status == 201:
                    phase.ok += 1
                else:
                    phase.errors[status] += 1
        finally:
            conn.close()

    conns = await harness.open_balanced(server, concurrency)
    phase.spread = harness.worker_spread(server, conns)
    tasks = [asyncio.create_task(client(conn)) for conn in conns]
    await asyncio.sleep(warmup)  # pools filled, key cache warm, code paths hot
    with CpuMeter(server, dbname) as cpu:
        stop_at[0] = time.perf_counter() + seconds
        measuring.set()
        await asyncio.sleep(seconds)
    phase.seconds, phase.cpu = seconds, cpu.result
    await asyncio.gather(*tasks)
    return phase


async def raw_phase(
    dsn: str,
    world: harness.World,
    *,
    dbname: str,
    seconds: float,
    concurrency: int,
    counter: itertools.count,
) -> Phase:
    """The baseline: equivalent rows, one autocommit INSERT per row, N connections."""
    import asyncpg

    phase = Phase("raw")
    conns = [await harness.pg_connect(dsn) for _ in range(concurrency)]
    record = await conns[0].fetchrow(TEMPLATE_ROW)
    if record is None:
        raise RuntimeError("the API phase stored no rating to copy")
    template = dict(record.items())
    columns = [c for c in template if c != "id"]
    insert = (
        f"INSERT INTO evaluation ({', '.join(columns)}) VALUES "
        f"({', '.join(f'${n}' for n in range(1, len(columns) + 1))}) "
        # No conflict target, as the service's own statement: since migration 0033 the ratings
        # table is partitioned and its once-per-(case, stage, count) rule is the trigger's
        # (evaluation_once); the old target named a unique index that no longer exists.
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    fixed = {c: template[c] for c in columns if c not in PER_RATING}
    for conn in conns:  # prepared once, as SQLAlchemy's asyncpg dialect also caches them
        await conn.prepare(insert)
    stop_at = [0.0]

    async def writer(conn) -> None:
        while time.perf_counter() < stop_at[0]:
            k = next(counter)
            i, stage = harness.rating_target(world, k, "r")
            level = harness.LEVEL_CYCLE[k % len(harness.LEVEL_CYCLE)]
            now = datetime.now(UTC)
            row = {
                **fixed,
                "case_id": world.case_ids[i],
                "stage": stage,
                "channel": harness.CASE_CHANNELS[k % 7],
                "level": level,
                "reasons": json.dumps([harness.REASON_BY_LEVEL[level]]),
                "comment": harness.COMMENT_BY_LEVEL[level],
                "evaluated_at": now,
                "received_at": now,
            }
            t0 = time.perf_counter()
            try:
                new_id = await conn.fetchval(insert, *(row[c] for c in columns))
            except asyncpg.PostgresError as exc:
                phase.errors[type(exc).__name__] += 1
                continue
            t1 = time.perf_counter()
            if t1 > stop_at[0]:
                return
            phase.requests += 1
            phase.latencies.append(t1 - t0)
            if new_id is None:
                phase.errors["conflict"] += 1
            else:
                phase.ok += 1

    try:
        with CpuMeter(None, dbname) as cpu:
            stop_at[0] = time.perf_counter() + seconds
            tasks = [asyncio.create_task(writer(c)) for c in conns]
            await asyncio.sleep(seconds)
        phase.seconds, phase.cpu = seconds, cpu.result
        await asyncio.gather(*tasks)
    finally:
        for conn in conns:
            await conn.close()
    return phase


async def batch_phase(
    server: harness.Server,
    world: harness.World,
    *,
    dbname: str,
    seconds: float,
    clients: int,
    size: int,
    counter: itertools.count | None = None,
    own_phone: bool = False,
    minimal: bool = False,
) -> Phase:
    """Buffering channels: POST /evaluations/batch with `size` ratings per request (with
    `minimal`, asking for {status, id} answers with `Prefer: return=minimal`)."""
    phase = Phase("batch")
    counter = counter or itertools.count()
    headers = {"X-Api-Key": world.key, "User-Agent": USER_AGENT}
    if minimal:
        headers["Prefer"] = "return=minimal"
    stop_at = [0.0]

    async def client(conn: harness.HttpConnection) -> None:
        try:
            while time.perf_counter() < stop_at[0]:
                items = [
                    harness.rating_body(world, next(counter), "b", own_phone=own_phone)
                    for _ in range(size)
                ]
                body = json.dumps({"items": items}).encode()
                t0 = time.perf_counter()
                try:
                    status, answer = await conn.request(
                        "POST", "/api/v1/evaluations/batch", body, headers
                    )
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The server dropped the keep-alive connection (seen on the loaded shared
                    # machine): counted, and this client stops for the rest of the slice.
                    phase.errors["connection closed"] += 1
                    return
                phase.latencies.append(time.perf_counter() - t0)
                phase.requests += 1
                if status != 200:
                    phase.errors[status] += 1
                    continue
                for item in json.loads(answer)["items"]:
                    if item["status"] == 201:
                        phase.ok += 1
                    else:
                        phase.errors[f"item {item['status']}"] += 1
        finally:
            conn.close()

    conns = await harness.open_balanced(server, clients)
    phase.spread = harness.worker_spread(server, conns)
    with CpuMeter(server, dbname) as cpu:
        start = time.perf_counter()
        stop_at[0] = start + seconds
        await asyncio.gather(*(client(conn) for conn in conns))
        phase.seconds = time.perf_counter() - start
    phase.cpu = cpu.result
    return phase


async def checkpoint(dsn: str) -> None:
    """Flush dirty pages between phases, so one phase's checkpoint does not tax the next."""

    conn = await harness.pg_connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


CHECKS_ENV = "HAOCHAPING_INTEGRITY_INTAKE_CHECKS"


async def record_staff_identities(url: str, world: harness.World) -> None:
    """Staff identities on record, as in production, so that the self-rating check looks
    every rater up (with none registered it returns at once); no rater matches them."""
    from haochaping.db.session import engine_keys
    from haochaping.integrity.models import StaffIdentity

    settings = harness.settings_for(url)
    engine = harness.make_engine(settings)
    try:
        async with harness.make_sessionmaker(engine)() as db:
            for kind, value in (("cert", "330102198502023456"), ("phone", "13700009999")):
                db.add(
                    StaffIdentity(
                        staff_id=world.staff_id,
                        kind=kind,
                        recorded_by="bench",
                        identity_hash=engine_keys(engine).identity_hash(value, kind),
                    )
                )
            await db.commit()
    finally:
        await engine.dispose()


def per_rating_us(phase: Phase, party: str = "server") -> float:
    """CPU microseconds one party spent per accepted rating."""
    return phase.cpu.get(party, 0.0) * phase.seconds / phase.ok * 1e6 if phase.ok else 0.0


async def integrity_ab(
    args: argparse.Namespace, url: str, name: str, world: harness.World, env: dict[str, str]
) -> int:
    """The intake checks of the detectors on against off (two servers, interleaved)."""
    await record_staff_identities(url, world)
    print(
        "integrity A/B: intake checks on against off; every rater names a phone of their "
        "own; staff identities on record"
    )
    return await two_server_ab(
        args,
        url,
        name,
        world,
        {"on": {**env, CHECKS_ENV: "true"}, "off": {**env, CHECKS_ENV: "false"}},
        own_phone=True,
        goal="throughput with checks within 10 % of without",
    )


async def code_ab(
    args: argparse.Namespace, url: str, name: str, world: harness.World, env: dict[str, str]
) -> int:
    """This tree's code (or --ab-new DIR) against another copy of the source tree."""
    trees = {}
    for label, folder in (("new", args.ab_new), ("old", args.ab_against)):
        if folder is None:
            trees[label] = env  # this tree, as installed
            continue
        folder = os.path.abspath(folder)
        if not os.path.isdir(os.path.join(folder, "haochaping")):
            raise SystemExit(f"{folder}: expected the folder holding haochaping/")
        trees[label] = {**env, "PYTHONPATH": folder}
    print(
        f"code A/B: {args.ab_new or 'this tree'} ('new') against {args.ab_against} ('old'), "
        "standard ratings"
    )
    return await two_server_ab(args, url, name, world, trees, own_phone=False, goal=None)


async def env_ab(
    args: argparse.Namespace, url: str, name: str, world: harness.World, env: dict[str, str]
) -> int:
    """One setting at two values (`--env-ab VAR=A,B`), e.g. group commit on against off."""
    var, _, values = args.env_ab.partition("=")
    a, _, b = values.partition(",")
    if not var or not a or not b:
        raise SystemExit("--env-ab wants VAR=A,B, e.g. HAOCHAPING_INTAKE_GROUP_COMMIT=true,false")
    print(f"setting A/B: {var}={a} ('{a}') against {var}={b} ('{b}'), standard ratings")
    variants = {a: {**env, var: a}, b: {**env, var: b}}
    return await two_server_ab(args, url, name, world, variants, own_phone=False, goal=None)


async def workers_ab(
    args: argparse.Namespace, url: str, name: str, world: harness.World, env: dict[str, str]
) -> int:
    """One worker count against another (`--workers-ab 1,2`) on this machine."""
    a, b = (int(n) for n in args.workers_ab.split(","))
    labels = {f"{a}w": a, f"{b}w": b}
    print(f"workers A/B: serve --workers {a} against --workers {b}, standard ratings")
    variants = dict.fromkeys(labels, env)
    return await two_server_ab(
        args, url, name, world, variants, own_phone=False, goal=None, workers=labels
    )


async def two_server_ab(
    args: argparse.Namespace,
    url: str,
    name: str,
    world: harness.World,
    variants: dict[str, dict[str, str]],
    *,
    own_phone: bool,
    goal: str | None,
    workers: dict[str, int] | None = None,
) -> int:
    """Two servers on the one database, their slices interleaved (A/B, then B/A, ...) so that
    background load and the growing table weigh on both alike; the single route first, then
    the batch route; figures per side and the ratio of the first to the second."""
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    servers = {
        label: harness.Server(
            url,
            workers=(workers or {}).get(label, args.workers),
            access_log=not args.no_access_log,
            env=variant,
        )
        for label, variant in variants.items()
    }
    first, second = list(servers)
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_ready()
        print(
            f"two servers (--workers {workers or args.workers}): "
            + ", ".join(f"{label} on port {server.port}" for label, server in servers.items())
            + f"; {args.slices} interleaved slices per side and route"
        )
        phases = {(route, label): Phase(route) for route in ("api", "batch") for label in servers}
        slices: dict[tuple[str, str], list[Phase]] = {key: [] for key in phases}
        counters = {"api": itertools.count(), "batch": itertools.count()}
        routes = ("api", "batch") if args.batch_seconds > 0 else ("api",)
        for route in routes:
            seconds = (args.seconds if route == "api" else args.batch_seconds) / args.slices
            for part in range(args.slices):
                for label in (first, second) if part % 2 == 0 else (second, first):
                    await checkpoint(dsn)
                    if route == "api":
                        got = await api_phase(
                            servers[label],
                            world,
                            dbname=name,
                            seconds=seconds,
                            concurrency=args.concurrency,
                            counter=counters[route],
                            warmup=args.warmup if part == 0 else 0.5,
                            own_phone=own_phone,
                        )
                    else:
                        got = await batch_phase(
                            servers[label],
                            world,
                            dbname=name,
                            seconds=seconds,
                            clients=args.batch_clients,
                            size=args.batch_size,
                            counter=counters[route],
                            own_phone=own_phone,
                        )
                    slices[(route, label)].append(dataclasses.replace(got))
                    phases[(route, label)].merge(got)
        phases = {key: phase for key, phase in phases.items() if key[0] in routes}
        for (route, label), phase in phases.items():
            print(f"\n== {route}, {label} ==")
            phase.report("accepted ratings")
            print(
                "  per slice, rate / server CPU per rating: "
                + "  ".join(
                    f"{p.rate:,.0f} / {per_rating_us(p):,.0f}" for p in slices[(route, label)]
                )
            )

        print(f"\n== A/B summary ({first} / {second}) ==")
        print("pooled over all slices; 'paired' = median over the adjacent on/off slice pairs")
        print(
            f"{'route':6} {first + ' /s':>8} {second + ' /s':>8} {'ratio':>6} {'paired':>6}   "
            f"{'server CPU/rating ' + first:>21} {second:>8} {'ratio':>6} {'paired':>6}   "
            f"p99 {first} / {second}"
        )
        verdicts = []
        for route in routes:
            on, off = phases[(route, first)], phases[(route, second)]
            rate_ratio = on.rate / off.rate if off.rate else 0.0
            cpu_on, cpu_off = per_rating_us(on), per_rating_us(off)
            cpu_ratio = cpu_on / cpu_off if cpu_off else 0.0
            pairs = list(zip(slices[(route, first)], slices[(route, second)], strict=True))
            paired_rate = statistics.median(a.rate / b.rate for a, b in pairs if b.rate)
            paired_cpu = statistics.median(
                per_rating_us(a) / per_rating_us(b) for a, b in pairs if b.ok and a.ok
            )
            p99 = [harness.percentile(sorted(p.latencies), 99) * 1000 for p in (on, off)]
            print(
                f"{route:6} {on.rate:8,.0f} {off.rate:8,.0f} {rate_ratio:6.3f} "
                f"{paired_rate:6.3f}   {cpu_on:18,.0f} us {cpu_off:5,.0f} us {cpu_ratio:6.3f} "
                f"{paired_cpu:6.3f}   {p99[0]:.1f} / {p99[1]:.1f} ms"
            )
            # The CPU the server spends per rating is what the checks add to; the rate follows
            # it on a quiet machine and mostly follows the neighbours' load on a busy one.
            cost = cpu_ratio - 1
            verdicts.append(
                f"{route}: {first} costs {cost:+.1%} server CPU per rating, rate "
                f"{rate_ratio - 1:+.1%} -> "
                f"{'within' if cost <= 0.10 and rate_ratio >= 0.90 else 'NOT within'}"
                " 10 %"
            )
        busy = max(p.cpu.get("other", 0.0) for p in phases.values())
        if busy > 0.15:
            print(
                f"other processes were busy (up to {busy:.2f} cores): compare the ratios, "
                "not the rates"
            )
        if goal is not None:
            print(f"goal ({goal}):")
            for line in verdicts:
                print("  " + line)
        return 0
    finally:
        for server in servers.values():
            server.stop()


async def main(args: argparse.Namespace) -> int:
    """Set up, run the three phases, print the figures, clean up."""
    name, url = await harness.create_pg_database("hcp_bench")
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    server = None
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(harness.migrate, url)
        world = await harness.seed(url, args.cases)
        print(
            f"database {name}: migrated and seeded with {args.cases:,} completed cases "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        # Production runs the deadline job and outbox delivery in `haochaping worker`; in
        # `serve` they would spend the same two cores on notifications, which is not intake.
        env = {} if args.with_jobs else {"HAOCHAPING_JOB_INTERVAL_SECONDS": "0"}
        CpuMeter.nice = args.nice
        if args.good_only:
            harness.LEVEL_CYCLE = tuple(x for x in harness.LEVEL_CYCLE if x >= 3)
        if args.integrity_ab:
            return await integrity_ab(args, url, name, world, env)
        if args.ab_against:
            return await code_ab(args, url, name, world, env)
        if args.env_ab:
            return await env_ab(args, url, name, world, env)
        if args.workers_ab:
            return await workers_ab(args, url, name, world, env)
        server = harness.Server(
            url, workers=args.workers, access_log=not args.no_access_log, env=env
        )
        server.start()
        await server.wait_ready()
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        bad = sum(x < 3 for x in harness.LEVEL_CYCLE) / len(harness.LEVEL_CYCLE)
        print(
            f"ratings: {bad:.0%} bad (a bad rating opens a work order); periodic jobs "
            f"{'in-process' if args.with_jobs else 'off (a separate worker in production)'}"
        )
        print(
            f"service: haochaping serve --workers {args.workers} on port {server.port}"
            f"{' (uvicorn, no access log)' if args.no_access_log else ''}; "
            f"{os.cpu_count()} cores shared by server, PostgreSQL and load generator"
        )

        # With --slices N the API and raw phases alternate in N slices each, so that load
        # from anything else on the machine weighs on both sides of the ratio alike.
        api, raw = Phase("api"), Phase("raw")
        api_counter, raw_counter = itertools.count(), itertools.count()
        part_seconds = args.seconds / args.slices
        for part in range(args.slices):
            await checkpoint(dsn)
            api.merge(
                await api_phase(
                    server,
                    world,
                    dbname=name,
                    seconds=part_seconds,
                    concurrency=args.concurrency,
                    counter=api_counter,
                    warmup=args.warmup if part == 0 else 0.5,
                )
            )
            await checkpoint(dsn)
            raw.merge(
                await raw_phase(
                    dsn,
                    world,
                    dbname=name,
                    seconds=part_seconds,
                    concurrency=args.concurrency,
                    counter=raw_counter,
                )
            )
        slices = f" in {args.slices} slices" if args.slices > 1 else ""
        print(
            f"\n== API: POST /api/v1/evaluations, {args.concurrency} keep-alive clients, "
            f"{args.seconds:g} s{slices} =="
        )
        api.report("accepted ratings")
        print(
            f"\n== raw: single-row INSERT, autocommit, {args.concurrency} asyncpg "
            f"connections, {args.seconds:g} s{slices} =="
        )
        raw.report("rows")

        batch = None
        if args.batch_seconds > 0:
            await checkpoint(dsn)
            print(
                f"\n== batch: POST /api/v1/evaluations/batch, {args.batch_size} items, "
                f"{args.batch_clients} clients, {args.batch_seconds:g} s"
                f"{', Prefer: return=minimal' if args.batch_minimal else ''} =="
            )
            batch = await batch_phase(
                server,
                world,
                dbname=name,
                seconds=args.batch_seconds,
                clients=args.batch_clients,
                size=args.batch_size,
                minimal=args.batch_minimal,
            )
            batch.report("accepted ratings")

        print("\n== summary ==")
        p99 = harness.percentile(sorted(api.latencies), 99) * 1000
        print(
            f"API accepted/s: {api.rate:,.0f}  p50 "
            f"{harness.percentile(sorted(api.latencies), 50) * 1000:.1f} ms  p99 {p99:.1f} ms"
            f"  errors {sum(api.errors.values())}"
        )
        print(f"raw INSERT rows/s: {raw.rate:,.0f}")
        if batch is not None:
            print(
                f"batch ratings/s: {batch.rate:,.0f}  (goal 20,000: "
                f"{'met' if batch.rate >= 20_000 else 'missed'})"
            )
        ratio = api.rate / raw.rate if raw.rate else 0.0
        busy = max(api.cpu.get("other", 0.0), raw.cpu.get("other", 0.0))
        if busy > 0.15:  # figures depressed by other work: also show what the CPU cost allows
            caps = [p.capacity() for p in (api, raw)]
            print(
                f"other processes were busy (up to {busy:.2f} cores); from CPU cost alone, "
                f"{os.cpu_count()} cores would carry API {caps[0]:,.0f}/s, raw {caps[1]:,.0f}/s "
                f"(ratio {caps[0] / caps[1]:.2f})"
            )
        print(
            f"goals: ratio >= 0.50 {'met' if ratio >= 0.5 else 'missed'}; p99 < 50 ms "
            f"{'met' if p99 < 50 else 'missed'}"
        )
        print(f"intake/raw ratio: {ratio:.2f}")
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep_db:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with contextlib.suppress(Exception):
                await harness.drop_pg_database(name)


def parse_args() -> argparse.Namespace:
    """The command line of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="length of each timed phase")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients/connections")
    p.add_argument("--workers", type=int, default=2, help="server worker processes")
    p.add_argument("--cases", type=int, default=100_000, help="completed cases to seed")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured API load first")
    p.add_argument(
        "--slices",
        type=int,
        default=None,
        help="alternate the API and raw phases in this many slices (noisy machines)",
    )
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        help="length of the batch phase (default: --seconds; 0 skips it)",
    )
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument(
        "--batch-minimal",
        action="store_true",
        help="batch clients send `Prefer: return=minimal` ({status, id} answers)",
    )
    p.add_argument(
        "--no-access-log",
        action="store_true",
        help="run uvicorn directly without its access log (for comparison)",
    )
    p.add_argument(
        "--good-only",
        action="store_true",
        help="no bad ratings, so no work orders: the intake path alone",
    )
    p.add_argument(
        "--with-jobs",
        action="store_true",
        help="let the server run its periodic jobs in-process (default: off)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=None,
        help="on a shared machine, run the benchmark's processes (load generator, "
        "server, its PostgreSQL backends) at this priority, e.g. -10 (root)",
    )
    p.add_argument(
        "--integrity-ab",
        action="store_true",
        help="instead of API/raw/batch: the detectors' intake checks on against off, "
        "two servers, interleaved slices (--slices, default 10), single and batch",
    )
    p.add_argument(
        "--ab-against",
        metavar="DIR",
        help="instead of API/raw/batch: this tree's server against one running the "
        "package found in DIR (e.g. `git archive HEAD src | tar -x -C /tmp/old`"
        ", DIR=/tmp/old/src), interleaved as --integrity-ab",
    )
    p.add_argument(
        "--ab-new",
        metavar="DIR",
        help="with --ab-against: run the 'new' side from DIR too (a snapshot, so "
        "that editing this tree during the run changes nothing)",
    )
    p.add_argument(
        "--env-ab",
        metavar="VAR=A,B",
        help="instead of API/raw/batch: two servers of this tree, one with the environment "
        "variable VAR=A, one with VAR=B (e.g. HAOCHAPING_INTAKE_GROUP_COMMIT=true,false), "
        "interleaved as --integrity-ab",
    )
    p.add_argument(
        "--workers-ab",
        metavar="A,B",
        help="instead of API/raw/batch: `serve --workers A` against `--workers B`, "
        "interleaved as --integrity-ab",
    )
    p.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    args = p.parse_args()
    if args.batch_seconds is None:
        args.batch_seconds = args.seconds
    if args.slices is None:
        args.slices = (
            10 if args.integrity_ab or args.ab_against or args.env_ab or args.workers_ab else 1
        )
    return args


if __name__ == "__main__":
    try:
        sys.exit(harness.run(main(parse_args())))
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        sys.exit(130)
