"""The ratings table at scale: does a question's cost grow with the table where it should not?

    .venv/bin/python bench/scale.py                       # 1M and 10M ratings
    .venv/bin/python bench/scale.py --sizes 1000000 --rounds 20

For each size builds the PostgreSQL database `hcp_scale` anew (postgres@127.0.0.1:5432): the
synthetic province of bench/dashboard.py (3,000 units, 15 cities) and N ratings over the two
years up to today, loaded set-based (INSERT ... SELECT generate_series), at the newest schema.
Then, at that size, it times

- intake: single-row INSERTs of a rating, each its own committed transaction (the table's
  index maintenance at this size; the service's own cost is bench/intake.py's),
- a unit's ratings newest first: the console's list query (`evaluations/queries.py`, 20 rows)
  for a hall's manager, for many halls in turn, and the same for the whole province,
- a month's figures for a region: counts per level of a city's ratings received in the last
  complete month (GROUP BY over the org path prefix and the time range),
- a day for the ledger: one day's ratings read in id order with the columns the ledger's
  content hash covers and SM3-hashed, as `ledger verify` does for the blocks of that day,

each as p50 / p95 in ms, plus the table's disk use per million ratings, the plan each read
chose, and which of the table's indexes the questions used (pg_stat_user_indexes). `--keep`
leaves the last database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import dashboard
import harness
from alembic import command
from sqlalchemy import select, text

from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.db import migrate as db_migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations import partitions
from haochaping.evaluations import queries as evaluation_queries
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing
from haochaping.ledger import service as ledger_service

# The benchmark's database; HCP_SCALE_DB names another (two runs side by side on one server).
DBNAME = os.environ.get("HCP_SCALE_DB", "hcp_scale")
DSN = f"{dashboard.PG}/{DBNAME}"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DBNAME}"


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {harness.percentile(ordered, 50) * 1000:7.1f}  "
        f"p95 {harness.percentile(ordered, 95) * 1000:7.1f} ms"
    )


def migrate_plain(url: str) -> None:
    """The schema before the monthly partitions (0029): the plain ratings table."""
    settings = harness.settings_for(url)
    settings.ensure_data_dir()
    command.upgrade(db_migrate.alembic_config(settings), "0029")


async def make_months(days: int) -> int:
    """On the partitioned schema, the partitions of the last `days` (the migration made only
    this month's and the next three: the load's older ratings would land in DEFAULT)."""
    engine = make_engine(harness.settings_for(URL))
    made = 0
    try:
        async with make_sessionmaker(engine)() as db:
            existing = {p.month for p in await partitions.partitions(db)}
            month = partitions.month_of(datetime.now(UTC) - timedelta(days=days))
            while month not in existing:
                await partitions.create_month(db, month=month)
                made += 1
                month = partitions.next_month(month)
            await db.commit()
    finally:
        await engine.dispose()
    return made


async def build(n: int, plain: bool = False) -> dict[str, float]:
    """`hcp_scale` anew with n ratings (`plain`: at 0029, before the partitions); seconds per
    loading step."""
    dashboard.DBNAME = DBNAME
    await dashboard.create_database(fresh=True)
    await asyncio.to_thread(migrate_plain if plain else harness.migrate, URL)
    if not plain:
        await make_months(731)
    return await dashboard.load(DSN, n)


async def intake(n: int, rows: int) -> tuple[float, list[float]]:
    """Ratings per second of single-row committed INSERTs at this size, and their latencies."""
    conn = await asyncpg.connect(DSN)
    try:
        units = await conn.fetchval("SELECT count(*) FROM bench_unit")
        step = timedelta(milliseconds=1)
        start = datetime.now(UTC)
        latencies = []
        t0 = time.perf_counter()
        for k in range(rows):
            t = time.perf_counter()
            await dashboard.insert_ratings(
                conn, n + 1 + k, n + 1 + k, start + k * step, step, units
            )
            latencies.append(time.perf_counter() - t)
        rate = rows / (time.perf_counter() - t0)
        # Leave the table at its size for the next questions.
        await conn.execute("SELECT 1")
    finally:
        await conn.close()
    return rate, latencies


def hall_paths(province: dashboard.Province, count: int) -> list[str]:
    """Paths of `count` halls spread over the province (the unit rows are numbered in order)."""
    halls = []
    for county in province.county_paths:
        code = county.rstrip("/").rsplit("/", 1)[1]
        halls.append(f"{county}{code}U01/")
    stride = max(1, len(halls) // count)
    return halls[::stride][:count]


async def unit_list(maker, paths: list[str], rounds: int) -> list[float]:
    """The console's first page of ratings for each manager in turn."""
    times = []
    async with maker() as db:
        for r in range(rounds):
            path = paths[r % len(paths)]
            actor = Principal(kind="user", id=0, name="bench", org_id=0, org_path=path, role="unit")
            t = time.perf_counter()
            # As evaluation_page builds it (without the names and standings it adds).
            stmt = evaluation_queries.evaluations(actor=actor)
            narrow = await evaluation_queries.narrow_page_ids(
                db=db, actor=actor, org_code=None, level=None, channel=None, since=None,
                until=None, cursor=None, limit=20,
            )  # fmt: skip
            if narrow is not None:
                stmt = stmt.where(Evaluation.id.in_(narrow))
            got, _ = await pagination.page(
                db, stmt, key=Evaluation.id, time_key=Evaluation.evaluated_at, cursor=None,
                limit=20, descending=True,
            )  # fmt: skip
            times.append(time.perf_counter() - t)
            assert got, f"no ratings under {path}"
    return times


MONTH_SQL = """
SELECT e.level, count(*) FROM evaluation e JOIN org o ON o.id = e.org_id
WHERE o.path LIKE $1 AND e.received_at >= $2 AND e.received_at < $3
GROUP BY e.level
"""


async def month_figures(cities: list[str], rounds: int) -> tuple[list[float], int]:
    conn = await asyncpg.connect(DSN)
    first = datetime.now(dashboard.CHINA).date().replace(day=1)
    prev = (first - timedelta(days=1)).replace(day=1)
    since = datetime(prev.year, prev.month, 1, tzinfo=dashboard.CHINA)
    until = datetime(first.year, first.month, 1, tzinfo=dashboard.CHINA)
    times, total = [], 0
    try:
        for r in range(rounds):
            t = time.perf_counter()
            rows = await conn.fetch(MONTH_SQL, cities[r % len(cities)] + "%", since, until)
            times.append(time.perf_counter() - t)
            total = sum(row[1] for row in rows)
    finally:
        await conn.close()
    return times, total


async def ledger_day(maker, rounds: int) -> tuple[list[float], int]:
    """One day's ratings read with their content columns in id order, and hashed."""
    columns = ledger_service.content_columns(hashing.CONTENT_VERSION)
    times, count = [], 0
    day0 = datetime.now(dashboard.CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
    async with maker() as db:
        for r in range(rounds):
            since = day0 - timedelta(days=2 + 7 * r)
            stmt = (
                select(*columns)
                .where(Evaluation.received_at >= since)
                .where(Evaluation.received_at < since + timedelta(days=1))
                .order_by(Evaluation.id)
            )
            t = time.perf_counter()
            rows = (await db.execute(stmt)).all()
            await ledger_service.hash_rows(rows, hashing.CONTENT_VERSION)
            times.append(time.perf_counter() - t)
            count = len(rows)
    return times, count


async def plans(maker, hall: str, city: str) -> None:
    async with maker() as db:
        for label, path in (("hall", hall), ("province", "/P/")):
            actor = Principal(kind="user", id=0, name="b", org_id=0, org_path=path, role="unit")
            stmt = evaluation_queries.evaluations(actor=actor).limit(20)
            compiled = stmt.compile(dialect=db.bind.dialect, compile_kwargs={"literal_binds": True})
            plan = (await db.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
            used = sorted({w for line in plan for w in line.split() if w.startswith("ix_")})
            print(f"    plan, {label} list: indexes {', '.join(used) or 'none'}")
    conn = await asyncpg.connect(DSN)
    try:
        now = datetime.now(UTC)
        plan = await conn.fetch(
            "EXPLAIN " + MONTH_SQL, city + "%", now - timedelta(days=60), now - timedelta(days=30)
        )
        used = sorted({w for row in plan for w in row[0].split() if w.startswith("ix_")})
        print(f"    plan, region month: indexes {', '.join(used) or 'none'}")
        # Pruning: the partitions the month's plan reads (of how many attached).
        read = {w for row in plan for w in row[0].split() if partitions.NAME.match(w)}
        leaves = await conn.fetchval(
            "SELECT count(*) FROM pg_partition_tree('evaluation') WHERE isleaf"
        )
        if leaves:
            print(f"    plan, region month: partitions read {len(read)} of {leaves}")
    finally:
        await conn.close()


async def disk_and_indexes(n: int) -> None:
    """Disk per million ratings (every partition, and the narrow key tables where they exist)
    and each index's scans and size summed over the partitions."""
    conn = await asyncpg.connect(DSN)
    try:
        partitioned = await conn.fetchval(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = 'evaluation'::regclass"
        )
        # pg_partition_tree() of a plain table or index is empty: then the table itself.
        tree = (
            "SELECT relid FROM pg_partition_tree('evaluation') WHERE isleaf"
            if partitioned
            else "SELECT 'evaluation'::regclass AS relid"
        )
        heap = await conn.fetchval(f"SELECT sum(pg_relation_size(relid))::bigint FROM ({tree}) t")
        total = await conn.fetchval(
            f"SELECT sum(pg_total_relation_size(relid))::bigint FROM ({tree}) t"
        )
        keys = await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
            "WHERE c.relname IN ('evaluation_key', 'evaluation_once', 'evaluation_origin')"
        )
        parts = await conn.fetchval(f"SELECT count(*) FROM ({tree}) t")
        per_m = 1_000_000 / n
        print(
            f"    disk: table {heap * per_m / 2**20:.0f} MB + indexes "
            f"{(total - heap) * per_m / 2**20:.0f} MB + key tables {keys * per_m / 2**20:.0f} MB"
            f" per million ratings (total {(total + keys) / 2**30:.2f} GB, {parts} partitions)"
        )
        rows = await conn.fetch(
            "SELECT i.indexname, sum(s.idx_scan)::bigint AS scans, "
            "sum(pg_relation_size(t.relid))::bigint AS size FROM pg_indexes i "
            "CROSS JOIN LATERAL (SELECT relid FROM pg_partition_tree(i.indexname::regclass) "
            "UNION SELECT i.indexname::regclass) t "
            "JOIN pg_stat_user_indexes s ON s.indexrelid = t.relid "
            "WHERE i.tablename = 'evaluation' GROUP BY i.indexname ORDER BY i.indexname"
        )
        for row in rows:
            print(
                f"      {row['indexname']:<36} scans {row['scans']:>6}  "
                f"{row['size'] / 2**20:8.1f} MB"
            )
    finally:
        await conn.close()


TIME_QUESTIONS = {
    "a city's month by level": MONTH_SQL,
    "the rollups' first recent rating": (
        "SELECT min(id) FROM evaluation WHERE received_at >= $2 AND id > 0 AND $1::text IS NOT NULL"
        " AND $3::timestamptz IS NOT NULL"
    ),
    "one day's ratings in id order": (
        "SELECT id, level, comment FROM evaluation WHERE received_at >= $2 AND received_at < $3"
        " AND $1::text IS NOT NULL ORDER BY id"
    ),
}


async def time_indexes(cities: list[str], rounds: int) -> None:
    """The time-range questions with BRIN alone (the schema's own on PostgreSQL), then with a
    b-tree on received_at too (each inside a transaction that is rolled back)."""
    conn = await asyncpg.connect(DSN)
    now = datetime.now(UTC)
    ranges = {
        "a city's month by level": (now - timedelta(days=61), now - timedelta(days=30)),
        "the rollups' first recent rating": (now - timedelta(minutes=5), now),
        "one day's ratings in id order": (now - timedelta(days=3), now - timedelta(days=2)),
    }
    try:
        for label in ("BRIN alone", "b-tree and BRIN"):
            tr = conn.transaction()
            await tr.start()
            if label == "BRIN alone":
                await conn.execute("DROP INDEX IF EXISTS ix_evaluation_received")
            else:
                await conn.execute(
                    "CREATE INDEX IF NOT EXISTS ix_evaluation_received ON evaluation (received_at)"
                )
                await conn.execute("ANALYZE evaluation")
            for question, sql in TIME_QUESTIONS.items():
                since, until = ranges[question]
                times = []
                for r in range(rounds):
                    t = time.perf_counter()
                    await conn.fetch(sql, cities[r % len(cities)] + "%", since, until)
                    times.append(time.perf_counter() - t)
                plan = await conn.fetch("EXPLAIN " + sql, cities[0] + "%", since, until)
                used = sorted({w for row in plan for w in row[0].split() if w.startswith("ix_")})
                print(f"    {label:<16} {question:<34} {ms(times)}  ({', '.join(used)})")
            await tr.rollback()
    finally:
        await conn.close()


async def lists(rounds: int) -> None:
    """The lists alone: a hall's, a county's, a city's and the province's first page."""
    _, _, _, _, _, province = dashboard.build_reference()
    engine = make_engine(harness.settings_for(URL))
    maker = make_sessionmaker(engine)
    try:
        await unit_list(maker, hall_paths(province, 40), 3)
        for label, paths in (
            ("a hall's", hall_paths(province, 40)),
            ("a county's", province.county_paths[::4]),
            ("a city's", province.city_paths),
            ("the province's", ["/P/"]),
        ):
            times = await unit_list(maker, paths, rounds)
            print(f"    {label + ' newest first (20):':<36} {ms(times)}")
    finally:
        await engine.dispose()


async def measure(n: int, rounds: int, intake_rows: int) -> None:
    _, _, _, _, _, province = dashboard.build_reference()
    halls = hall_paths(province, 40)
    engine = make_engine(harness.settings_for(URL))
    maker = make_sessionmaker(engine)
    try:
        conn = await asyncpg.connect(DSN)
        await conn.execute("SELECT pg_stat_reset()")
        await conn.close()
        rate, lat = await intake(n, intake_rows)
        print(f"    intake, single-row INSERT + commit: {rate:,.0f} ratings/s, {ms(lat)}")
        await unit_list(maker, halls, 3)  # warm the connection and the catalogue
        print(
            f"    a hall's ratings newest first (20): {ms(await unit_list(maker, halls, rounds))}"
        )
        print(
            f"    the province's newest first (20):   {ms(await unit_list(maker, ['/P/'], rounds))}"
        )
        times, total = await month_figures(province.city_paths, rounds)
        print(f"    a city's last month by level:       {ms(times)} ({total:,} ratings)")
        times, count = await ledger_day(maker, min(rounds, 10))
        print(f"    one day read + SM3 (ledger verify): {ms(times)} ({count:,} ratings)")
        await plans(maker, halls[0], province.city_paths[0])
        await disk_and_indexes(n)
        await time_indexes(province.city_paths, rounds)
    finally:
        await engine.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--intake-rows", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep hcp_scale at the end")
    parser.add_argument(
        "--time-indexes",
        action="store_true",
        help="only the b-tree/BRIN comparison, on the kept database",
    )
    parser.add_argument("--lists", action="store_true", help="only the lists, on the kept database")
    parser.add_argument(
        "--compare-plain",
        action="store_true",
        help="each size also at 0029 (one plain table) first, as the baseline of the same run",
    )
    args = parser.parse_args()
    if args.time_indexes:
        _, _, _, _, _, province = dashboard.build_reference()
        await time_indexes(province.city_paths, args.rounds)
        return 0
    if args.lists:
        await lists(args.rounds)
        return 0
    print(f"machine: {os.uname().nodename}, {os.cpu_count()} cores")
    shapes = (True, False) if args.compare_plain else (False,)
    for n in (int(s) for s in args.sizes.split(",")):
        for plain in shapes:
            shape = "plain table (0029)" if plain else "monthly partitions (head)"
            print(f"== {n:,} ratings, {shape} (load average {os.getloadavg()[0]:.1f})")
            t0 = time.perf_counter()
            times = await build(n, plain=plain)
            print(
                f"    loaded in {time.perf_counter() - t0:.0f} s: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
            )
            await measure(n, args.rounds, args.intake_rows)
            print(f"    (load average {os.getloadavg()[0]:.1f})")
    if not args.keep:
        await harness.drop_pg_database(DBNAME)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
