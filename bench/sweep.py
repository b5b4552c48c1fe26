"""The deadline job over 100k and 1M open work orders on PostgreSQL: time per pass and growth.

    .venv/bin/python bench/sweep.py [--sizes 100000,1000000] [--backlog-days 3] [--profile]

For each size N: a fresh database (postgres@127.0.0.1:5432, created and dropped through the
`test` database), migrated to head; reference data (122 regions, an org tree of offices,
departments, halls and windows, ~3,500 users, most with e-mail addresses, items) and N open
work orders in a realistic mix of states and deadlines, each with its case, bad rating, lead
unit, `open` event and opening e-mail in the outbox, loaded with COPY (ids computed here,
sequences set afterwards, secondary indexes built after the load); then VACUUM ANALYZE and
CHECKPOINT. Then passes of `haochaping.workorders.jobs.sweep`, each in its own session and
committed, as the worker runs it:

  idle      23:05 Asia/Shanghai: nothing is due;
  steady    00:05, just after the day's deadlines ended: ~1 % of the orders due for a warning,
            ~0.5 % overdue, 1,000 new good ratings past the spot-check watermark;
  again     the same moment once more: must change nothing (checked on the tables);
  backlogK  --backlog-days later, as if the job had been stopped that long, pass after pass
            until one finds nothing.

Deadlines end at 23:59:59 Asia/Shanghai of a working day, so a day's cohort falls due at once
and the first pass after midnight is the heaviest of the day. Each pass reports wall time and
CPU time (the PostgreSQL backend's, from /proc, plus this process's): on a shared machine the
CPU time is the steadier measure of the work. An unreported warm-up run comes first.
`--profile` lists the statements that took the time. The last lines compare the largest size
with the smallest. The databases are dropped at the end, also on error (`--keep` keeps them).
The exit status is 1 when a pass did not do what the data says (or mailed too little).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text

from haochaping.config import Settings
from haochaping.core.calendar import WorkCalendar, end_of_day
from haochaping.core.timeutil import SHANGHAI
from haochaping.db import migrate as db_migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.policies.schemas import PolicyValues
from haochaping.policies.service import PolicyCache
from haochaping.workorders import jobs

PG = "postgresql://postgres@127.0.0.1:5432"
TAGSET = "national-2020"
GOOD_LEVELS = frozenset({3, 4, 5})
CAL = WorkCalendar([], {})  # the chinese-calendar package's data: 2026 is known
MONDAY = date(2026, 11, 23)  # working day 0: the day whose deadlines have just ended
NOW = datetime.combine(MONDAY + timedelta(days=1), clock(0, 5), SHANGHAI).astimezone(UTC)
IDLE = NOW - timedelta(hours=1)
OVERDUE_SHARE, WARN_SHARE = 0.005, 0.01
ARRIVALS = 1000  # good ratings received since the previous pass (spot-check sample)

# States of open orders with a running deadline, and their weights (in per cent).
DUE_MIX = {"rectifying": 58, "verifying": 8, "transferred": 1, "callback": 14, "explained": 3}
# All open states of orders not yet due: few are still being verified at 00:05.
LATER_MIX = {
    "rectifying": 58,
    "verifying": 1,
    "transferred": 1,
    "callback": 14,
    "explained": 3,
    "supervising": 12,
    "accountability": 1,
    "appealing": 3,
}
# Working day on which a not-yet-due deadline ends (2 = the day after tomorrow).
LATER_DAYS = {
    "verifying": [2],
    "transferred": [2],
    "rectifying": list(range(2, 16)),
    "callback": [2, 3],
    "explained": [2, 3],
    "supervising": list(range(10)),
    "accountability": list(range(10)),
    "appealing": list(range(10)),
}
ACTIVE_KIND = {
    "verifying": "verify",
    "transferred": "verify",
    "rectifying": "rectify",
    "callback": "callback",
    "explained": "callback",
}

WO_COLUMNS = (
    "id",
    "evaluation_id",
    "case_id",
    "origin",
    "org_id",
    "region_code",
    "state",
    "version",
    "policy_id",
    "policy",
    "opened_at",
    "verify_due_at",
    "verify_warn_at",
    "rectify_due_at",
    "rectify_warn_at",
    "callback_due_at",
    "callback_warn_at",
    "deadlines_verified",
    "verified_at",
    "rectified_at",
    "explained_at",
    "supervising_at",
    "closed_at",
    "warned_verify_at",
    "warned_rectify_at",
    "warned_callback_at",
    "overdue_at",
    "escalations",
    "callback_attempts",
    "followups",
    "close_reason",
    "updated_at",
)
CASE_COLUMNS = (
    "id",
    "case_no",
    "item_id",
    "org_id",
    "mode",
    "case_type",
    "status",
    "applicant_type",
    "applicant_name",
    "applicant_phone",
    "received_at",
    "accepted_at",
    "completed_at",
    "created_at",
    "updated_at",
)
EVAL_COLUMNS = (
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
    "region_code",
    "rater_type",
    "rater_phone",
    "anonymous",
    "is_public",
    "is_default",
    "evaluated_at",
    "received_at",
)
EVENT_COLUMNS = (
    "id",
    "work_order_id",
    "action",
    "from_state",
    "to_state",
    "actor_kind",
    "actor_name",
    "data",
    "created_at",
)
OUTBOX_COLUMNS = (
    "id",
    "kind",
    "channel",
    "recipient",
    "subject",
    "body",
    "payload",
    "dedupe_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "sent_at",
)
CHANNELS = ("pc", "mobile", "qrcode", "pad", "terminal", "phone")
REASONS = {
    1: json.dumps(["110"]),
    2: json.dumps(["209"]),
    3: json.dumps(["314"]),
    4: json.dumps(["413"]),
    5: json.dumps(["517"]),
}
COMMENTS = {1: "多次往返仍未办成", 2: "等了很久", 3: "一般", 4: "服务不错", 5: "办事很快"}


# --- time: deadlines at the end of working days -------------------------------------------


@cache
def workday(offset: int) -> date:
    """The working day `offset` working days after Monday 2026-11-23 (before it when < 0)."""
    day, step = MONDAY, (1 if offset > 0 else -1)
    for _ in range(abs(offset)):
        day += timedelta(days=step)
        while not CAL.is_workday(day):
            day += timedelta(days=step)
    return day


def eod(offset: int) -> datetime:
    return end_of_day(workday(offset))


def at(offset: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(workday(offset), clock(hour, minute), SHANGHAI).astimezone(UTC)


def template(state: str, category: str, day: int) -> tuple[Any, ...]:
    """The columns from `state` to `updated_at` of an order in `state` whose running deadline
    ends on working day `day` (0: overdue now; 1: warning due now; later: not yet due).

    Warnings come one working day before the due day (the default warn_days), or half-way
    when the time limit is a single day (verification), as `Deadlines.compute` sets them."""
    v: dict[str, Any] = dict.fromkeys(WO_COLUMNS[6:])
    v.update(
        state=state,
        version=1,
        policy=POLICY_JSON,
        deadlines_verified=True,
        escalations=0,
        callback_attempts=0,
        followups=0,
    )
    minute = timedelta(minutes=1)
    warned_before = category == "overdue"  # an overdue order was warned on its warning day
    if state in ("verifying", "transferred"):
        start = at(day - 1, 0, 1)
        opened = start if state == "verifying" else at(day - 2, 9)
        v.update(
            opened_at=opened,
            verify_due_at=eod(day),
            verify_warn_at=start + (eod(day) - start) / 2,
            rectify_due_at=end_of_day(CAL.add_workdays(opened.astimezone(SHANGHAI).date(), 15)[0]),
        )
        v["rectify_warn_at"] = end_of_day(
            CAL.add_workdays(opened.astimezone(SHANGHAI).date(), 14)[0]
        )
        if state == "transferred":
            v["version"] = 2
        if warned_before:
            v["warned_verify_at"] = v["verify_warn_at"] + minute
        v["updated_at"] = start
    elif state == "rectifying":
        opened = at(day - 15, 10)
        v.update(
            opened_at=opened,
            verify_due_at=eod(day - 14),
            verify_warn_at=opened + (eod(day - 14) - opened) / 2,
            verified_at=opened + timedelta(hours=2),
            rectify_due_at=eod(day),
            rectify_warn_at=eod(day - 1),
            version=2,
            updated_at=opened + timedelta(hours=2),
        )
        if warned_before:
            v["warned_rectify_at"] = v["rectify_warn_at"] + minute
    elif state in ("callback", "explained"):
        start, opened = at(day - 3, 15), at(day - 11, 10)
        v.update(
            opened_at=opened,
            verify_due_at=eod(day - 10),
            verify_warn_at=opened + (eod(day - 10) - opened) / 2,
            rectify_due_at=eod(day + 4),
            rectify_warn_at=eod(day + 3),
            callback_due_at=eod(day),
            callback_warn_at=eod(day - 1),
            updated_at=start,
        )
        if state == "callback":
            v.update(verified_at=opened + timedelta(hours=2), rectified_at=start, version=3)
        else:
            v.update(explained_at=start, version=2)
        if warned_before:
            v["warned_callback_at"] = v["callback_warn_at"] + minute
    else:  # supervising, accountability, appealing: no deadline the job watches
        opened = at(-20 - day, 10)
        v.update(
            opened_at=opened,
            verify_due_at=eod(-19 - day),
            verify_warn_at=opened + (eod(-19 - day) - opened) / 2,
            verified_at=opened + timedelta(hours=3),
            rectify_due_at=eod(-5 - day),
            rectify_warn_at=eod(-6 - day),
            warned_rectify_at=eod(-6 - day) + minute,
        )
        if state == "appealing":
            v.update(version=3, updated_at=opened + timedelta(days=1))
        else:
            overdue = eod(-5 - day) + 5 * minute
            v.update(
                supervising_at=overdue,
                overdue_at=overdue,
                escalations=1,
                version=3 if state == "supervising" else 4,
                updated_at=overdue,
            )
    return tuple(v[c] for c in WO_COLUMNS[6:])


POLICY_JSON = json.dumps(PolicyValues().model_dump(mode="json"), ensure_ascii=False)


# --- reference data ------------------------------------------------------------------------


@dataclass
class Unit:
    """An organisation that handles work orders, with what its rows need."""

    org_id: int
    region_code: str
    item_id: int
    name: str
    first_email: str


@dataclass
class Reference:
    regions: list[tuple[Any, ...]] = field(default_factory=list)
    orgs: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)


def reference() -> Reference:
    """Zhejiang: a province office, 11 city and 110 county offices; per county a hall with five
    windows and 15 departments. Offices have two office users each (the province an admin
    too); units two handlers each, except one in ten with none (mail goes to the office)."""
    ref = Reference()
    created = datetime(2026, 1, 5, tzinfo=UTC)
    ids = iter(range(1, 10**6))
    user_ids = iter(range(1, 10**6))
    pw = "$argon2id$v=19$m=65536,t=3,p=4$bench$bench"  # nobody signs in

    def org(
        code: str, name: str, kind: str, parent: tuple[Any, ...] | None, region: str
    ) -> tuple[Any, ...]:
        row = (
            next(ids),
            code,
            name,
            kind,
            parent[0] if parent else None,
            region,
            f"{parent[6] if parent else '/'}{code}/",
            created,
        )
        ref.orgs.append(row)
        return row

    def user(org_row: tuple[Any, ...], role: str, n: int, email: bool = True) -> str:
        uid = next(user_ids)
        address = f"{role}{n}.{org_row[1].lower()}@zj.gov.example"
        ref.users.append(
            (
                uid,
                f"{role}{n}-{org_row[1].lower()}",
                f"{role}{n}",
                pw,
                role,
                org_row[0],
                address if email else None,
                True,
                0,
                created,
            )
        )
        return address

    ref.regions.append(("330000", "浙江省", None, 1, "/330000/", created))
    province = org("ZJ", "浙江省政务服务管理办公室", "department", None, "330000")
    user(province, "admin", 1)
    for n in (1, 2):
        user(province, "office", n)
    for c in range(1, 12):
        city_code = f"33{c:02d}00"
        ref.regions.append((city_code, f"第{c}市", "330000", 2, f"/330000/{city_code}/", created))
        city = org(f"C{c:02d}", f"第{c}市政务服务管理办公室", "department", province, city_code)
        for n in (1, 2):
            user(city, "office", n)
        for k in range(1, 11):
            code = f"33{c:02d}{k:02d}"
            ref.regions.append(
                (code, f"第{c}市第{k}区", city_code, 3, f"/330000/{city_code}/{code}/", created)
            )
            office = org(
                f"C{c:02d}K{k:02d}", f"第{c}市第{k}区政务服务管理办公室", "department", city, code
            )
            office_mail = user(office, "office", 1)
            user(office, "office", 2)
            user(office, "office", 3, email=False)  # no address: never a recipient
            hall = org(f"C{c:02d}K{k:02d}H", f"第{c}市第{k}区市民之家", "hall", office, code)
            for w in range(1, 6):
                org(f"C{c:02d}K{k:02d}W{w}", f"综合受理{w}号窗口", "window", hall, code)
            handlers = [hall] + [
                org(
                    f"C{c:02d}K{k:02d}D{d:02d}",
                    f"第{c}市第{k}区第{d}局",
                    "department",
                    office,
                    code,
                )
                for d in range(1, 16)
            ]
            for unit in handlers:
                item_id = len(ref.items) + 1
                ref.items.append(
                    (item_id, f"ITEM-{unit[1]}", None, f"{unit[2]}事项", unit[0], created)
                )
                first = office_mail
                if unit[0] % 10:  # one unit in ten has no handler of its own
                    first = user(unit, "unit", 1)
                    user(unit, "unit", 2)
                ref.units.append(Unit(unit[0], code, item_id, unit[2], first))
    return ref


# --- loading -------------------------------------------------------------------------------


@dataclass
class Loaded:
    expected: Counter = field(default_factory=Counter)  # (category, kind) -> orders
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def pick(rng: random.Random, mix: dict[str, int]) -> Iterator[str]:
    states, weights = list(mix), list(mix.values())
    while True:
        yield from rng.choices(states, weights, k=4096)


def orders(n: int, ref: Reference, loaded: Loaded) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(case, evaluation, work order, unit, event, outbox) rows of n open work orders."""
    rng = random.Random(20261122)
    due_states, later_states = pick(rng, DUE_MIX), pick(rng, LATER_MIX)
    # (state, category, day) -> the order's columns from `state` on, and its times
    templates: dict[
        tuple[str, str, int], tuple[tuple[Any, ...], datetime, datetime, datetime, datetime]
    ] = {}
    units, unit_count = ref.units, len(ref.units)
    open_data = json.dumps({"origin": "bad_rating"})
    random_ = rng.random
    for i in range(1, n + 1):
        u = random_()
        if u < OVERDUE_SHARE + WARN_SHARE:
            category = "overdue" if u < OVERDUE_SHARE else "warn"
            state, day = next(due_states), (0 if category == "overdue" else 1)
            loaded.expected[(category, ACTIVE_KIND[state])] += 1
        else:
            category, state = "later", next(later_states)
            days = LATER_DAYS[state]
            day = days[int(random_() * len(days))]
        key = (state, category, day)
        found = templates.get(key)
        if found is None:
            tpl = template(state, category, day)
            opened = tpl[4]
            done = opened - timedelta(minutes=30)
            found = templates[key] = (
                tpl,
                opened,
                done,
                done - timedelta(hours=1),
                opened + timedelta(minutes=1),
            )
        tpl, opened, done, received, sent = found
        unit = units[int(random_() * unit_count)]
        level = 1 if i % 3 else 2
        yield (
            (
                i,
                f"BENCH-{i:08d}",
                unit.item_id,
                unit.org_id,
                "offline" if i % 4 else "online",
                "immediate",
                "completed",
                "person",
                "张*",
                "139****0000",
                received,
                received,
                done,
                done,
                done,
            ),
            (
                i,
                i,
                "whole",
                1,
                CHANNELS[i % 6],
                level,
                REASONS[level],
                COMMENTS[level],
                TAGSET,
                unit.org_id,
                unit.item_id,
                unit.region_code,
                "person",
                "13900000000",
                False,
                True,
                False,
                opened,
                opened,
            ),
            (i, i, i, "bad_rating", unit.org_id, unit.region_code, *tpl),
            (i, unit.org_id, "lead", True),
            (i, i, "open", None, "verifying", "system", "系统", open_data, opened),
            (
                i,
                "workorder_opened",
                "email",
                unit.first_email,
                f"【差评工单】#{i} {unit.name} 收到差评",
                f"{unit.name}：收到一条差评，已生成差评工单 #{i}。",
                f'{{"work_order_id": {i}}}',
                f"opened:{i}:{unit.first_email}",
                "sent",
                1,
                opened,
                opened,
                sent,
            ),
        )


async def copy(
    conn: asyncpg.Connection, table: str, columns: tuple[str, ...], records: Any
) -> None:
    await conn.copy_records_to_table(table, records=records, columns=list(columns))


# Bulk load: no foreign-key triggers (the ids are consistent by construction), no waiting for
# each COPY's WAL flush, memory for the index builds.
LOAD_SETTINGS = (
    "SET session_replication_role = replica; SET synchronous_commit = off; "
    "SET maintenance_work_mem = '256MB'"
)
BULK_TABLES = [
    "service_case",
    "evaluation",
    "work_order",
    "work_order_unit",
    "work_order_event",
    "outbox_message",
]


async def drop_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """Drop the unique constraints and secondary indexes of `tables` (not the primary keys);
    returns the statements that build them again."""
    restore = []
    for name, table, definition in await conn.fetch(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY($1)",
        tables,
    ):
        restore.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, definition in await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename = ANY($1) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        tables,
    ):
        restore.append(definition)
        await conn.execute(f"DROP INDEX {name}")
    return restore


async def load(url: str, n: int) -> Loaded:
    """Reference data and n open work orders, by COPY; then VACUUM ANALYZE and CHECKPOINT."""
    loaded = Loaded()
    conn, second = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        await conn.execute(LOAD_SETTINGS)
        t0 = time.perf_counter()
        ref = reference()
        await copy(
            conn,
            "region",
            ("code", "name", "parent_code", "tier", "path", "created_at"),
            ref.regions,
        )
        await copy(
            conn,
            "org",
            ("id", "code", "name", "kind", "parent_id", "region_code", "path", "created_at"),
            ref.orgs,
        )
        await copy(
            conn, "item", ("id", "code", "basic_code", "name", "org_id", "created_at"), ref.items
        )
        await copy(
            conn,
            "app_user",
            (
                "id",
                "username",
                "display_name",
                "password_hash",
                "role",
                "org_id",
                "email",
                "active",
                "failed_logins",
                "created_at",
            ),
            ref.users,
        )
        loaded.seconds["reference"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tables = [
            ("service_case", CASE_COLUMNS),
            ("evaluation", EVAL_COLUMNS),
            ("work_order", WO_COLUMNS),
            ("work_order_unit", ("work_order_id", "org_id", "role", "active")),
            ("work_order_event", EVENT_COLUMNS),
            ("outbox_message", OUTBOX_COLUMNS),
        ]
        # Indexes are built after the load, as for any bulk load: inserting a million random
        # keys one by one into a B-tree larger than shared_buffers takes minutes.
        restore = await drop_indexes(conn, BULK_TABLES)
        # Two connections: one table's COPY is sent while the other's rows are encoded.
        await second.execute(LOAD_SETTINGS)

        async def copy_some(c: asyncpg.Connection, batch: list[Any], which: range) -> None:
            for index in which:
                table, columns = tables[index]
                await copy(c, table, columns, [rows[index] for rows in batch])

        chunk = 100_000
        source = orders(n, ref, loaded)
        while True:
            batch = [row for _, row in zip(range(chunk), source, strict=False)]
            if not batch:
                break
            await asyncio.gather(
                copy_some(conn, batch, range(0, 6, 2)), copy_some(second, batch, range(1, 6, 2))
            )
            loaded.rows += len(batch) * len(tables)
        await conn.execute(
            "INSERT INTO job_state (name, value, updated_at) VALUES ('spot_check', $1, $2)", n, IDLE
        )
        for table in (
            "org",
            "app_user",
            "item",
            "service_case",
            "evaluation",
            "work_order",
            "work_order_event",
            "outbox_message",
        ):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        loaded.seconds["orders"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for statement in restore:
            await conn.execute(statement)
        loaded.seconds["indexes"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        loaded.seconds["vacuum"] = time.perf_counter() - t0
    finally:
        await conn.close()
        await second.close()
    return loaded


async def arrive(url: str, n: int, count: int) -> None:
    """`count` good ratings (and their cases) received since the previous pass."""
    conn = await asyncpg.connect(url)
    try:
        received = NOW - timedelta(minutes=3)
        org = await conn.fetchrow(
            "SELECT o.id, o.region_code, i.id AS item_id FROM org o "
            "JOIN item i ON i.org_id = o.id ORDER BY o.id LIMIT 1"
        )
        levels = (5, 5, 4, 5, 3, 5, 4, 5, 5, 4)
        ids = range(n + 1, n + count + 1)
        await copy(
            conn,
            "service_case",
            CASE_COLUMNS,
            [
                (
                    i,
                    f"BENCH-{i:08d}",
                    org["item_id"],
                    org["id"],
                    "offline",
                    "immediate",
                    "completed",
                    "person",
                    "李*",
                    "138****0000",
                    received,
                    received,
                    received,
                    received,
                    received,
                )
                for i in ids
            ],
        )
        await copy(
            conn,
            "evaluation",
            EVAL_COLUMNS,
            [
                (
                    i,
                    i,
                    "whole",
                    1,
                    "pad",
                    levels[i % 10],
                    REASONS[levels[i % 10]],
                    COMMENTS[levels[i % 10]],
                    TAGSET,
                    org["id"],
                    org["item_id"],
                    org["region_code"],
                    "person",
                    None,
                    True,
                    True,
                    False,
                    received,
                    received,
                )
                for i in ids
            ],
        )
        for table in ("service_case", "evaluation"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE service_case; ANALYZE evaluation")
    finally:
        await conn.close()


# --- the passes ----------------------------------------------------------------------------


@dataclass
class Pass:
    name: str
    seconds: float
    report: jobs.SweepReport
    changed: dict[str, int]  # rows added or changed, from the tables
    unmailed: int  # orders warned or escalated by this pass without an e-mail written
    profile: list[tuple[str, int, float]]
    db_cpu: float  # CPU seconds of the PostgreSQL backend that ran the pass
    py_cpu: float  # CPU seconds of this process (SQLAlchemy, notify, ...)

    @property
    def cpu(self) -> float:
        return self.db_cpu + self.py_cpu

    @property
    def due_rows(self) -> int:
        return sum(self.report.warned.values()) + sum(self.report.escalated.values())


COUNTS = """
SELECT (SELECT count(*) FROM work_order_event) AS events,
       (SELECT count(*) FROM outbox_message) AS outbox,
       (SELECT count(*) FROM spot_check) AS spot_checks,
       (SELECT count(*) FROM evaluation WHERE is_default) AS default_ratings,
       (SELECT count(*) FROM work_order WHERE state = 'supervising') AS supervising,
       (SELECT count(*) FROM work_order WHERE warned_verify_at IS NOT NULL
            OR warned_rectify_at IS NOT NULL OR warned_callback_at IS NOT NULL) AS warned
"""
# Orders and deadlines mailed about since $1: `warn:<kind>:<id>:…`, `overdue:<kind>:<id>:…`.
MAILED = """
SELECT count(DISTINCT split_part(dedupe_key, ':', 1) || split_part(dedupe_key, ':', 2)
                      || split_part(dedupe_key, ':', 3))
FROM outbox_message WHERE kind IN ('deadline_warning', 'overdue') AND created_at >= $1
"""


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return dict(await conn.fetchrow(COUNTS))


class Profiler:
    """Time per statement (first 100 characters), from SQLAlchemy's cursor events."""

    def __init__(self, engine: Any) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn, _cursor, _statement, _params, _context, _many) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def _after(self, conn, _cursor, statement, _params, _context, _many) -> None:
        elapsed = time.perf_counter() - conn.info["bench_t0"].pop()
        entry = self.stats[" ".join(statement.split())[:100]]
        entry[0] += 1
        entry[1] += elapsed

    def take(self) -> list[tuple[str, int, float]]:
        rows = sorted(((k, int(c), t) for k, (c, t) in self.stats.items()), key=lambda r: -r[2])
        self.stats.clear()
        return rows


async def run_pass(
    maker: Any, conn: asyncpg.Connection, profiler: Profiler, name: str, now: datetime
) -> Pass:
    before = await counts(conn)
    started_at = datetime.now(UTC)
    profiler.take()
    async with maker() as db:
        backend = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        db_cpu, py_cpu = backend_cpu(backend), time.process_time()
        t0 = time.perf_counter()
        report = await jobs.sweep(
            db, policies=PolicyCache(), tagset_version=TAGSET, good_levels=GOOD_LEVELS, now=now
        )
        await db.commit()
        seconds = time.perf_counter() - t0
        py_cpu = time.process_time() - py_cpu
        db_cpu = backend_cpu(backend) - db_cpu
    after = await counts(conn)
    unmailed = (
        sum(report.warned.values())
        + sum(report.escalated.values())
        - await conn.fetchval(MAILED, started_at)
    )
    changed = {k: after[k] - before[k] for k in after}
    return Pass(name, seconds, report, changed, unmailed, profiler.take(), db_cpu, py_cpu)


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of a local PostgreSQL backend (0 when it is not local).

    Wall time on a shared machine includes waiting for a core; CPU time is the work done."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench_sweep_{n}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(f"{PG}/test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{PG}/{name}"
    settings = Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", _env_file=None
    )
    engine = None
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(db_migrate.upgrade, settings)
        migrate_s = time.perf_counter() - t0
        loaded = await load(url, n)
        size = await asyncpg.connect(url)
        try:
            table_mb = await size.fetchval(
                "SELECT pg_total_relation_size('work_order') / 1048576.0"
            )
        finally:
            await size.close()
        print(
            f"\n== {n:,} open work orders (database {name}; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}) =="
        )
        print(
            f"load: migrate {migrate_s:.1f} s, reference data "
            f"{loaded.seconds['reference']:.1f} s, {loaded.rows:,} rows by COPY "
            f"{loaded.seconds['orders']:.1f} s, indexes {loaded.seconds['indexes']:.1f} s, "
            f"VACUUM ANALYZE + CHECKPOINT "
            f"{loaded.seconds['vacuum']:.1f} s; work_order with indexes {table_mb:,.0f} MB"
        )
        expect_over = sum(v for (c, _), v in loaded.expected.items() if c == "overdue")
        expect_warn = sum(v for (c, _), v in loaded.expected.items() if c == "warn")
        print(
            f"mix: {expect_over:,} overdue ({expect_over / n:.2%}), {expect_warn:,} due for a "
            f"warning ({expect_warn / n:.2%}) at {NOW:%Y-%m-%d %H:%M} UTC"
        )

        engine = make_engine(settings)
        maker = make_sessionmaker(engine)
        profiler = Profiler(engine)
        conn = await asyncpg.connect(url)
        passes: list[Pass] = []
        try:
            async with maker() as db:  # the worker's pool is connected before its first pass
                await db.execute(text("SELECT 1"))
            passes.append(await run_pass(maker, conn, profiler, "idle", IDLE))
            await arrive(url, n, ARRIVALS)
            passes.append(await run_pass(maker, conn, profiler, "steady", NOW))
            passes.append(await run_pass(maker, conn, profiler, "again", NOW))
            backlog_at = NOW + timedelta(days=args.backlog_days)
            # Passes at the same moment until one finds nothing due: the backlog is worked off.
            for k in range(1, 51):
                passes.append(await run_pass(maker, conn, profiler, f"backlog{k}", backlog_at))
                if not passes[-1].due_rows:
                    break
        finally:
            await conn.close()
        print(
            f"{'pass':9} {'wall s':>7} {'cpu s':>13} {'escalated':>9} {'warned':>7} "
            f"{'spot':>4} {'events+':>7} {'outbox+':>7} {'unmailed':>8} "
            f"{'ms/due row':>10} {'cpu ms/row':>10}"
        )
        for p in passes:
            r = p.report
            per_row = f"{p.seconds * 1000 / p.due_rows:.3f}" if p.due_rows else "-"
            cpu_row = f"{p.cpu * 1000 / p.due_rows:.3f}" if p.due_rows else "-"
            cpu = f"{p.cpu:.2f}={p.db_cpu:.2f}+{p.py_cpu:.2f}"
            print(
                f"{p.name:9} {p.seconds:7.3f} {cpu:>13} {sum(r.escalated.values()):9,} "
                f"{sum(r.warned.values()):7,} {r.spot_checks:4,} {p.changed['events']:7,} "
                f"{p.changed['outbox']:7,} {p.unmailed:8,} {per_row:>10} {cpu_row:>10}"
            )
        print(
            "(cpu s: PostgreSQL backend + this process; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end)"
        )
        idle, steady, again, backlog = passes[0], passes[1], passes[2], passes[3:]
        ok_steady = (
            sum(steady.report.escalated.values()) == expect_over
            and sum(steady.report.warned.values()) == expect_warn
            and idle.due_rows == 0
            and not any(p.unmailed for p in passes)
        )
        idempotent = not any(again.changed.values()) and again.due_rows == 0
        print(
            f"steady pass did what the mix says, every due order mailed: "
            f"{'yes' if ok_steady else 'NO'}; second pass changed nothing: "
            f"{'yes' if idempotent else 'NO'}"
        )
        print(
            f"backlog after {args.backlog_days:g} days: "
            f"{sum(sum(p.report.escalated.values()) for p in backlog):,} escalated and "
            f"{sum(sum(p.report.warned.values()) for p in backlog):,} warned in "
            f"{len(backlog) - 1} passes, {sum(p.seconds for p in backlog):.1f} s in all, "
            f"the longest {max(p.seconds for p in backlog):.1f} s"
        )
        print(
            f"by kind (steady): escalated {dict(steady.report.escalated)}, "
            f"warned {dict(steady.report.warned)}"
        )
        if args.profile:
            for p in passes:
                print(f"-- statements of the {p.name} pass (count, seconds):")
                for statement, count, seconds in p.profile[:8]:
                    print(f"   {count:7,} {seconds:7.3f}  {statement}")
        return {"n": n, "passes": {p.name: p for p in passes}, "ok": ok_steady and idempotent}
    finally:
        if engine is not None:
            await engine.dispose()
        if not args.keep:
            admin = await asyncpg.connect(f"{PG}/test")
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            finally:
                await admin.close()


async def main(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.warmup:
        # A small run first, not reported: statements compiled and cached by SQLAlchemy, modules
        # loaded, as in a worker that has been running; otherwise the first size pays for it.
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            await bench_size(args.warmup, args)
        print(f"warm-up run with {args.warmup:,} orders: {time.perf_counter() - t0:.1f} s")
    results = [await bench_size(n, args) for n in sizes]
    if len(results) > 1:
        small, large = results[0], results[-1]
        print()
        for name in ("idle", "steady", "again", "backlog1"):
            a, b = small["passes"][name], large["passes"][name]
            rows = f", due rows x{b.due_rows / a.due_rows:.1f}" if a.due_rows else ""
            cpu = f", cpu x{b.cpu / a.cpu:.1f}" if a.cpu else ""
            print(
                f"{name:8} {large['n']:,}/{small['n']:,}: time x{b.seconds / a.seconds:.1f}"
                f"{cpu} for x{large['n'] / small['n']:.0f} orders{rows}"
            )
        a, b = small["passes"]["steady"], large["passes"]["steady"]
        cpu = f", {b.cpu / a.cpu:.2f} (cpu)" if a.cpu else ""
        print(
            f"steady pass ratio {large['n']:,}/{small['n']:,}: {b.seconds / a.seconds:.2f} "
            f"(wall){cpu}, due rows {b.due_rows / a.due_rows:.2f}"
        )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="open work orders per run, comma-separated (default 100000,1000000)",
    )
    parser.add_argument(
        "--backlog-days",
        type=float,
        default=3,
        help="how long the job was stopped before the backlog pass (days)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2000, help="orders in an unreported first run (0: none)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="list the statements that took each pass's time"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
