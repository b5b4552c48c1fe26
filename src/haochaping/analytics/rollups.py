"""Rollups: the statistics read side at province scale (issue 10; `bench/dashboard.py`).

The rollup tables (`analytics/models.py`) hold the first ratings of every local day (series,
summaries, channel x level) and month (rankings of orgs, windows, staff and items; reasons),
added to every strict ancestor of the rated organisation, so that a question about a node reads
that node's rows. Every answer is exact at the moment it is read, in one SQL statement (one
snapshot), as the sum of five parts:

1. the rollup rows at the node for the whole local days (or months) inside the period asked;
2. the node's own ratings (rated org = the node), from the ratings table by its index on
   (org_id, received_at), up to the watermark: the rollups hold only descendants;
3. the live tail: the subtree's ratings above the watermark, not yet folded in;
4. the standing changes (upheld appeals, invalidations, reviews of held ratings) recorded after
   the standing watermark on ratings already folded in: minus the old standing, plus the new;
5. the edges: the descendants' folded ratings in the parts of the period before the first
   whole day (month) and after the last, from the ratings table, with their current standing.

`refresh` (run by the scheduler every pass) folds the ratings received more than GRACE ago into
the rollups, each with its standing as of the standing watermark, then applies the standing
events up to the new watermark as differences. A late rating (evaluated long ago, received now)
is folded into the period it belongs to; an upheld appeal or an invalidation moves its rating
from one measure to another in the rows of its own period. Every id at or below a watermark
has committed: the watermarks stop short of anything received in the last GRACE (the ledger's
reasoning, `ledger/service.py`).

A node's history stays where it was counted when an organisation moves in the tree; `rebuild`
empties the rollups and folds everything again (a reorganisation is rare and announced).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement, Select

from haochaping.analytics.models import MEASURES, StatDayNode, StatMonthKey, StatMonthReason
from haochaping.core import jobs
from haochaping.core.models import JobState
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding, StandingEvent
from haochaping.orgs.models import Org

# Local days and months are Asia/Shanghai's (UTC+8, no daylight saving since 1991).
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
# The time a rating is counted at. Receipt, as `analytics/queries.py` counts today.
PERIOD_COLUMN = "received_at"
# How long an intake transaction may stay open between taking its id and committing.
GRACE = timedelta(minutes=5)
# Ratings folded per transaction.
FOLD_CHUNK = 1_000_000
WM_RATINGS = "rollup.ratings"
WM_EVENTS = "rollup.standing_events"
MARKS = (WM_RATINGS, WM_EVENTS)
# What the month rows are per: the unit (the window when known, else the rated organisation:
# `analytics/source.py`'s "unit"), the staff member, the item.
DIMS = ("unit", "staff", "item")
# Items are rated by organisations all over the province: month x item rows at every county
# would be as many as the ratings. They are kept at the top two levels (the province and its
# cities); below, a question about items reads the ratings (a county's month is small).
DIM_MAX_DEPTH = {"item": 2}


def _dim_key(cols, dim: str):
    """The key of a rating in one dimension, in SQL (`cols`: the evaluation table's columns or
    a subquery's)."""
    if dim == "unit":
        return func.coalesce(cols.window_id, cols.org_id)
    return cols[f"{dim}_id"]


E: Table = Evaluation.__table__  # type: ignore[assignment]
ES: Table = EvaluationStanding.__table__  # type: ignore[assignment]
SE: Table = StandingEvent.__table__  # type: ignore[assignment]
ORG: Table = Org.__table__  # type: ignore[assignment]
DAY: Table = StatDayNode.__table__  # type: ignore[assignment]
MONTH: Table = StatMonthKey.__table__  # type: ignore[assignment]
REASON: Table = StatMonthReason.__table__  # type: ignore[assignment]
JOB: Table = JobState.__table__  # type: ignore[assignment]
# The fold's temporary table of (organisation, strict ancestor, depth of the ancestor).
ANCESTOR = Table(
    "rollup_ancestor",
    MetaData(),
    Column("org_id", BigInteger),
    Column("node_id", BigInteger),
    Column("depth", Integer),
)


def _dialect(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


# --- measures ------------------------------------------------------------------------------


@dataclass
class Measures:
    """Counts of first ratings by standing and level (see `analytics/models.py`)."""

    valid: list[int] = field(default_factory=lambda: [0] * 6)  # index = level, [0] unused
    held: list[int] = field(default_factory=lambda: [0] * 6)
    invalid: int = 0
    default: int = 0
    default_held: int = 0
    default_invalid: int = 0

    @classmethod
    def of(cls, row: Sequence[int]) -> Measures:
        """From the 14 measure values in MEASURES order."""
        v = [int(x or 0) for x in row]
        return cls([0, *v[0:5]], [0, *v[5:10]], v[10], v[11], v[12], v[13])

    def add(self, other: Measures) -> None:
        for lvl in range(1, 6):
            self.valid[lvl] += other.valid[lvl]
            self.held[lvl] += other.held[lvl]
        self.invalid += other.invalid
        self.default += other.default
        self.default_held += other.default_held
        self.default_invalid += other.default_invalid

    def counted(self, *, held_counts: bool = False) -> list[int]:
        """Counted ratings by level (index = level)."""
        if not held_counts:
            return list(self.valid)
        return [v + h for v, h in zip(self.valid, self.held, strict=True)]

    def total(self, *, held_counts: bool = False) -> int:
        return sum(self.counted(held_counts=held_counts))

    def good(self, good_levels: Iterable[int], *, held_counts: bool = False) -> int:
        counted = self.counted(held_counts=held_counts)
        return sum(counted[lvl] for lvl in good_levels)

    def points(self, points: dict[int, int], *, held_counts: bool = False) -> int:
        counted = self.counted(held_counts=held_counts)
        return sum(counted[lvl] * pts for lvl, pts in points.items())


def _class_measures(level, is_default, standing) -> list[ColumnElement[int]]:
    """The 14 measures of one rating as 0/1 SQL expressions, in MEASURES order."""
    own = is_default.is_(False)
    dflt = is_default.is_(True)
    out: list[ColumnElement[int]] = []
    for kind in ("valid", "held"):
        for lvl in range(1, 6):
            out.append(case((and_(own, standing == kind, level == lvl), 1), else_=0))
    out.append(case((and_(own, standing == "invalid"), 1), else_=0))
    out.append(case((dflt, 1), else_=0))
    out.append(case((and_(dflt, standing == "held"), 1), else_=0))
    out.append(case((and_(dflt, standing == "invalid"), 1), else_=0))
    return out


def _sums(exprs: list[ColumnElement[int]]) -> list[Any]:
    return [func.sum(x).label(name) for x, name in zip(exprs, MEASURES, strict=True)]


def class_index(level: int, is_default: bool, standing: str) -> list[int]:
    """Which measures one rating adds to (indexes into MEASURES)."""
    if is_default:
        return [11] + ([12] if standing == "held" else [13] if standing == "invalid" else [])
    if standing == "valid":
        return [level - 1]
    if standing == "held":
        return [4 + level]
    return [10]


# --- local time -----------------------------------------------------------------------------


def period_column(table=E):
    return table.c[PERIOD_COLUMN]


def local_day(col, dialect: str):
    """The Asia/Shanghai date of a UTC timestamp column, in SQL."""
    if dialect == "postgresql":
        return cast(func.timezone("Asia/Shanghai", col), Date)
    return func.date(col, "+8 hours")


def local_month(col, dialect: str):
    """The first day of the Asia/Shanghai month of a UTC timestamp column, in SQL."""
    if dialect == "postgresql":
        return cast(func.date_trunc("month", func.timezone("Asia/Shanghai", col)), Date)
    return func.date(col, "+8 hours", "start of month")


def as_date(value: Any) -> date:
    """A date from what the driver returns (SQLite: a string)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def day_start(d: date) -> datetime:
    """The UTC instant a local day begins."""
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL).astimezone(UTC)


def month_first(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def inner_days(since: datetime, until: datetime) -> tuple[date, date]:
    """The whole local days [first, end) inside [since, until) (first == end: none)."""
    a, b = since.astimezone(LOCAL), until.astimezone(LOCAL)
    first = a.date() + timedelta(days=1 if a.time() != datetime.min.time() else 0)
    end = b.date()
    return (first, end) if end > first else (first, first)


def inner_months(since: datetime, until: datetime) -> tuple[date, date]:
    """The whole local months [first, end) inside [since, until) (first == end: none)."""
    a, b = inner_days(since, until)
    first = a if a.day == 1 else next_month(a)
    end = month_first(b)
    return (first, end) if end > first else (first, first)


def whole_days(since: datetime, until: datetime) -> tuple[date, date] | None:
    """The local days [first, end) when since and until are local midnights, else None."""
    a, b = since.astimezone(LOCAL), until.astimezone(LOCAL)
    if a.time() != datetime.min.time() or b.time() != datetime.min.time() or b <= a:
        return None
    return a.date(), b.date()


def whole_months(since: datetime, until: datetime) -> tuple[date, date] | None:
    """The local months [first, end) when since and until are local month starts, else None."""
    days = whole_days(since, until)
    if days is None or days[0].day != 1 or days[1].day != 1:
        return None
    return days


# --- the organisation tree ------------------------------------------------------------------


class Tree:
    """Each organisation's strict ancestors, from the materialised paths."""

    def __init__(self, rows: Iterable[tuple[int, str, str]]) -> None:
        rows = list(rows)
        by_code = {code: oid for oid, code, _ in rows}
        self.ancestors: dict[int, tuple[int, ...]] = {}
        for oid, _, path in rows:
            codes = [c for c in path.split("/") if c][:-1]
            self.ancestors[oid] = tuple(by_code[c] for c in codes if c in by_code)

    @classmethod
    async def load(cls, db: AsyncSession) -> Tree:
        return cls((await db.execute(select(ORG.c.id, ORG.c.code, ORG.c.path))).all())


# --- refresh -------------------------------------------------------------------------------


@dataclass
class RefreshReport:
    """What one refresh did."""

    folded: int = 0  # ratings folded in
    events: int = 0  # standing changes applied
    rows: int = 0  # rollup rows the standing changes touched
    watermark: int = 0
    event_watermark: int = 0

    def __str__(self) -> str:
        return (
            f"{self.folded} ratings folded, {self.events} standing changes applied "
            f"({self.rows} rows), watermarks {self.watermark} and {self.event_watermark}"
        )


class _Acc:
    """Differences to add to rollup rows, by table and key."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple, list[int]]] = {
            "day": defaultdict(lambda: [0] * 14),
            "month": defaultdict(lambda: [0] * 14),
            "reason": defaultdict(lambda: [0] * 14),
        }

    def add(self, table: str, key: tuple, values: Sequence[int]) -> None:
        row = self.rows[table][key]
        for i, v in enumerate(values):
            row[i] += int(v or 0)

    def add_one(self, table: str, key: tuple, index: list[int], sign: int) -> None:
        row = self.rows[table][key]
        for i in index:
            row[i] += sign

    def size(self) -> int:
        return sum(len(r) for r in self.rows.values())


async def _cutoff_id(db: AsyncSession, table, at_col, after: int, cutoff: datetime) -> int:
    """The highest id whose every lower id was written before `cutoff` (so has committed)."""
    first_recent = (
        await db.execute(select(func.min(table.c.id)).where(table.c.id > after, at_col >= cutoff))
    ).scalar_one()
    if first_recent is not None:
        return max(after, int(first_recent) - 1)
    top = (await db.execute(select(func.max(table.c.id)))).scalar_one()
    return max(after, int(top or 0))


async def _first_recent_rating(db: AsyncSession, after: int, cutoff: datetime) -> int | None:
    # By the receipt index: only the last GRACE of ratings is read, not everything above.
    return (
        await db.execute(select(func.min(E.c.id)).where(E.c.received_at >= cutoff, E.c.id > after))
    ).scalar_one()


async def refresh(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    chunk: int = FOLD_CHUNK,
    limit: int | None = None,
) -> RefreshReport:
    """Fold new ratings and standing changes into the rollups (own transactions, one per
    chunk of ratings); safe in several processes (the watermark rows are locked). `limit`:
    stop after about that many ratings (the first fold of a large database then spreads over
    several passes of the scheduler, between which the other jobs run)."""
    report = RefreshReport()
    cutoff = (now or utcnow()) - grace
    while limit is None or report.folded < limit:
        async with sessionmaker() as db:
            wm = await jobs.watermark(db, WM_RATINGS, lock=True)
            swm = await jobs.watermark(db, WM_EVENTS, lock=True)
            first_recent = await _first_recent_rating(db, wm, cutoff)
            if first_recent is not None:
                top = max(wm, int(first_recent) - 1)
            else:
                top = max(wm, int((await db.execute(select(func.max(E.c.id)))).scalar_one() or 0))
            top = min(top, wm + chunk)
            new_swm = await _cutoff_id(db, SE, SE.c.created_at, swm, cutoff)
            if top == wm and new_swm == swm:
                report.watermark, report.event_watermark = wm, swm
                return report
            tree = await Tree.load(db)
            acc = _Acc()
            dialect = _dialect(db)
            if dialect == "postgresql":
                # JIT compiling the fold's sixty CASE expressions took seconds of every
                # statement, for work that takes a tenth of that without it.
                await db.execute(text("SET LOCAL jit = off"))
            # Standing changes first, on the ratings already folded (at or below wm): their
            # old standing is what the rollups hold, their new one what they should.
            report.events += await _apply_events(db, acc, tree, dialect, swm, new_swm, wm)
            report.rows += await _write(db, acc)
            report.folded += await _fold(db, tree, dialect, wm, top, new_swm)
            await jobs.advance(db, WM_RATINGS, top)
            await jobs.advance(db, WM_EVENTS, new_swm)
            await db.commit()
            report.watermark, report.event_watermark = top, new_swm
    return report


def _standing_as_of(event_watermark: int):
    """A rating's standing as of the standing watermark (its last event at or below it)."""
    last = (
        select(SE.c.to_standing)
        .where(SE.c.evaluation_id == E.c.id, SE.c.id <= event_watermark)
        .order_by(SE.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return case((ES.c.evaluation_id.is_(None), "valid"), else_=func.coalesce(last, "valid"))


async def _ancestor_table(db: AsyncSession, tree: Tree) -> Table:
    """A temporary table of (org, strict ancestor) pairs, for the fold to join."""
    await db.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS rollup_ancestor "
            "(org_id BIGINT NOT NULL, node_id BIGINT NOT NULL, depth INTEGER NOT NULL)"
        )
    )
    await db.execute(text("DELETE FROM rollup_ancestor"))
    pairs = [
        {"org_id": org, "node_id": node, "depth": depth + 1}
        for org, nodes in tree.ancestors.items()
        for depth, node in enumerate(nodes)
    ]
    for start in range(0, len(pairs), WRITE_BATCH):
        await db.execute(
            text("INSERT INTO rollup_ancestor VALUES (:org_id, :node_id, :depth)"),
            pairs[start : start + WRITE_BATCH],
        )
    if _dialect(db) == "postgresql":
        await db.execute(text("ANALYZE rollup_ancestor"))  # a temporary table has no statistics
    return ANCESTOR


# The fold's temporary table: the chunk's first ratings counted once by everything a rollup
# row is keyed by (one scan of the ratings per chunk; every grouping below reads this).
CHUNK = Table(
    "rollup_chunk",
    MetaData(),
    Column("org_id", BigInteger),
    Column("window_id", BigInteger),
    Column("staff_id", BigInteger),
    Column("item_id", BigInteger),
    Column("channel", String(20)),
    Column("level", Integer),
    Column("is_default", Boolean),
    Column("standing", String(16)),
    Column("day", Date),
    Column("month", Date),
    Column("reasons", Text),
    Column("n", BigInteger),
)
_CHUNK_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS rollup_chunk (org_id BIGINT, window_id BIGINT, "
    "staff_id BIGINT, item_id BIGINT, channel VARCHAR(20), level INTEGER, is_default BOOLEAN, "
    "standing VARCHAR(16), day DATE, month DATE, reasons TEXT, n BIGINT)"
)


async def _fill_chunk(db: AsyncSession, dialect: str, lo: int, hi: int, swm: int) -> int:
    """Count the first ratings lo < id <= hi into `rollup_chunk`, grouped by organisation,
    day, month, channel, window, staff, item, reasons, level, default and standing as of the
    standing watermark; returns how many ratings that was."""
    await db.execute(text(_CHUNK_DDL))
    await db.execute(text("DELETE FROM rollup_chunk"))
    period = period_column()
    keys = [
        E.c.org_id,
        E.c.window_id,
        E.c.staff_id,
        E.c.item_id,
        E.c.channel,
        local_day(period, dialect).label("day"),
        local_month(period, dialect).label("month"),
        # JSON has no equality on PostgreSQL: the tags are grouped by their text.
        cast(E.c.reasons, Text).label("reasons"),
        E.c.level,
        E.c.is_default,
        _standing_as_of(swm).label("standing"),
    ]
    rows = (
        select(*keys, func.count().label("n"))
        .select_from(E.outerjoin(ES, ES.c.evaluation_id == E.c.id))
        .where(E.c.id > lo, E.c.id <= hi, E.c.eval_count == 1)
        .group_by(*keys)
    )
    names = [
        "org_id", "window_id", "staff_id", "item_id", "channel", "day", "month", "reasons",
        "level", "is_default", "standing", "n",
    ]  # fmt: skip
    await db.execute(CHUNK.insert().from_select(names, rows))
    folded = (await db.execute(select(func.coalesce(func.sum(CHUNK.c.n), 0)))).scalar_one()
    if dialect == "postgresql" and folded:
        await db.execute(text("ANALYZE rollup_chunk"))  # a temporary table has no statistics
    return int(folded)


async def _fold(db: AsyncSession, tree: Tree, dialect: str, lo: int, hi: int, swm: int) -> int:
    """Add the first ratings with lo < id <= hi to the rollups: the chunk is read once into
    `rollup_chunk` (counts per everything a rollup row is keyed by), then one INSERT ...
    SELECT ... GROUP BY ... ON CONFLICT DO UPDATE per table and dimension reads that, joined
    to the organisations' ancestors (set-based: nothing per rating leaves the database)."""
    if hi <= lo:
        return 0
    if dialect == "postgresql":
        # The chunk's grouping and the groupings over it are hash aggregates of up to a
        # million rows: in memory, not spilled to disk in 4 MB pieces.
        await db.execute(text("SET LOCAL work_mem = '256MB'"))
    folded = await _fill_chunk(db, dialect, lo, hi, swm)
    if not folded:
        return 0
    r = CHUNK.c
    anc = await _ancestor_table(db, tree)
    kind = [r.level, r.is_default, r.standing]
    n = func.sum(r.n).label("n")

    async def add_up(table: Table, keys: Sequence[str], inner: Select, where=()) -> None:
        # Twice grouped: the chunk's counts by organisation, level and standing first, then
        # those far fewer rows by each ancestor of their organisation, where the counts become
        # the 14 measures.
        sub = inner.subquery("by_org")
        own = [c for c in sub.c if c.name not in ("org_id", "level", "is_default", "standing", "n")]
        measures = [
            func.sum(x * sub.c.n).label(name)
            for x, name in zip(
                _class_measures(sub.c.level, sub.c.is_default, sub.c.standing),
                MEASURES,
                strict=True,
            )
        ]
        await _insert_add(
            db,
            table,
            keys,
            select(anc.c.node_id, *own, *measures)
            .select_from(sub.join(anc, anc.c.org_id == sub.c.org_id))
            .where(*where)
            .group_by(anc.c.node_id, *own),
        )

    await add_up(
        DAY,
        ("node_id", "day", "channel"),
        select(r.org_id, r.day, r.channel, *kind, n).group_by(r.org_id, r.day, r.channel, *kind),
    )
    for dim in DIMS:
        key = _dim_key(r, dim).label("key")
        depth = DIM_MAX_DEPTH.get(dim)
        await add_up(
            MONTH,
            ("node_id", "dim", "month", "key"),
            select(r.org_id, literal(dim).label("dim"), r.month, key, *kind, n)
            .where(key.is_not(None))
            .group_by(r.org_id, r.month, key, *kind),
            () if depth is None else (anc.c.depth <= depth,),
        )
    # Reasons: the chunk's distinct tag lists (a handful) by organisation and month first,
    # then each list taken apart.
    lists = (
        select(r.org_id, r.month, r.reasons, *kind, n)
        .group_by(r.org_id, r.month, r.reasons, *kind)
        .subquery("lists")
    )
    if dialect == "postgresql":
        each = (
            func.json_array_elements_text(cast(lists.c.reasons, JSON))
            .table_valued("value")
            .alias("tag")
        )
    else:
        each = func.json_each(lists.c.reasons).table_valued("value").alias("tag")
    await add_up(
        REASON,
        ("node_id", "month", "reason"),
        select(
            lists.c.org_id,
            lists.c.month,
            each.c.value.label("reason"),
            lists.c.level,
            lists.c.is_default,
            lists.c.standing,
            func.sum(lists.c.n).label("n"),
        )
        .select_from(lists.join(each, true()))
        .group_by(
            lists.c.org_id,
            lists.c.month,
            each.c.value,
            lists.c.level,
            lists.c.is_default,
            lists.c.standing,
        ),
    )
    return folded


async def _insert_add(db: AsyncSession, table: Table, keys: Sequence[str], rows: Select) -> None:
    """INSERT the grouped rows, adding their measures to the rows already there."""
    names = [*keys, *MEASURES]
    ins = pg_insert if _dialect(db) == "postgresql" else sqlite_insert
    # SQLite reads "SELECT ... ON CONFLICT" ambiguously without a WHERE: hence the true().
    stmt = ins(table).from_select(names, rows.where(true()))
    await db.execute(_add_on_conflict(stmt, keys, table))


async def _apply_events(
    db: AsyncSession, acc: _Acc, tree: Tree, dialect: str, lo: int, hi: int, rating_wm: int
) -> int:
    """Standing events lo < id <= hi of ratings at or below rating_wm, as differences."""
    if hi <= lo:
        return 0
    period = period_column()
    rows = await db.execute(
        select(
            E.c.org_id,
            E.c.window_id,
            E.c.staff_id,
            E.c.item_id,
            E.c.channel,
            E.c.level,
            E.c.is_default,
            E.c.reasons,
            local_day(period, dialect),
            SE.c.from_standing,
            SE.c.to_standing,
        )
        .select_from(SE.join(E, E.c.id == SE.c.evaluation_id))
        .where(SE.c.id > lo, SE.c.id <= hi, E.c.id <= rating_wm, E.c.eval_count == 1)
        .order_by(SE.c.id)
    )
    n = 0
    for org_id, window_id, staff_id, item_id, channel, level, dflt, reasons, day, old, new in rows:
        n += 1
        d = as_date(day)
        m = month_first(d)
        tags = reasons if isinstance(reasons, list) else json.loads(reasons or "[]")
        for sign, standing in ((-1, old), (1, new)):
            index = class_index(level, bool(dflt), standing)
            for depth, node in enumerate(tree.ancestors.get(org_id, ()), 1):
                acc.add_one("day", (node, d, channel), index, sign)
                keys = (("unit", window_id or org_id), ("staff", staff_id), ("item", item_id))
                for dim, key in keys:
                    if key is not None and depth <= DIM_MAX_DEPTH.get(dim, depth):
                        acc.add_one("month", (node, dim, m, key), index, sign)
                for tag in tags:
                    acc.add_one("reason", (node, m, str(tag)), index, sign)
    return n


WRITE_BATCH = 5_000


async def _write(db: AsyncSession, acc: _Acc) -> int:
    """Add the accumulated differences to the rollup rows (insert or add)."""
    postgres = _dialect(db) == "postgresql"
    written = 0
    for name, table, keys in (
        ("day", DAY, ("node_id", "day", "channel")),
        ("month", MONTH, ("node_id", "dim", "month", "key")),
        ("reason", REASON, ("node_id", "month", "reason")),
    ):
        rows = [(*key, *values) for key, values in acc.rows[name].items() if any(values)]
        if postgres:
            await _copy_add(db, table, keys, rows)
        else:
            await _executemany_add(db, table, keys, rows)
        written += len(rows)
    return written


def _add_on_conflict(stmt, keys: Sequence[str], table: Table):
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={m: table.c[m] + stmt.excluded[m] for m in MEASURES}
    )


async def _executemany_add(db: AsyncSession, table: Table, keys: Sequence[str], rows) -> None:
    names = [*keys, *MEASURES]
    for start in range(0, len(rows), WRITE_BATCH):
        batch = [dict(zip(names, row, strict=True)) for row in rows[start : start + WRITE_BATCH]]
        await db.execute(_add_on_conflict(sqlite_insert(table), keys, table), batch)


async def _copy_add(db: AsyncSession, table: Table, keys: Sequence[str], rows) -> None:
    """PostgreSQL: COPY the differences into a temporary table, then one INSERT ... ON
    CONFLICT adds them (a hundred thousand rows in a second, not a minute)."""
    if not rows:
        return
    names = [*keys, *MEASURES]
    conn = await db.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    temp = f"tmp_{table.name}"
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table.name}) ON COMMIT DELETE ROWS"
    )
    await raw.execute(f"TRUNCATE {temp}")
    await raw.copy_records_to_table(temp, records=rows, columns=names)
    stmt = pg_insert(table).from_select(
        names, select(*[column(n) for n in names]).select_from(text(temp))
    )
    await db.execute(_add_on_conflict(stmt, keys, table))


async def reset(db: AsyncSession) -> None:
    """Empty the rollups and their watermarks in the caller's transaction (no commit): every
    read then answers from the ratings themselves, exactly, until the next passes fold them
    again. For a change of the tree (an organisation moved with its subtree), whose history
    the rollups hold under the old ancestors."""
    if _dialect(db) == "postgresql":  # no dead rows left for the next reads to step over
        await db.execute(text("TRUNCATE stat_day_node, stat_month_key, stat_month_reason"))
    else:
        for table in (DAY, MONTH, REASON):
            await db.execute(delete(table))
    await jobs.watermark(db, WM_RATINGS, lock=True)
    await jobs.watermark(db, WM_EVENTS, lock=True)
    await jobs.advance(db, WM_RATINGS, 0)
    # Standing as of "before any event" for everything, then every event as a change.
    await jobs.advance(db, WM_EVENTS, 0)


async def rebuild(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> RefreshReport:
    """Empty the rollups and their watermarks, then fold every rating again."""
    async with sessionmaker() as db:
        await reset(db)
        await db.commit()
    return await refresh(sessionmaker, now=now)


# --- reading -------------------------------------------------------------------------------


@dataclass
class Scope:
    """The node a question is about: an organisation and its subtree."""

    org_id: int
    path: str

    @property
    def depth(self) -> int:
        """1 for a top-level organisation, 2 for its children..."""
        return len([c for c in self.path.split("/") if c])

    @property
    def path_end(self) -> str:
        """The smallest string above every path in the subtree ("/P/C01/" -> "/P/C010")."""
        return self.path[:-1] + chr(ord("/") + 1)


async def _marks(db: AsyncSession) -> tuple[int, int]:
    """The two watermarks as they are now."""
    rows = dict(
        (await db.execute(select(JOB.c.name, JOB.c.value).where(JOB.c.name.in_(MARKS)))).all()
    )
    return int(rows.get(WM_RATINGS, 0)), int(rows.get(WM_EVENTS, 0))


def _wm(name: str):
    return func.coalesce(
        select(JOB.c.value).where(JOB.c.name == name).scalar_subquery(), literal(0)
    )


# The reading statements are built once per kind and dialect (`_statement`) with these
# parameters, so that asking costs an execution, not the building of sixty CASE expressions.
def _p(name: str):
    return bindparam(name)


def _raw_parts(
    group: list[Any], extra: Sequence[Any] = (), each: Any = None, dialect: str = "postgresql"
) -> list[Select]:
    """Parts 2-4 of an answer (see the module's docstring), grouped by `group` (expressions
    over the evaluation table, or over `each`: a table-valued function of its row) with the
    14 measures. The watermark hints `wm_hint`/`swm_hint` are the watermarks read just before:
    with them the planner reads the tail by a primary-key range instead of the whole period;
    the statement reads the watermarks again itself (one snapshot), so that a refresh
    committing in between cannot count a rating twice."""
    period = period_column()
    in_period = [period >= _p("since"), period < _p("until"), E.c.eval_count == 1, *extra]
    subtree = _subtree()
    current = func.coalesce(ES.c.standing, "valid")
    with_standing = E.outerjoin(ES, ES.c.evaluation_id == E.c.id)
    changed = SE.join(E, E.c.id == SE.c.evaluation_id)
    if each is not None:
        with_standing = with_standing.join(each, true())
        changed = changed.join(each, true())
    rating_wm = _wm(WM_RATINGS)
    own = (
        select(*group, *_sums(_class_measures(E.c.level, E.c.is_default, current)))
        .select_from(with_standing)
        .where(E.c.org_id == _p("node"), E.c.id <= rating_wm, *in_period)
        .group_by(*group)
    )
    tail_period: Any = period
    tail_org: Any = E.c.org_id
    if dialect == "sqlite":
        # SQLite would read the subtree's whole period by the (org, receipt) or the receipt
        # index and test the ids; as expressions the columns leave it the primary-key ranges
        # (the tail's ratings, the standing events after the watermark).
        tail_period, tail_org = period.op("||")(literal_column("''")), E.c.org_id + 0
    tail = (
        select(*group, *_sums(_class_measures(E.c.level, E.c.is_default, current)))
        .select_from(with_standing)
        .where(
            E.c.id > _p("wm_hint"),
            E.c.id > rating_wm,
            tail_org.in_(subtree),
            tail_period >= _p("since"),
            tail_period < _p("until"),
            E.c.eval_count == 1,
            *extra,
        )
        .group_by(*group)
    )
    new = _class_measures(E.c.level, E.c.is_default, SE.c.to_standing)
    old = _class_measures(E.c.level, E.c.is_default, SE.c.from_standing)
    changes = (
        select(
            *group,
            *[func.sum(a - b).label(name) for a, b, name in zip(new, old, MEASURES, strict=True)],
        )
        .select_from(changed)
        .where(
            SE.c.id > _p("swm_hint"),
            SE.c.id > _wm(WM_EVENTS),
            (E.c.id + 0 if dialect == "sqlite" else E.c.id) <= rating_wm,
            tail_org.in_(subtree),
            tail_org != _p("node"),
            tail_period >= _p("inner_since"),
            tail_period < _p("inner_until"),
            tail_period >= _p("since"),
            tail_period < _p("until"),
            E.c.eval_count == 1,
            *extra,
        )
        .group_by(*group)
    )
    # The edges: the descendants' folded ratings in the parts of [since, until) that the
    # rollup rows (whole days or months) do not cover, [since, edge_until) and [edge_since,
    # until), read with their current standing; each a range on the (org, receipt) index.
    # An empty edge (a period of whole days or months has none) is switched off by its flag,
    # a condition on a parameter alone that PostgreSQL tests once before reading anything:
    # without it the planner read the ratings up to the watermark by primary key to find
    # none (a province's month ranking at 1M ratings: 120 ms per edge).
    edges = [
        select(*group, *_sums(_class_measures(E.c.level, E.c.is_default, current)))
        .select_from(with_standing)
        .where(
            bindparam(flag, type_=Integer) == 1,
            E.c.org_id.in_(subtree),
            E.c.org_id != _p("node"),
            E.c.id <= rating_wm,
            period >= _p(lo),
            period < _p(hi),
            E.c.eval_count == 1,
            *extra,
        )
        .group_by(*group)
        for lo, hi, flag in (
            ("since", "edge_until", "edge_before"),
            ("edge_since", "until", "edge_after"),
        )
    ]
    return [own, tail, changes, *edges]


def _raw_subtree(group: list[Any], extra: Sequence[Any]) -> Select:
    """The subtree's first ratings in the period from the ratings table alone."""
    period = period_column()
    current = func.coalesce(ES.c.standing, "valid")
    return (
        select(*group, *_sums(_class_measures(E.c.level, E.c.is_default, current)))
        .select_from(E.outerjoin(ES, ES.c.evaluation_id == E.c.id))
        .where(
            E.c.org_id.in_(_subtree()),
            period >= _p("since"),
            period < _p("until"),
            E.c.eval_count == 1,
            *extra,
        )
        .group_by(*group)
    )


def _subtree():
    return (
        select(ORG.c.id)
        .where(ORG.c.path >= _p("path"), ORG.c.path < _p("path_end"))
        .scalar_subquery()
    )


def _measure_cols(table) -> list[Any]:
    return [table.c[m].label(m) for m in MEASURES]


def _each(dialect: str):
    if dialect == "postgresql":
        return func.json_array_elements_text(E.c.reasons).table_valued("value").alias("tag")
    return func.json_each(E.c.reasons).table_valued("value").alias("tag")


@lru_cache(maxsize=64)
def _statement(kind: str, dialect: str, deep: bool = False, split: bool = False) -> Select:
    """The one statement that answers a kind of question (rollup rows + parts 2-4, summed by
    key); `deep`: below the levels that have month rows of the dimension; `split` (units,
    staff, items): by key and by side of the month `split` (0 before, 1 from it on), the
    first column."""
    both = _parts(kind, dialect, deep, split)
    sums = [func.sum(both.c[m]).label(m) for m in MEASURES]
    if split:
        return select(both.c.p, both.c.k, *sums).group_by(both.c.p, both.c.k)
    return select(both.c.k, *sums).group_by(both.c.k)


@lru_cache(maxsize=64)
def _parts(kind: str, dialect: str, deep: bool = False, split: bool = False) -> Any:
    """The rows `_statement` sums: (p,) k and the 14 measures, from every part."""
    if kind in ("summary", "daily", "channel"):
        roll_key = {
            "summary": literal(1),
            "daily": DAY.c.day,
            "channel": DAY.c.channel,
        }[kind]
        raw_key = {
            "summary": literal(1),
            "daily": local_day(period_column(), dialect),
            "channel": E.c.channel,
        }[kind]
        roll = select(roll_key.label("k"), *_measure_cols(DAY)).where(
            DAY.c.node_id == _p("node"), DAY.c.day >= _p("first"), DAY.c.day < _p("end")
        )
        parts = [roll, *_raw_parts([raw_key.label("k")], dialect=dialect)]
    elif kind in DIMS:
        col = _dim_key(E.c, kind)
        group = [cast(col, BigInteger).label("k")]
        roll_side: list[Any] = []
        if split:
            group.append(case((period_column() < _p("split"), 0), else_=1).label("p"))
            roll_side = [case((MONTH.c.month < _p("split_first"), 0), else_=1).label("p")]
        if deep:
            parts = [_raw_subtree(group, [col.is_not(None)])]
        else:
            roll = select(MONTH.c.key.label("k"), *roll_side, *_measure_cols(MONTH)).where(
                MONTH.c.node_id == _p("node"),
                MONTH.c.dim == kind,
                MONTH.c.month >= _p("first"),
                MONTH.c.month < _p("end"),
            )
            parts = [roll, *_raw_parts(group, [col.is_not(None)], dialect=dialect)]
    elif kind == "reason":
        roll = select(REASON.c.reason.label("k"), *_measure_cols(REASON)).where(
            REASON.c.node_id == _p("node"),
            REASON.c.month >= _p("first"),
            REASON.c.month < _p("end"),
        )
        each = _each(dialect)
        parts = [roll, *_raw_parts([each.c.value.label("k")], each=each, dialect=dialect)]
    else:
        raise ValueError(kind)
    return union_all(*parts).subquery("parts")


async def _ask(
    db: AsyncSession,
    kind: str,
    scope: Scope,
    since: datetime,
    until: datetime,
    span: tuple[date, date],
    deep: bool = False,
    split: datetime | None = None,
) -> dict[Any, Measures]:
    params = await _params(db, scope, since, until, span)
    if split is not None:
        params["split"] = split
        params["split_first"] = split.astimezone(LOCAL).date()
        rows = await _core(db, _statement(kind, _dialect(db), deep, True), params)
        return {(row[0], row[1]): Measures.of(row[2:]) for row in rows.all()}
    rows = await _core(db, _statement(kind, _dialect(db), deep), params)
    return {row[0]: Measures.of(row[1:]) for row in rows.all()}


async def _core(db: AsyncSession, stmt: Select, params: dict[str, Any]) -> Any:
    """Rows of a reading statement through the session's connection: plain tuples, without
    the ORM's result processing (a third of the time of a ranking's thousands of rows).

    On PostgreSQL planned for its parameters every time: from the sixth execution on one
    connection PostgreSQL may keep a generic plan, blind to the edges being empty and to the
    scope's size, and the report's ninth month-and-tier read of the same statement took 30-80
    s instead of 0.2 s (1M ratings)."""
    conn = await db.connection()
    if _dialect(db) == "postgresql":
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return await conn.execute(stmt, params)


async def _params(
    db: AsyncSession, scope: Scope, since: datetime, until: datetime, span: tuple[date, date]
) -> dict[str, Any]:
    """The parameters of a reading statement (`_statement`)."""
    wm, swm = await _marks(db)
    edge_until = min(day_start(span[0]), until)
    edge_since = max(day_start(span[1]), since)
    return {
        "node": scope.org_id,
        "path": scope.path,
        "path_end": scope.path_end,
        "since": since,
        "until": until,
        "first": span[0],
        "end": span[1],
        "inner_since": day_start(span[0]),
        "inner_until": day_start(span[1]),
        "edge_until": edge_until,
        "edge_since": edge_since,
        "edge_before": int(edge_until > since),
        "edge_after": int(edge_since < until),
        "wm_hint": wm,
        "swm_hint": swm,
    }


async def summary(
    db: AsyncSession, *, scope: Scope, since: datetime, until: datetime
) -> Measures | None:
    """The subtree's first ratings in [since, until) by standing and level (the whole local
    days from the rollups, the parts of days at the edges from the ratings)."""
    total = Measures()
    for m in (await _ask(db, "summary", scope, since, until, inner_days(since, until))).values():
        total.add(m)
    return total


async def daily(
    db: AsyncSession, *, scope: Scope, since: datetime, until: datetime
) -> dict[date, Measures] | None:
    """The subtree's series by local day."""
    out = await _ask(db, "daily", scope, since, until, inner_days(since, until))
    return {as_date(k): m for k, m in sorted(out.items(), key=lambda kv: str(kv[0]))}


async def by_channel(
    db: AsyncSession, *, scope: Scope, since: datetime, until: datetime
) -> dict[str, Measures] | None:
    """The subtree's channels (each with its levels)."""
    return await _ask(db, "channel", scope, since, until, inner_days(since, until))


async def by_key(
    db: AsyncSession, *, scope: Scope, dim: str, since: datetime, until: datetime
) -> dict[int, Measures] | None:
    """The subtree's units, staff or items (`dim`): the whole local months from the rollups,
    the days before and after them from the ratings."""
    deep = scope.depth > DIM_MAX_DEPTH.get(dim, scope.depth)
    out = await _ask(db, dim, scope, since, until, inner_months(since, until), deep)
    return {int(k): m for k, m in out.items()}


async def by_reason(
    db: AsyncSession, *, scope: Scope, since: datetime, until: datetime
) -> dict[str, Measures] | None:
    """The reason tags named by the subtree's ratings (a rating with two tags counts under
    each): the whole local months from the rollups, the days around them from the ratings."""
    out = await _ask(db, "reason", scope, since, until, inner_months(since, until))
    return {str(k): m for k, m in out.items()}


async def by_key_split(
    db: AsyncSession, *, scope: Scope, dim: str, since: datetime, split: datetime, until: datetime
) -> tuple[dict[int, Measures], dict[int, Measures]]:
    """`by_key` of two adjacent periods, [since, split) and [split, until), in one read
    (`split` a local month start: the rollups' months fall on one side of it)."""
    deep = scope.depth > DIM_MAX_DEPTH.get(dim, scope.depth)
    out = await _ask(db, dim, scope, since, until, inner_months(since, until), deep, split)
    before: dict[int, Measures] = {}
    after: dict[int, Measures] = {}
    for (side, k), m in out.items():
        (after if side else before)[int(k)] = m
    return before, after


@lru_cache(maxsize=16)
def _levels_statement(dim: str, dialect: str, deep: bool) -> Select:
    """`_statement` split by month side, summing counted ratings by level (5 columns, held
    ones added when the `held` parameter is 1) instead of the 14 measures."""
    rows = _parts(dim, dialect, deep, True)
    held = bindparam("held", type_=Integer)
    levels = [func.sum(rows.c[f"v{lv}"] + rows.c[f"h{lv}"] * held) for lv in range(1, 6)]
    return select(rows.c.p, rows.c.k, *levels).group_by(rows.c.p, rows.c.k)


async def levels_by_key_split(
    db: AsyncSession,
    *,
    scope: Scope,
    dim: str,
    since: datetime,
    split: datetime,
    until: datetime,
    held_counts: bool,
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """`by_key_split` as counted ratings by level 1..5 (held ones with `held_counts`), keys
    with none left out: a province's 20,000 staff in two months come back as 40,000 rows of
    five counts, not of fourteen measures turned into counts in Python."""
    deep = scope.depth > DIM_MAX_DEPTH.get(dim, scope.depth)
    params = await _params(db, scope, since, until, inner_months(since, until))
    params["split"] = split
    params["split_first"] = split.astimezone(LOCAL).date()
    params["held"] = int(held_counts)
    before: dict[int, list[int]] = {}
    after: dict[int, list[int]] = {}
    for side, key, *counts in (
        await _core(db, _levels_statement(dim, _dialect(db), deep), params)
    ).all():
        levels = [int(x or 0) for x in counts]
        if any(levels):
            (after if side else before)[int(key)] = levels
    return before, after


async def by_group_split(
    db: AsyncSession,
    *,
    scope: Scope,
    groups: Select,
    names: Select,
    since: datetime,
    split: datetime,
    until: datetime,
    held_counts: bool,
) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, str], list[int]]]:
    """`by_key_split` of the units, summed in SQL by the group each unit belongs to: `groups`
    selects (unit, grp) — a unit in no group is left out — and `names` (grp, code, name).
    One statement: the units' rows never leave the database, only the groups' counted
    ratings by level 1..5 (held ones with `held_counts`), keyed by (code, name) (a ranking
    tier's units: departments, halls, windows, child regions)."""
    params = await _params(db, scope, since, until, inner_months(since, until))
    params["split"] = split
    params["split_first"] = split.astimezone(LOCAL).date()
    params["held"] = int(held_counts)
    rows = _parts("unit", _dialect(db), False, True)
    g = groups.subquery("unit_group")
    held = bindparam("held", type_=Integer)
    levels = [
        func.sum(rows.c[f"v{lv}"] + rows.c[f"h{lv}"] * held).label(f"l{lv}") for lv in range(1, 6)
    ]
    summed = (
        select(rows.c.p, g.c.grp, *levels)
        .select_from(rows.join(g, g.c.unit == rows.c.k))
        .group_by(rows.c.p, g.c.grp)
        .subquery("by_group")
    )
    n = names.subquery("group_name")
    stmt = select(
        summed.c.p, n.c.code, n.c.name, *[summed.c[f"l{lv}"] for lv in range(1, 6)]
    ).join_from(summed, n, n.c.grp == summed.c.grp)
    before: dict[tuple[str, str], list[int]] = {}
    after: dict[tuple[str, str], list[int]] = {}
    for row in (await _core(db, stmt, params)).all():
        (after if row[0] else before)[(str(row[1]), str(row[2]))] = [int(x or 0) for x in row[3:]]
    return before, after
