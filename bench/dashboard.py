"""The dashboard questions at province scale: the read side against GROUP BY on the ratings.

    .venv/bin/python bench/dashboard.py [--ratings 10000000] [--reuse] [--rounds 20]
    .venv/bin/python bench/dashboard.py --ratings 200000          # a quick run

Builds (or with --reuse keeps) the PostgreSQL database `hcp_bench` (postgres@127.0.0.1:5432)
holding a synthetic province: 15 cities, 150 counties, 3,000 units (halls and departments, the
halls with 10 windows each), 20,000 staff, 5,000 items, and N ratings over the two years up to
today, loaded set-based (INSERT ... SELECT generate_series, not through the API), with a work
order for every bad rating and a few ratings made invalid or held, as appeals and the register
do. Reference data goes into the real tables, so the service can run on the same database.

Then it times the five dashboard questions of issue 10, each answered in turn by

- `groupby`: hand-written GROUP BY on the ratings table (the best single statement: subtree
  as a path range, the counted-rating rules of `evaluations/standing.py`),
- `rollup`: the rollup tables of `analytics/rollups.py`, refreshed first,
- `api`: the service's `/api/v1/stats/*` routes on a real uvicorn server (when they exist),

with 1 and 4 concurrent users (p50, p95, ms), and prints the ratio of each to `groupby`.
Last it times the rollup refresh after a day of `--day-ratings` (1,000,000) new ratings, with
late ratings, upheld appeals and invalidations among them. The database stays for --reuse;
`--drop` removes it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import quote

import asyncpg
import harness
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.accounts import service as account_service
from haochaping.analytics import jobs as analytics_jobs
from haochaping.analytics import rollups, snapshots
from haochaping.db.session import make_engine, make_sessionmaker

DBNAME = "hcp_bench"
PG = "postgresql://postgres@127.0.0.1:5432"
CHINA = timezone(timedelta(hours=8), "CST")
CITIES, COUNTIES_PER_CITY, UNITS_PER_COUNTY = 15, 10, 20
HALLS_PER_COUNTY, WINDOWS_PER_HALL = 2, 10
STAFF, ITEMS = 20_000, 5_000
PROVINCE = "990000"
CHUNK = 1_000_000
NATIONAL_VERSION = "national-2020"
# Reason tags per level (reason-codes.csv): a bad rating names one or two of them.
REASONS = {
    5: ["510", "511", "513", "517"],
    4: ["406", "410", "411", "413"],
    3: ["307", "309", "311", "314"],
    2: ["207", "209", "211", "213", "214"],
    1: ["108", "109", "110", "113", "114"],
}
POINTS = {5: 10, 4: 8, 3: 6, 2: 3, 1: 0}


# --- the province ----------------------------------------------------------------------------


@dataclass
class Province:
    """Ids and paths of the synthetic province, computed (not read back) from its shape."""

    city_paths: list[str] = field(default_factory=list)
    county_paths: list[str] = field(default_factory=list)
    unit_ids: list[int] = field(default_factory=list)


def city_code(c: int) -> str:
    return f"C{c:02d}"


def county_code(c: int, k: int) -> str:
    return f"C{c:02d}K{k:02d}"


def build_reference() -> tuple[list, list, list, list, list, Province]:
    """Rows of region, org, staff, item and the unit lookup (ids assigned here)."""
    now = datetime.now(UTC)
    regions = [(PROVINCE, "示范省", None, 1, f"/{PROVINCE}/", now)]
    orgs = [(1, "P", "示范省政务服务管理办公室", "department", None, PROVINCE, "/P/", now)]
    units = []  # (idx, org id, region code, first window id or 0, path)
    province = Province()
    next_id = 2
    for c in range(1, CITIES + 1):
        city_region = f"99{c:02d}00"
        regions.append((city_region, f"第{c}市", PROVINCE, 2, f"/{PROVINCE}/{city_region}/", now))
        city_id, city_path = next_id, f"/P/{city_code(c)}/"
        next_id += 1
        orgs.append(
            (city_id, city_code(c), f"第{c}市政务服务管理办公室", "department", 1, city_region,
             city_path, now)
        )  # fmt: skip
        province.city_paths.append(city_path)
        for k in range(1, COUNTIES_PER_CITY + 1):
            region = f"99{c:02d}{k:02d}"
            regions.append(
                (region, f"第{c}市第{k}县", city_region, 3,
                 f"/{PROVINCE}/{city_region}/{region}/", now)
            )  # fmt: skip
            county_id, county_path = next_id, f"{city_path}{county_code(c, k)}/"
            next_id += 1
            orgs.append(
                (county_id, county_code(c, k), f"第{c}市第{k}县政务服务管理办公室", "department",
                 city_id, region, county_path, now)
            )  # fmt: skip
            province.county_paths.append(county_path)
            for u in range(1, UNITS_PER_COUNTY + 1):
                hall = u <= HALLS_PER_COUNTY
                code = f"{county_code(c, k)}U{u:02d}"
                unit_id, unit_path = next_id, f"{county_path}{code}/"
                next_id += 1
                orgs.append(
                    (unit_id, code, f"第{c}市第{k}县{'政务服务中心' if hall else '部门'}{u}",
                     "hall" if hall else "department", county_id, region, unit_path, now)
                )  # fmt: skip
                first_window = 0
                if hall:
                    first_window = next_id
                    for w in range(1, WINDOWS_PER_HALL + 1):
                        orgs.append(
                            (next_id, f"{code}W{w:02d}", f"{w}号窗口", "window", unit_id, region,
                             f"{unit_path}{code}W{w:02d}/", now)
                        )  # fmt: skip
                        next_id += 1
                units.append((len(units), unit_id, region, first_window, unit_path))
                province.unit_ids.append(unit_id)
    n_units = len(units)
    # Staff k works in unit k mod 3000 (6 or 7 each); ids 1..20000.
    staff = [
        (k + 1, f"GH{k + 1:06d}", f"工作人员{k + 1}", units[k % n_units][1], now)
        for k in range(STAFF)
    ]
    items = [
        (j + 1, f"ITEM{j + 1:05d}", f"BASIC{j % 800:04d}", f"政务服务事项{j + 1}",
         units[(j * 7) % n_units][1], now)
        for j in range(ITEMS)
    ]  # fmt: skip
    return regions, orgs, staff, items, units, province


async def create_database(fresh: bool) -> bool:
    """Make sure `hcp_bench` exists; True when it was (re)created."""
    conn = await asyncpg.connect(f"{PG}/test")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DBNAME)
        if exists and not fresh:
            return False
        if exists:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                DBNAME,
            )
            await conn.execute(f'DROP DATABASE "{DBNAME}"')
        await conn.execute(f'CREATE DATABASE "{DBNAME}"')
        return True
    finally:
        await conn.close()


# The ratings, set-based. One row per g; random() draws are independent per row. The unit is
# skewed (a few big halls take many ratings, as in real provinces), the channel mix follows the
# demo province, about 1.2 % of ratings are bad, 2 % are system defaults.
RATINGS_SQL = """
INSERT INTO evaluation (id, case_id, stage, eval_count, channel, level, reasons, comment,
    tagset_version, org_id, item_id, window_id, staff_id, region_code, rater_type, anonymous,
    is_public, is_default, evaluated_at, received_at)
SELECT g, NULL, 'whole', 1, x.channel, x.level,
    CASE WHEN x.level <= 2 AND x.r5 < 0.3
         THEN json_build_array(x.reason, (($8::text[])[x.level * 5 - 4 + ((x.pick + 2) % 5)]))
         ELSE json_build_array(x.reason) END,
    CASE WHEN x.level <= 2 THEN '等了很久，材料被要求多次提交' END,
    $4, u.org_id, 1 + floor(x.r4 * x.r4 * $5::int)::int,
    CASE WHEN u.first_window > 0 THEN u.first_window + floor(x.r5 * 10)::int END,
    CASE WHEN x.channel IN ('pad', 'qrcode', 'terminal')
         THEN 1 + u.idx + $6::int * floor(x.r6 * CASE WHEN u.idx < $7::int % $6::int
             THEN $7::int / $6::int + 1 ELSE $7::int / $6::int END)::int END,
    u.region_code, 'person', false, true, x.r2 < 0.02,
    x.at - interval '40 seconds'
        - CASE WHEN $11::bool AND g % 50 = 0 THEN (1 + g % 20) * interval '1 day'
               ELSE interval '0 seconds' END,
    x.at
FROM generate_series($1::bigint, $2::bigint) AS g
CROSS JOIN LATERAL (
    SELECT r1, r2, r3, r4, r5, r6, at, pick, level, uidx,
        CASE WHEN level >= 3 THEN ($8::text[])[level * 5 - 4 + pick % 4]
             ELSE ($8::text[])[level * 5 - 4 + pick % 5] END AS reason,
        CASE WHEN r3 < 0.40 THEN 'pad' WHEN r3 < 0.55 THEN 'qrcode' WHEN r3 < 0.67 THEN 'sms'
             WHEN r3 < 0.73 THEN 'phone' WHEN r3 < 0.78 THEN 'terminal'
             WHEN r3 < 0.90 THEN 'mobile' ELSE 'pc' END AS channel
    FROM (
        SELECT r1, r2, r3, r4, r5, r6, pick, uidx,
            $3::timestamptz + (g - $1) * $9::interval + r6 * $9::interval AS at,
            CASE WHEN r1 < 0.006 THEN 1 WHEN r1 < 0.012 THEN 2 WHEN r1 < 0.05 THEN 3
                 WHEN r1 < 0.22 THEN 4 ELSE 5 END AS level
        FROM (SELECT random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                     random() AS r5, random() AS r6, floor(random() * 20)::int AS pick,
                     (floor(power(random(), 1.6) * $10::int)::int * 1103) % $10::int AS uidx,
                     g AS gg) AS d
    ) AS y
) AS x
JOIN bench_unit u ON u.idx = x.uidx
"""


async def load(dsn: str, n: int) -> dict[str, float]:
    """Reference data, n ratings, their work orders and standings; seconds per step."""
    regions, orgs, staff, items, units, _ = build_reference()
    times: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        await conn.copy_records_to_table(
            "region",
            records=regions,
            columns=["code", "name", "parent_code", "tier", "path", "created_at"],
        )
        await conn.copy_records_to_table(
            "org",
            records=orgs,
            columns=[
                "id", "code", "name", "kind", "parent_id", "region_code", "path", "created_at"
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "staff", records=staff, columns=["id", "staff_no", "name", "org_id", "created_at"]
        )
        await conn.copy_records_to_table(
            "item",
            records=items,
            columns=["id", "code", "basic_code", "name", "org_id", "created_at"],
        )
        for table in ("org", "staff", "item"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute(
            "CREATE UNLOGGED TABLE bench_unit (idx int PRIMARY KEY, org_id bigint, "
            "region_code text, first_window bigint)"
        )
        await conn.copy_records_to_table(
            "bench_unit", records=[u[:4] for u in units], columns=["idx", "org_id",
            "region_code", "first_window"]
        )  # fmt: skip
        times["reference data"] = time.perf_counter() - t0

        # Secondary indexes are built once after the load, not maintained row by row.
        t0 = time.perf_counter()
        index_defs = await drop_secondary_indexes(conn, "evaluation")
        end = datetime.now(UTC)  # up to now: today's figures are live
        start = end - timedelta(days=730)
        step = timedelta(days=730) / n
        for lo in range(1, n + 1, CHUNK):
            hi = min(lo + CHUNK - 1, n)
            await insert_ratings(conn, lo, hi, start + (lo - 1) * step, step, len(units))
            print(f"  loaded {hi:>11,} ratings  ({time.perf_counter() - t0:.0f} s)", flush=True)
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('evaluation', 'id'), (SELECT max(id) FROM "
            "evaluation))"
        )
        times["ratings"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for ddl in index_defs:
            await conn.execute(ddl)
        times["rating indexes"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await open_work_orders(conn, 1)
        await set_standings(conn, 1)
        times["work orders, standings"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        times["vacuum analyze"] = time.perf_counter() - t0
    finally:
        await conn.close()
    return times


async def drop_secondary_indexes(conn, table: str) -> list[str]:
    """Drop a table's indexes other than its primary key; returns the DDL to rebuild them."""
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef, c.conname FROM pg_indexes i "
        "LEFT JOIN pg_constraint c ON c.conname = i.indexname "
        "WHERE i.tablename = $1 AND i.indexname NOT LIKE '%pkey'",
        table,
    )
    ddl = []
    for row in rows:
        if row["conname"]:  # a unique constraint's index: keep it (the load needs none)
            continue
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        # A partitioned table's index reads `ON ONLY`: rebuilt without it, on every partition.
        ddl.append(row["indexdef"].replace(" ON ONLY ", " ON "))
    return ddl


async def insert_ratings(
    conn, lo: int, hi: int, start: datetime, step: timedelta, units: int, late: bool = False
):
    """Ratings lo..hi, received from `start` on, one every `step` (with jitter); with `late`
    one in 50 was rated 1-20 days before it was received (an offline pad catching up)."""
    tags = [code for level in (1, 2, 3, 4, 5) for code in (REASONS[level] + [None] * 5)[:5]]
    await conn.execute(
        RATINGS_SQL,
        lo,
        hi,
        start,
        NATIONAL_VERSION,
        ITEMS,
        units,
        STAFF,
        tags,
        step,
        units,
        late,
    )


async def open_work_orders(conn, min_id: int) -> None:
    """A work order for every bad rating from min_id on, in the realistic mix of states."""
    await conn.execute(
        """
        INSERT INTO work_order (evaluation_id, origin, org_id, region_code, state, version,
            policy, opened_at, verify_due_at, verify_warn_at, rectify_due_at, rectify_warn_at,
            callback_due_at, deadlines_verified, verified_at, rectified_at, closed_at,
            escalations, callback_attempts, followups, updated_at)
        SELECT e.id, 'bad_rating', e.org_id, e.region_code,
            CASE WHEN e.id % 33 = 0 THEN 'invalidated'
                 WHEN e.received_at > now() - interval '3 days' THEN 'verifying'
                 WHEN e.received_at > now() - interval '15 days' THEN 'rectifying'
                 ELSE 'closed' END,
            1, '{"verify_days": 3, "rectify_days": 10, "callback_days": 3}'::json,
            e.received_at, e.received_at + interval '3 days', e.received_at + interval '2 days',
            e.received_at + interval '15 days', e.received_at + interval '13 days',
            e.received_at + interval '18 days', true,
            CASE WHEN e.received_at <= now() - interval '3 days'
                 THEN e.received_at + interval '1 day' END,
            CASE WHEN e.received_at <= now() - interval '15 days'
                 THEN e.received_at + (CASE WHEN e.id % 10 = 0 THEN 20 ELSE 8 END)
                      * interval '1 day' END,
            CASE WHEN e.received_at <= now() - interval '15 days'
                 THEN e.received_at + interval '22 days' END,
            0, CASE WHEN e.received_at <= now() - interval '15 days' THEN 1 ELSE 0 END, 0,
            e.received_at
        FROM evaluation e
        WHERE e.id >= $1 AND e.level <= 2 AND e.eval_count = 1 AND NOT e.is_default
        ON CONFLICT (evaluation_id) DO NOTHING
        """,
        min_id,
    )


async def set_standings(conn, min_id: int) -> None:
    """Upheld appeals (3 in 100 bad ratings invalid) and the register (1 in 10,000 held)."""
    await conn.execute(
        """
        INSERT INTO evaluation_standing (evaluation_id, standing, reason, decided_by, updated_at)
        SELECT id, CASE WHEN level <= 2 AND id % 33 = 0 THEN 'invalid' ELSE 'held' END,
            CASE WHEN level <= 2 AND id % 33 = 0 THEN 'appeal_upheld' ELSE 'malicious_rater' END,
            'bench', received_at + interval '5 days'
        FROM evaluation
        WHERE id >= $1 AND ((level <= 2 AND id % 33 = 0) OR id % 10007 = 0)
        ON CONFLICT (evaluation_id) DO NOTHING
        """,
        min_id,
    )
    await conn.execute(STANDING_EVENTS_SQL, min_id)


# Every standing has its change on record, as `evaluations/standing.set_standing` writes it.
STANDING_EVENTS_SQL = """
INSERT INTO standing_event (evaluation_id, from_standing, to_standing, reason, actor, created_at)
SELECT s.evaluation_id, 'valid', s.standing, s.reason, s.decided_by, s.updated_at
FROM evaluation_standing s
WHERE s.evaluation_id >= $1
  AND NOT EXISTS (SELECT 1 FROM standing_event e WHERE e.evaluation_id = s.evaluation_id)
ORDER BY s.evaluation_id
"""


# --- the questions -----------------------------------------------------------------------------


@dataclass
class Periods:
    """The periods the questions ask about, in Asia/Shanghai time."""

    today: date

    def day_start(self, d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=CHINA)

    def last_days(self, n: int) -> tuple[datetime, datetime]:
        """The n whole days up to and including today (now is within today)."""
        end = self.today + timedelta(days=1)
        return self.day_start(end - timedelta(days=n)), self.day_start(end)

    def month(self, back: int) -> tuple[str, datetime, datetime]:
        """The calendar month `back` months before the current one."""
        y, m = self.today.year, self.today.month - back
        while m < 1:
            y, m = y - 1, m + 12
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        return f"{y}-{m:02d}", datetime(y, m, 1, tzinfo=CHINA), datetime(ny, nm, 1, tzinfo=CHINA)

    def quarter(self, back: int) -> tuple[str, datetime, datetime]:
        """The calendar quarter `back` quarters before the current one."""
        q = (self.today.month - 1) // 3 - back
        y = self.today.year + q // 4
        q %= 4
        start = datetime(y, q * 3 + 1, 1, tzinfo=CHINA)
        end = datetime(y + (q == 3), (q * 3 + 3) % 12 + 1, 1, tzinfo=CHINA)
        return f"{y}-Q{q + 1}", start, end

    def year(self, back: int) -> tuple[str, datetime, datetime]:
        y = self.today.year - back
        return str(y), datetime(y, 1, 1, tzinfo=CHINA), datetime(y + 1, 1, 1, tzinfo=CHINA)


QUESTIONS = [
    ("city 30 days", "a city's summary over the last 30 days"),
    ("county 90-day series", "a county's daily series over 90 days"),
    ("month unit ranking", "a month's ranking of the province's units (window, else org)"),
    ("quarter bad reasons", "a quarter's bad-review reasons, province-wide"),
    ("year channel x level", "a year's channel x level mix, province-wide"),
]


def path_end(path: str) -> str:
    """The smallest string above every path under `path` ("/P/C01/" -> "/P/C010")."""
    return path[:-1] + chr(ord("/") + 1)


# GROUP BY on the ratings table: what a dashboard without a read model runs. Every question
# takes the counted ratings only (first ratings, no system defaults, not invalid or held).
COUNTED = (
    "e.eval_count = 1 AND NOT e.is_default AND NOT EXISTS (SELECT 1 FROM evaluation_standing s "
    "WHERE s.evaluation_id = e.id AND s.standing IN ('invalid', 'held'))"
)
POINTS_SQL = "CASE e.level WHEN 5 THEN 10 WHEN 4 THEN 8 WHEN 3 THEN 6 WHEN 2 THEN 3 ELSE 0 END"
GROUPBY = {
    "city 30 days": f"""
        SELECT count(*) AS total, count(*) FILTER (WHERE e.level >= 3) AS good,
            sum({POINTS_SQL}) AS points
        FROM evaluation e JOIN org o ON o.id = e.org_id
        WHERE o.path >= $1 AND o.path < $2 AND e.received_at >= $3 AND e.received_at < $4
          AND {COUNTED}""",
    "county 90-day series": f"""
        SELECT (e.received_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS total,
            count(*) FILTER (WHERE e.level >= 3) AS good, sum({POINTS_SQL}) AS points
        FROM evaluation e JOIN org o ON o.id = e.org_id
        WHERE o.path >= $1 AND o.path < $2 AND e.received_at >= $3 AND e.received_at < $4
          AND {COUNTED}
        GROUP BY 1 ORDER BY 1""",
    "month unit ranking": f"""
        SELECT o.code, o.name, t.total, t.good, t.points,
            rank() OVER (ORDER BY t.points::float / t.total DESC) AS rank
        FROM (SELECT coalesce(e.window_id, e.org_id) AS unit, count(*) AS total,
                  count(*) FILTER (WHERE e.level >= 3) AS good, sum({POINTS_SQL}) AS points
              FROM evaluation e
              WHERE e.received_at >= $3 AND e.received_at < $4 AND {COUNTED}
              GROUP BY 1) AS t
        JOIN org o ON o.id = t.unit
        WHERE o.path >= $1 AND o.path < $2 AND t.total >= 30
        ORDER BY rank""",
    "quarter bad reasons": f"""
        SELECT r.code, count(*) AS n
        FROM evaluation e JOIN org o ON o.id = e.org_id
        CROSS JOIN LATERAL json_array_elements_text(e.reasons) AS r(code)
        WHERE o.path >= $1 AND o.path < $2 AND e.received_at >= $3 AND e.received_at < $4
          AND e.level <= 2 AND {COUNTED}
        GROUP BY r.code ORDER BY n DESC, r.code""",
    "year channel x level": f"""
        SELECT e.channel, e.level, count(*) AS n
        FROM evaluation e JOIN org o ON o.id = e.org_id
        WHERE o.path >= $1 AND o.path < $2 AND e.received_at >= $3 AND e.received_at < $4
          AND {COUNTED}
        GROUP BY 1, 2 ORDER BY 1, 2""",
}


def question_args(question: str, k: int, province: Province, periods: Periods) -> tuple:
    """The k-th asking of a question: (scope path, its end, since, until), varied by k."""
    if question == "city 30 days":
        path = province.city_paths[k % len(province.city_paths)]
        since, until = periods.last_days(30)
    elif question == "county 90-day series":
        path = province.county_paths[(k * 37) % len(province.county_paths)]
        since, until = periods.last_days(90)
    elif question == "month unit ranking":
        path, (_, since, until) = "/P/", periods.month(1 + k % 12)
    elif question == "quarter bad reasons":
        path, (_, since, until) = "/P/", periods.quarter(1 + k % 4)
    else:
        path, (_, since, until) = "/P/", periods.year(1)
    return path, path_end(path), since, until


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Latencies of one way of answering one question at one concurrency, in seconds."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def p(self, q: float) -> float:
        return harness.percentile(sorted(self.latencies), q) * 1000


async def timed_rounds(
    ask: Callable[[int, int], Awaitable[object]], users: int, rounds: int
) -> Timing:
    """`users` concurrent askers, each asking `rounds` times one after the other."""
    timing = Timing()

    async def user(u: int) -> None:
        for k in range(rounds):
            t0 = time.perf_counter()
            try:
                await ask(u, u * rounds + k)
            except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                timing.errors += 1
                if timing.errors == 1:
                    print(f"    error: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
                continue
            timing.latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(user(u) for u in range(users)))
    return timing


async def groupby_asker(dsn: str, users: int, province: Province, periods: Periods):
    """An `ask(user, k, question)` over one asyncpg connection per user."""
    conns = [await harness.pg_connect(dsn) for _ in range(users)]

    def make(question: str):
        async def ask(u: int, k: int):
            return await conns[u].fetch(
                GROUPBY[question], *question_args(question, k, province, periods)
            )

        return ask

    async def close():
        for c in conns:
            await c.close()

    return make, close


# --- the read model alone (analytics/rollups.py) ----------------------------------------------


async def org_scopes(url: str) -> dict[str, rollups.Scope]:
    """Every organisation's rollup scope, by path."""
    engine = make_engine(harness.settings_for(url))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, path FROM org"))).all()
    finally:
        await engine.dispose()
    return {path: rollups.Scope(org_id=oid, path=path) for oid, path in rows}


def rank_units(units: dict[int, rollups.Measures]) -> list[tuple[int, int, int]]:
    """(unit, total, rank) by score, units with 30 ratings or more (as the GROUP BY does)."""
    scored = [
        (key, m.total(), m.points(POINTS) / m.total())
        for key, m in units.items()
        if m.total() >= 30
    ]
    scored.sort(key=lambda x: -x[2])
    out, rank = [], 0
    for i, (key, total, score) in enumerate(scored):
        if i == 0 or score != scored[i - 1][2]:
            rank = i + 1
        out.append((key, total, rank))
    return out


async def rollup_answer(
    db: AsyncSession, question: str, k: int, scopes: dict, province: Province, periods: Periods
):
    """The k-th asking of a question, answered by the rollups (plus their live tail)."""
    path, _, since, until = question_args(question, k, province, periods)
    scope = scopes[path]
    if question == "city 30 days":
        answer: object = await rollups.summary(db, scope=scope, since=since, until=until)
    elif question == "county 90-day series":
        answer = await rollups.daily(db, scope=scope, since=since, until=until)
    elif question == "month unit ranking":
        units = await rollups.by_key(db, scope=scope, dim="unit", since=since, until=until)
        answer = None if units is None else rank_units(units)
    elif question == "quarter bad reasons":
        answer = await rollups.by_reason(db, scope=scope, since=since, until=until)
    else:
        answer = await rollups.by_channel(db, scope=scope, since=since, until=until)
    if answer is None:
        raise RuntimeError(f"{question}: the rollups cannot answer {since} .. {until}")
    return answer


async def rollup_asker(url: str, users: int, province: Province, periods: Periods):
    engine = make_engine(harness.settings_for(url))
    sm = make_sessionmaker(engine)
    scopes = await org_scopes(url)

    def make(question: str):
        async def ask(u: int, k: int):
            async with sm() as db:
                return await rollup_answer(db, question, k, scopes, province, periods)

        return ask

    return make, engine.dispose


def comparable(question: str, way: str, answer) -> object:
    """An answer reduced to what both ways give, to check that they agree."""
    if way == "groupby":
        if question == "city 30 days":
            return tuple(int(answer[0][c] or 0) for c in ("total", "good", "points"))
        if question == "county 90-day series":
            return {r["day"]: (r["total"], r["good"], r["points"]) for r in answer}
        if question == "month unit ranking":
            return sorted((r["rank"], r["total"]) for r in answer)
        if question == "quarter bad reasons":
            return {r["code"]: r["n"] for r in answer}
        return {(r["channel"], r["level"]): r["n"] for r in answer}
    good = (3, 4, 5)
    if question == "city 30 days":
        return (answer.total(), answer.good(good), answer.points(POINTS))
    if question == "county 90-day series":
        return {
            d: (m.total(), m.good(good), m.points(POINTS)) for d, m in answer.items() if m.total()
        }
    if question == "month unit ranking":
        return sorted((rank, total) for _, total, rank in answer)
    if question == "quarter bad reasons":
        bad = {code: m.valid[1] + m.valid[2] for code, m in answer.items()}
        return {code: n for code, n in bad.items() if n}
    return {
        (ch, lvl): m.valid[lvl] for ch, m in answer.items() for lvl in range(1, 6) if m.valid[lvl]
    }


async def check_agreement(dsn: str, url: str, province: Province, periods: Periods) -> bool:
    """Do the rollups give the GROUP BY's answers? (Two askings of each question.)"""
    scopes = await org_scopes(url)
    engine = make_engine(harness.settings_for(url))
    conn = await asyncpg.connect(dsn)
    ok = True
    try:
        async with make_sessionmaker(engine)() as db:
            for question, _ in QUESTIONS:
                for k in (0, 1):
                    want = await conn.fetch(
                        GROUPBY[question], *question_args(question, k, province, periods)
                    )
                    got = await rollup_answer(db, question, k, scopes, province, periods)
                    same = comparable(question, "groupby", want) == comparable(
                        question, "rollup", got
                    )
                    ok &= same
                    if not same:
                        print(f"  MISMATCH: {question} (asking {k})")
    finally:
        await conn.close()
        await engine.dispose()
    return ok


async def build_rollups(url: str, rebuild: bool) -> None:
    """Fold every rating not yet in the rollups (all of them the first time, or with
    `rebuild`)."""
    engine = make_engine(harness.settings_for(url))
    try:
        t0 = time.perf_counter()
        build = rollups.rebuild if rebuild else rollups.refresh
        report = await build(make_sessionmaker(engine))
        took = time.perf_counter() - t0
        async with engine.connect() as conn:
            sizes = (
                await conn.execute(
                    text(
                        "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))"
                        " FROM pg_stat_user_tables WHERE relname LIKE 'stat_%' ORDER BY relname"
                    )
                )
            ).all()
        print(f"rollups: {report} in {took:.1f} s")
        print("  " + ", ".join(f"{name} {n:,} rows {size}" for name, n, size in sizes))
    finally:
        await engine.dispose()


async def warm_rankings(url: str, cold: bool) -> None:
    """Keep the rankings of closed periods as the scheduler's passes do
    (`analytics/jobs.warm`, here in one go); the API then reads a closed month's ranking from
    its snapshot (`cold`: forget every kept ranking instead, the API computes each)."""
    engine = make_engine(harness.settings_for(url))
    try:
        if cold:
            async with make_sessionmaker(engine)() as db:
                print(f"ranking snapshots: {await snapshots.clear(db)} forgotten (--cold)")
                await db.commit()
            return
        t0 = time.perf_counter()
        report = await analytics_jobs.warm(make_sessionmaker(engine), budget=3600)
        took = time.perf_counter() - t0
        print(f"ranking snapshots: {report.kept} kept, {report.held} held, {took:.1f} s")
    finally:
        await engine.dispose()


# --- a day of new ratings: the refresh ---------------------------------------------------------


async def day_refresh(url: str, n_day: int, units: int) -> None:
    """Time the refresh after a day of n_day new ratings (2 % of them rated days before they
    were received), 1,000 upheld appeals and 200 held ratings reviewed; then a pass with a
    minute's worth and an idle pass. All in one transaction, rolled back: the database is
    left as it was."""
    engine = make_engine(harness.settings_for(url))
    try:
        async with engine.connect() as conn:
            trans = await conn.begin()
            sm = async_sessionmaker(
                bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
            # The driver opens the transaction at the first statement: make it now, so that
            # what goes through the raw connection below is inside it, and rolled back.
            await conn.execute(text("SELECT 1"))
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            now = datetime.now(UTC)
            top = await raw.fetchval("SELECT max(id) FROM evaluation")
            t0 = time.perf_counter()
            step = timedelta(days=1) / n_day
            await insert_ratings(
                raw, top + 1, top + n_day, now - timedelta(days=1), step, units, late=True
            )
            await open_work_orders(raw, top + 1)
            await standing_changes(raw, top, now - timedelta(minutes=10))
            loaded = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = await rollups.refresh(sm, now=now + rollups.GRACE, chunk=n_day + 10)
            took = time.perf_counter() - t0
            print(f"\nrefresh after a day of {n_day:,} new ratings (loaded in {loaded:.0f} s):")
            print(f"  {report}: {took:.1f} s (goal < 30 s)")
            per_minute = max(1, n_day // 1440)
            await insert_ratings(raw, top + n_day + 1, top + n_day + per_minute, now, step, units)
            t0 = time.perf_counter()
            report = await rollups.refresh(sm, now=now + 2 * rollups.GRACE)
            print(f"  a minute's {per_minute} ratings: {report}: {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            report = await rollups.refresh(sm, now=now + 2 * rollups.GRACE)
            print(f"  idle pass: {time.perf_counter() - t0:.3f} s")
            await trans.rollback()
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT max(id) FROM evaluation"))).scalar()
        print(f"  rolled back: the ratings end at id {left:,} again ({top:,} before)")
    finally:
        await engine.dispose()


async def standing_changes(conn, below_id: int, at: datetime) -> None:
    """1,000 upheld appeals (bad ratings made invalid) and 200 held ratings found valid, with
    their events, as `evaluations/standing.set_standing` records them."""
    await conn.execute(
        """
        WITH picked AS (
            SELECT e.id, coalesce(s.standing, 'valid') AS old, 'invalid' AS new
            FROM evaluation e LEFT JOIN evaluation_standing s ON s.evaluation_id = e.id
            WHERE e.id < $1 AND e.level <= 2 AND e.id % 7 = 3 AND s.evaluation_id IS NULL
            ORDER BY e.id DESC LIMIT 1000
        ), held AS (
            SELECT s.evaluation_id AS id, 'held' AS old, 'valid' AS new
            FROM evaluation_standing s WHERE s.standing = 'held'
            ORDER BY s.evaluation_id DESC LIMIT 200
        ), changes AS (SELECT * FROM picked UNION ALL SELECT * FROM held),
        upsert AS (
            INSERT INTO evaluation_standing (evaluation_id, standing, reason, decided_by,
                updated_at)
            SELECT id, new, 'appeal_upheld', 'bench', $2 FROM changes
            ON CONFLICT (evaluation_id) DO UPDATE SET standing = excluded.standing,
                updated_at = excluded.updated_at
        )
        INSERT INTO standing_event (evaluation_id, from_standing, to_standing, reason, actor,
            created_at)
        SELECT id, old, new, 'appeal_upheld', 'bench', $2 FROM changes
        """,
        below_id,
        at,
    )


# --- the service (a real uvicorn server) --------------------------------------------------------

BENCH_USER, BENCH_PASSWORD = "bench-admin", "bench-password-12345"


async def ensure_admin(url: str) -> None:
    """The province office's administrator the API questions are asked as."""
    engine = make_engine(harness.settings_for(url))
    try:
        async with make_sessionmaker(engine)() as db:
            found = (
                await db.execute(
                    text("SELECT 1 FROM app_user WHERE username = :u"), {"u": BENCH_USER}
                )
            ).scalar()
            if not found:
                await account_service.create_user(
                    db=db, username=BENCH_USER, password=BENCH_PASSWORD, role="admin", org_code="P"
                )
                await db.commit()
    finally:
        await engine.dispose()


def api_path(question: str, k: int, province: Province, periods: Periods) -> str:
    """The k-th asking of a question as a /api/v1/stats request."""
    path, _, since, until = question_args(question, k, province, periods)
    code = path.strip("/").split("/")[-1]
    span = f"since={quote(since.isoformat())}&until={quote(until.isoformat())}"
    if question == "city 30 days":
        return f"/api/v1/stats/summary?org_code={code}&{span}"
    if question == "county 90-day series":
        return f"/api/v1/stats/timeseries?granularity=day&org_code={code}&{span}"
    if question == "month unit ranking":
        return f"/api/v1/stats/rankings?tier=department&period={since:%Y-%m}"
    if question == "quarter bad reasons":
        return f"/api/v1/stats/breakdown?by=reason&{span}"
    return f"/api/v1/stats/breakdown?by=channel&{span}"


async def api_asker(server: harness.Server, users: int, province: Province, periods: Periods):
    async with httpx.AsyncClient(base_url=server.base) as client:
        r = await client.post(
            "/api/v1/auth/token", data={"username": BENCH_USER, "password": BENCH_PASSWORD}
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    conns = [await harness.HttpConnection.open("127.0.0.1", server.port) for _ in range(users)]

    def make(question: str):
        async def ask(u: int, k: int):
            status, body = await conns[u].request(
                "GET", api_path(question, k, province, periods), headers=headers
            )
            if status != 200:
                raise RuntimeError(f"{status}: {body[:300]!r}")
            return body

        return ask

    async def close():
        for c in conns:
            c.close()

    return make, close


# --- main -----------------------------------------------------------------------------------


def print_table(results: dict, ways: list[str], users_list: list[int]) -> None:
    """One line per question and way: p50/p95 per concurrency and the ratio to GROUP BY."""
    head = f"  {'question':<22} {'way':<8}" + "".join(
        f" | {u} user{'s' if u > 1 else ' '} p50    p95   ratio" for u in users_list
    )
    print(head)
    for question, _ in QUESTIONS:
        for way in ways:
            line = f"  {question:<22} {way:<8}"
            for users in users_list:
                t = results.get((way, question, users))
                base = results.get(("groupby", question, users))
                if t is None or not t.latencies:
                    line += " | " + "-".center(26)
                    continue
                ratio = t.p(95) / base.p(95) if base and base.latencies else float("nan")
                line += f" | {t.p(50):8.1f} {t.p(95):7.1f} {ratio:7.3f}"
                if t.errors:
                    line += f" ({t.errors} errors)"
            print(line)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the database if it has the data")
    parser.add_argument("--db", default="hcp_bench", help="the database's name")
    parser.add_argument("--drop", action="store_true", help="drop hcp_bench at the end")
    parser.add_argument("--rounds", type=int, default=20, help="askings per user and question")
    parser.add_argument("--users", default="1,4", help="concurrencies, comma-separated")
    parser.add_argument("--ways", default="groupby,rollup,api", help="groupby,rollup,api")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="build the rollups anew")
    parser.add_argument(
        "--cold", action="store_true", help="no kept rankings: the API computes every ranking"
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes (api)")
    parser.add_argument(
        "--day-ratings", type=int, default=0, help="time the refresh after a day of N ratings"
    )
    args = parser.parse_args()
    global DBNAME
    DBNAME = args.db
    users_list = [int(u) for u in args.users.split(",")]
    ways = args.ways.split(",")
    dsn = f"{PG}/{DBNAME}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DBNAME}"

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    created = await create_database(fresh=not args.reuse)
    conn = await asyncpg.connect(dsn)
    try:
        have = 0
        if not created:
            have = await conn.fetchval(
                "SELECT CASE WHEN to_regclass('evaluation') IS NULL THEN 0 "
                "ELSE (SELECT count(*) FROM evaluation) END"
            )
        pg_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    if not created and have != args.ratings:
        print(f"{DBNAME} holds {have:,} ratings, not {args.ratings:,}: building it anew")
        await create_database(fresh=True)
        created = True
    print(f"PostgreSQL {pg_version}, database {DBNAME}")
    await asyncio.to_thread(harness.migrate, url)  # a kept database gets new revisions too
    if created:
        t0 = time.perf_counter()
        times = await load(dsn, args.ratings)
        print(
            f"loaded {args.ratings:,} ratings in {time.perf_counter() - t0:.0f} s: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        )
    else:
        print(f"reusing {DBNAME}: {have:,} ratings")
    await describe(dsn)
    if args.load_only:
        return 0

    _, _, _, _, _, province = build_reference()
    periods = Periods(today=datetime.now(CHINA).date())
    if "rollup" in ways or "api" in ways or args.day_ratings:
        await build_rollups(url, args.rebuild)
    if "rollup" in ways:
        same = await check_agreement(dsn, url, province, periods)
        print(f"rollups agree with GROUP BY on every question: {'yes' if same else 'NO'}")
    server = None
    if "api" in ways:
        await warm_rankings(url, cold=args.cold)
    if "api" in ways:
        await ensure_admin(url)
        server = harness.Server(
            url,
            workers=args.workers,
            access_log=False,
            env={"HAOCHAPING_JOB_INTERVAL_SECONDS": "0", "HAOCHAPING_DB_POOL_SIZE": "8"},
        )
        server.start()
        await server.wait_ready()
    results: dict = {}
    try:
        await time_ways(ways, users_list, args.rounds, dsn, url, server, province, periods, results)
    finally:
        if server is not None:
            server.stop()
    print(f"\nlatency ms (p50, p95) and p95 ratio to groupby; {args.rounds} rounds per user")
    print_table(results, ways, users_list)
    print(f"load average: {os.getloadavg()[0]:.1f}")
    if args.day_ratings:
        await day_refresh(url, args.day_ratings, len(province.unit_ids))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.drop:
        await harness.drop_pg_database(DBNAME)
    return 0


async def time_ways(ways, users_list, rounds, dsn, url, server, province, periods, results):
    """Every question, every way, every concurrency."""
    for way in ways:
        for users in users_list:
            if way == "groupby":
                make, close = await groupby_asker(dsn, users, province, periods)
            elif way == "rollup":
                make, close = await rollup_asker(url, users, province, periods)
            else:
                make, close = await api_asker(server, users, province, periods)
            try:
                for question, _ in QUESTIONS:
                    await make(question)(0, 0)  # warm: plans and the buffer cache
                    results[(way, question, users)] = await timed_rounds(
                        make(question), users, rounds
                    )
            finally:
                await close()


async def describe(dsn: str) -> None:
    """What the database holds: the shape the numbers are about."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM region) AS regions, (SELECT count(*) FROM org) AS orgs,"
            " (SELECT count(*) FROM staff) AS staff, (SELECT count(*) FROM item) AS items,"
            " (SELECT count(*) FROM work_order) AS work_orders,"
            " (SELECT count(*) FROM evaluation_standing) AS standings,"
            " pg_size_pretty(pg_total_relation_size('evaluation')) AS size"
        )
        print("province: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                       for k, v in row.items()))  # fmt: skip
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
