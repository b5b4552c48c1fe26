"""Ledger throughput: seal N ratings into SM3 blocks, then verify them all.

    .venv/bin/python bench/seal.py [--ratings 1000000] [--block-size 10000] [--keep]

Creates a fresh PostgreSQL database (postgres@127.0.0.1:5432), migrates it, bulk-loads N
ratings with COPY (one hall, varied levels, channels, comments and raters), then times
`haochaping ledger seal` and `haochaping ledger verify` as the worker runs them
(`ledger.jobs.seal_pending` and `ledger.jobs.verify`, through the application's engine).
Goal: each under 60 s for 1,000,000 ratings. The database is dropped at the end unless --keep;
`--reuse NAME` times again on a kept database (its ledger emptied first).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import TypeDecorator

from haochaping.config import Settings
from haochaping.db import migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.db.types import dialect_keys
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import jobs as ledger_jobs

PG = "postgresql://postgres@127.0.0.1:5432"
COPY_CHUNK = 100_000
CHANNELS = ["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms"]
LEVELS = (5, 5, 4, 5, 5, 3, 5, 4, 5, 5, 5, 4, 5, 5, 3, 5, 4, 5, 5, 2)
REASONS = {5: "517", 4: "413", 3: "314", 2: "209", 1: "110"}
COMMENTS = ["办事很快", "服务态度好，一次办成", "等了很久才叫到号", "材料清单说明清楚", None]
COLUMNS = (
    "id",
    "case_id",
    "stage",
    "eval_count",
    "channel",
    "level",
    "reasons",
    "comment",
    "tagset_version",
    "org_id",
    "item_id",
    "window_id",
    "staff_id",
    "region_code",
    "rater_type",
    "rater_name",
    "rater_cert_type",
    "rater_cert_no",
    "rater_phone",
    "anonymous",
    "is_public",
    "is_default",
    "client_id",
    "user_id",
    "invitation_id",
    "source_ip",
    "user_agent",
    "device_id",
    "evaluated_at",
    "received_at",
    "rater_cert_hash",
    "rater_phone_hash",
)


async def create_database() -> tuple[str, str]:
    """A fresh database; its name and SQLAlchemy URL."""
    name = f"hcp_seal_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(f"{PG}/test")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_database(name: str) -> None:
    """Drop the benchmark database, ending whatever sessions still use it."""
    conn = await asyncpg.connect(f"{PG}/test")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


def rating(i: int, org_id: int, start: datetime, identity_hash) -> tuple:
    """Rating i as a COPY record, in COLUMNS order."""
    level = LEVELS[i % len(LEVELS)]
    at = start + timedelta(seconds=i * 31.5)
    cert, phone = f"330102199001{i % 10000:04d}{i % 100:02d}", f"138{i % 100_000_000:08d}"
    return (
        i,
        None,
        "whole",
        1,
        CHANNELS[i % 7],
        level,
        json.dumps([REASONS[level]]),
        COMMENTS[i % len(COMMENTS)],
        "national-2020",
        org_id,
        None,
        None,
        None,
        "330102",
        "person",
        "张三",
        "id_card",
        cert,
        phone,
        i % 11 == 0,
        i % 13 != 0,
        False,
        None,
        None,
        None,
        f"10.{i % 256}.{i // 256 % 256}.{i % 7}",
        "Mozilla/5.0 (Linux; Android 14)",
        None,
        at,
        at + timedelta(seconds=3),
        identity_hash(cert, "cert"),
        identity_hash(phone, "phone"),
    )


def stored_form(dialect) -> list:
    """For each column, what the model's column type does to a value on the way in (say, the
    encryption of a personal identifier), or None; COPY bypasses SQLAlchemy, so we apply it."""
    table = Evaluation.__table__
    out = []
    for name in COLUMNS:
        kind = table.c[name].type
        out.append(
            (lambda k: lambda v: k.process_bind_param(v, dialect))(kind)
            if isinstance(kind, TypeDecorator)
            else None
        )
    return out


async def load(dsn: str, n: int, dialect) -> float:
    """Reference data and n ratings through COPY; returns the seconds it took."""
    t0 = time.perf_counter()
    forms = [(i, f) for i, f in enumerate(stored_form(dialect)) if f is not None]
    hasher = dialect_keys(dialect).identity_hash  # the keys of the engine the bench reads with
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO region (code, name, parent_code, tier, path, created_at) VALUES "
            "('330000', '浙江省', NULL, 1, '/330000/', now()), "
            "('330100', '杭州市', '330000', 2, '/330000/330100/', now()), "
            "('330102', '上城区', '330100', 3, '/330000/330100/330102/', now())"
        )
        org_id = await conn.fetchval(
            "INSERT INTO org (code, name, kind, parent_id, region_code, path, created_at) "
            "VALUES ('HALL-A', '上城区市民之家', 'hall', NULL, '330102', '/HALL-A/', now()) "
            "RETURNING id"
        )
        start = datetime(2025, 11, 22, tzinfo=UTC)
        for lo in range(1, n + 1, COPY_CHUNK):
            records = [
                rating(i, org_id, start, hasher) for i in range(lo, min(lo + COPY_CHUNK, n + 1))
            ]
            if forms:
                records = [_stored(r, forms) for r in records]
            await conn.copy_records_to_table("evaluation", records=records, columns=COLUMNS)
            print(f"  loaded {min(lo + COPY_CHUNK - 1, n):>9,} ratings", flush=True)
        await conn.execute("SELECT setval(pg_get_serial_sequence('evaluation', 'id'), $1)", n)
        await conn.execute("VACUUM ANALYZE evaluation")
    finally:
        await conn.close()
    return time.perf_counter() - t0


def _stored(record: tuple, forms: list) -> tuple:
    values = list(record)
    for i, form in forms:
        values[i] = form(values[i])
    return tuple(values)


async def timed(label: str, coro_fn, profile: bool):
    """Run one phase, print its time (and a profile when asked)."""
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    result = await coro_fn()
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{label}: {wall:.1f} s (Python CPU {cpu:.1f} s)", flush=True)
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return result, wall


async def clear_ledger(dsn: str) -> int:
    """Empty the ledger of a database kept by an earlier run (as its owner, triggers off);
    returns the number of ratings in it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("TRUNCATE ledger_entry, ledger_block")
        await conn.execute("VACUUM ANALYZE ledger_entry")
        return await conn.fetchval("SELECT count(*) FROM evaluation")
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> int:
    if args.reuse:
        name, url = args.reuse, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{args.reuse}"
    else:
        name, url = await create_database()
    dsn = f"{PG}/{name}"
    try:
        settings = Settings(database_url=url, _env_file=None)
        await asyncio.to_thread(migrate.upgrade, settings)
        engine = make_engine(settings)  # also installs the data keys, should columns need them
        maker = make_sessionmaker(engine)
        try:
            if args.reuse:
                args.ratings = await clear_ledger(dsn)
                print(f"database {name}: {args.ratings:,} ratings, ledger emptied", flush=True)
            else:
                print(
                    f"database {name}; loading {args.ratings:,} ratings with COPY ...", flush=True
                )
                print(f"load: {await load(dsn, args.ratings, engine.dialect):.1f} s", flush=True)
            print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
            report, seal_s = await timed(
                "seal",
                lambda: ledger_jobs.seal_pending(maker, block_size=args.block_size),
                args.profile,
            )
            print(f"  {report}; {report.ratings / seal_s:,.0f} ratings/s", flush=True)
            result, verify_s = await timed(
                "verify", lambda: ledger_jobs.verify(maker), args.profile
            )
            print(f"  {result.lines()[0]}; {result.entries / verify_s:,.0f} ratings/s")
            print(f"  {result.lines()[-1]}")
        finally:
            await engine.dispose()
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        goal = seal_s < 60 and verify_s < 60
        print(
            f"ratings {args.ratings:,}  seal {seal_s:.1f} s  verify {verify_s:.1f} s  "
            f"goal (< 60 s each): {'met' if goal else 'NOT met'}"
        )
        ok = result.ok and report.ratings == args.ratings
        return 0 if ok and goal else 1
    finally:
        if args.keep or args.reuse:
            print(f"kept database {name}")
        else:
            await drop_database(name)


def parse_args() -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratings", type=int, default=1_000_000)
    p.add_argument("--block-size", type=int, default=10_000)
    p.add_argument("--profile", action="store_true", help="print a cProfile of each phase")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="time again on a database kept with --keep (its ledger is emptied)",
    )
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
