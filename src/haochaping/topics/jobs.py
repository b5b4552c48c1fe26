"""The periodic job of the text analysis: each new first rating segmented once, its terms,
phrases and reason codes added to the day counts (`models.py`), behind watermarks as the
statistics' rollups keep them (`analytics/rollups.py`).

`refresh` reads the ratings with lo < id <= hi (hi stops short of anything received in the last
GRACE, so every id at or below a watermark has committed), each with its standing as of the
standing-event watermark, and adds those that count (valid, not a system default) to the
counts. Standing changes recorded later (an upheld appeal, a held rating reviewed) on ratings
already counted are applied as differences: the rating's comment is segmented again with the
dictionary of the day and its terms added or taken away. A dictionary word added after a
comment was counted changes nothing for that comment (its counts stay as segmented);
`rebuild` empties the counts and segments every comment again with today's dictionary.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.analytics.rollups import as_date, local_day
from haochaping.core import jobs
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import StandingEvent
from haochaping.orgs.models import Region
from haochaping.topics.models import (
    Gram,
    LevelClass,
    TopicTermDay,
    TopicTermRegionDay,
    TopicTermRun,
    TopicTermWeek,
    TopicVolumeDay,
    TopicVolumeRegionDay,
    TopicVolumeRun,
    TopicVolumeWeek,
    TopicWord,
    level_class,
)
from haochaping.topics.segment import Lexicon

GRACE = timedelta(minutes=5)
CHUNK = 250_000  # ratings read per transaction
READ_WINDOW = 50_000  # ratings fetched per statement
WM_RATINGS = "topics.ratings"
WM_EVENTS = "topics.standing_events"
WM_RUN = "topics.run_week"  # the ordinal of the Monday the running sums are as of (0: none)
# The default emerging question, kept as running sums: the last 4 ISO weeks against the 8 before.
RUN_WEEKS, RUN_BASELINE = 4, 8
ALL_REGIONS = "*"  # the running sums' key of every rating, whatever its region

E: Table = Evaluation.__table__  # type: ignore[assignment]
SE: Table = StandingEvent.__table__  # type: ignore[assignment]
TERM: Table = TopicTermDay.__table__  # type: ignore[assignment]
VOLUME: Table = TopicVolumeDay.__table__  # type: ignore[assignment]
WEEK_TERM: Table = TopicTermWeek.__table__  # type: ignore[assignment]
WEEK_VOLUME: Table = TopicVolumeWeek.__table__  # type: ignore[assignment]
TERM_RUN: Table = TopicTermRun.__table__  # type: ignore[assignment]
VOLUME_RUN: Table = TopicVolumeRun.__table__  # type: ignore[assignment]
REGION_TERM: Table = TopicTermRegionDay.__table__  # type: ignore[assignment]
REGION_VOLUME: Table = TopicVolumeRegionDay.__table__  # type: ignore[assignment]


class Lexicons:
    """The lexicon of one application (built once, again only when administrators add a
    word): building jieba's dictionary takes a second or two."""

    def __init__(self) -> None:
        self._lexicon: Lexicon | None = None

    async def current(self, db: AsyncSession) -> Lexicon:
        version = (await db.execute(select(func.max(TopicWord.id)))).scalar_one() or 0
        if self._lexicon is None or self._lexicon.version != version:
            words = (await db.execute(select(TopicWord.word).order_by(TopicWord.id))).scalars()
            # In a thread: seconds of CPU that would otherwise stall the server's event loop
            # (its requests, and keep-alive connections closed under a waiting client).
            self._lexicon = await asyncio.to_thread(Lexicon, list(words), version=version)
        return self._lexicon


@dataclass
class RefreshReport:
    """What one refresh did."""

    ratings: int = 0  # first ratings read
    comments: int = 0  # comments counted (in the volumes)
    segmented: int = 0  # of them, complaints' comments segmented and counted by term
    changes: int = 0  # standing changes applied as differences
    rows: int = 0  # count rows written
    watermark: int = 0

    def __str__(self) -> str:
        return (
            f"{self.ratings} ratings counted, {self.comments} comments, "
            f"{self.segmented} comments segmented (complaints), "
            f"{self.changes} standing changes, {self.rows} rows, watermark {self.watermark}"
        )


# Local days are Asia/Shanghai's (UTC+8, no daylight saving since 1991), as the rollups'.
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The local day of a stored time (UTC; naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL).date()


def week_of(day: date) -> date:
    """The Monday of a local day's ISO week."""
    return day - timedelta(days=day.weekday())


COMPLAINT_CLASSES = frozenset({LevelClass.BAD.value, LevelClass.BASIC.value})
KINDS = (Gram.REASON.value, Gram.TERM.value, Gram.PHRASE.value)  # the order of Counts' bags
LEVEL_CLASS = {level: level_class(level).value for level in range(1, 6)}


def run_weeks(week: date) -> tuple[date, date]:
    """The first Monday of the recent weeks and of the baseline weeks of the running sums
    as of `week` (a Monday)."""
    recent_since = week - timedelta(days=7 * (RUN_WEEKS - 1))
    return recent_since, recent_since - timedelta(days=7 * RUN_BASELINE)


class Run:
    """The running sums' weeks, and the regions a rating's region counts at: itself, every
    region above it, and "*" (a region code not in the region tree: "*" only)."""

    def __init__(self, week: date, paths: dict[str, str]) -> None:
        self.week = week
        self.recent_since, self.since = run_weeks(week)
        self._regions = {
            code: (*[c for c in path.split("/") if c], ALL_REGIONS) for code, path in paths.items()
        }

    @classmethod
    async def load(cls, db: AsyncSession, now: datetime) -> Run:
        paths = {r[0]: r[1] for r in await db.execute(select(Region.code, Region.path))}
        return cls(week_of(local_date(now)), paths)

    def regions(self, code: str) -> tuple[str, ...]:
        return self._regions.get(code, (ALL_REGIONS,))

    def side(self, week: date) -> int | None:
        """0: a recent week, 1: a baseline week, None: neither."""
        if week > self.week or week < self.since:
            return None
        return 0 if week >= self.recent_since else 1

    def term_rows(self, week_terms: dict[tuple[date, str, int], Counter[str]]) -> list[tuple]:
        """Rows of `topic_term_run` (region, item, term, recent, before) for week counts."""
        out: dict[tuple[str, int, str], list[int]] = {}
        for (week, region, item), bag in week_terms.items():
            side = self.side(week)
            if side is None or not item:
                continue
            for code in self.regions(region):
                for term, n in bag.items():
                    if n:
                        out.setdefault((code, item, term), [0, 0])[side] += n
        return [(*k, *v) for k, v in out.items() if any(v)]

    def volume_rows(self, week_volume: Counter[tuple[date, str, int]]) -> list[tuple]:
        """Rows of `topic_volume_run` (region, item, recent, before) for week volumes."""
        out: dict[tuple[str, int], list[int]] = {}
        for (week, region, item), n in week_volume.items():
            side = self.side(week)
            if side is None or not item or not n:
                continue
            for code in self.regions(region):
                out.setdefault((code, item), [0, 0])[side] += n
        return [(*k, *v) for k, v in out.items() if any(v)]


class Counts:
    """Differences to add to the count tables, by key: per (day, unit, item, class) one dict
    per kind of term (reason, term, phrase), so that the inner updates hash strings only."""

    def __init__(self) -> None:
        self.terms: dict[
            tuple[date, int, int, str], tuple[Counter[str], Counter[str], Counter[str]]
        ] = {}
        self.volume: dict[tuple[date, int, int, str], list[int]] = {}
        self.week_terms: dict[tuple[date, str, int], Counter[str]] = {}
        self.week_volume: Counter[tuple[date, str, int]] = Counter()
        # The same per (day, region of the rating, class): the region-day rows.
        self.region_terms: dict[
            tuple[date, str, str], tuple[Counter[str], Counter[str], Counter[str]]
        ] = {}
        self.region_volume: dict[tuple[date, str, str], list[int]] = {}
        self._days: dict[Any, tuple[date, date]] = {}  # stored time's hour -> (day, week)
        self._codes: dict[str, frozenset[str]] = {}  # a stored reason list -> its codes

    def _reason_codes(self, reasons: Any) -> frozenset[str]:
        """The distinct codes of a rating's reasons: a list, or the stored JSON text (the
        fold reads it unparsed: a province's ratings have a few dozen distinct lists)."""
        if not isinstance(reasons, str):
            return frozenset(str(c)[:70] for c in reasons or ())
        found = self._codes.get(reasons)
        if found is None:
            found = self._codes[reasons] = self._reason_codes(json.loads(reasons))
        return found

    def _day(self, at: datetime) -> tuple[date, date]:
        hour = at.replace(minute=0, second=0, microsecond=0)
        found = self._days.get(hour)
        if found is None:
            day = local_date(hour)
            found = self._days[hour] = (day, week_of(day))
        return found

    def add(self, lexicon: Lexicon, row: Any, sign: int = 1) -> bool:
        """Add one rating (`sign` -1: take it away) to the volumes and, for a complaint, its
        reasons, terms and phrases; True when it had a comment. (The fold counts the volumes
        of new ratings in SQL and calls `add_complaint` for the complaints;
        this does all of it for the few ratings whose standing changed.)"""
        cls = LEVEL_CLASS[row.level]
        day, week = self._day(row.received_at)
        item = row.item_id or 0
        key = (day, row.window_id or row.org_id, item, cls)
        vol = self.volume.get(key)
        if vol is None:
            vol = self.volume[key] = [0, 0]
        region = row.region_code or ""
        rkey = (day, region, cls)
        rvol = self.region_volume.get(rkey)
        if rvol is None:
            rvol = self.region_volume[rkey] = [0, 0]
        vol[0] += sign
        rvol[0] += sign
        self.week_volume[(week, region, item)] += sign
        has_comment = bool(row.comment and row.comment.strip())
        if has_comment:
            vol[1] += sign
            rvol[1] += sign
        if cls in COMPLAINT_CLASSES:  # praise: in the volumes only (no read asks its words)
            self.add_complaint(lexicon, row, sign)
        return has_comment

    def _bags(self, key: tuple[date, int, int, str]):
        bags = self.terms.get(key)
        if bags is None:
            bags = self.terms[key] = (Counter(), Counter(), Counter())
        return bags

    def _region_bags(self, key: tuple[date, str, str]):
        bags = self.region_terms.get(key)
        if bags is None:
            bags = self.region_terms[key] = (Counter(), Counter(), Counter())
        return bags

    def add_complaint(self, lexicon: Lexicon, row: Any, sign: int = 1) -> bool:
        """Add the reason codes (each once) and the comment's terms and phrases of one
        complaint (bad or 基本满意): to the day rows of its unit and item and of its region,
        and the terms to the week rows of its region and item. True when it had a comment
        (segmented)."""
        day, week = self._day(row.received_at)
        item = row.item_id or 0
        cls = LEVEL_CLASS[row.level]
        region = row.region_code or ""
        both = (
            self._bags((day, row.window_id or row.org_id, item, cls)),
            self._region_bags((day, region, cls)),
        )
        codes = self._reason_codes(row.reasons)
        if codes:
            for bags in both:
                reasons = bags[0]
                for code in codes:
                    reasons[code] += sign
        if not (row.comment and row.comment.strip()):
            return False
        found = lexicon.terms(row.comment)
        for bags in both:
            words, phrases = bags[1], bags[2]
            for word in found.words:
                words[word] += sign
            for phrase in found.phrases:
                phrases[phrase] += sign
        if item:
            wkey = (week, region, item)
            bag = self.week_terms.get(wkey)
            if bag is None:
                bag = self.week_terms[wkey] = Counter()
            for word in found.words:
                bag[word] += sign
        return True

    async def write(self, db: AsyncSession, run: Run | None = None) -> int:
        """Add the differences to the tables (and, with `run`, to the running sums): the rows
        go into a temporary table in bulk (COPY on PostgreSQL, executemany on SQLite), then
        one INSERT ... SELECT ... ON CONFLICT DO UPDATE per table adds them to the rows
        already there."""
        terms = [
            (*key, kind, term, n)
            for key, bags in self.terms.items()
            for kind, bag in zip(KINDS, bags, strict=True)
            for term, n in bag.items()
            if n
        ]
        week_terms = [
            (*key, term, n) for key, bag in self.week_terms.items() for term, n in bag.items() if n
        ]
        region_terms = [
            (*key, kind, term, n)
            for key, bags in self.region_terms.items()
            for kind, bag in zip(KINDS, bags, strict=True)
            for term, n in bag.items()
            if n
        ]
        region_volume = [(*k, *v) for k, v in self.region_volume.items() if any(v)]
        written = 0
        for table, rows, values in (
            (TERM, terms, ("n",)),
            (VOLUME, [(*k, *v) for k, v in self.volume.items() if any(v)], ("ratings", "comments")),
            (WEEK_TERM, week_terms, ("n",)),
            (WEEK_VOLUME, [(*k, n) for k, n in self.week_volume.items() if n], ("ratings",)),
            (TERM_RUN, run.term_rows(self.week_terms) if run else [], ("recent", "before")),
            (VOLUME_RUN, run.volume_rows(self.week_volume) if run else [], ("recent", "before")),
            (REGION_TERM, region_terms, ("n",)),
            (REGION_VOLUME, region_volume, ("ratings", "comments")),
        ):
            await _bulk_add(db, table, rows, values)
            written += len(rows)
        self.terms.clear()
        self.volume.clear()
        self.week_terms.clear()
        self.week_volume.clear()
        self.region_terms.clear()
        self.region_volume.clear()
        return written


async def _bulk_add(
    db: AsyncSession, table: Table, rows: list[tuple], values: tuple[str, ...]
) -> None:
    """Add rows (tuples in the table's column order) to a count table."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    stage = f"{table.name}_stage"
    keys = ", ".join(c.name for c in table.primary_key.columns)
    cols = ", ".join(names)
    conn = await db.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if db.get_bind().dialect.name == "postgresql":
        await raw.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS"
        )
        await raw.execute(f"TRUNCATE {stage}")
        await raw.copy_records_to_table(stage, records=rows, columns=names)
        where = ""
    else:
        await raw.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT * FROM {table.name} WHERE 0"
        )
        await raw.execute(f"DELETE FROM {stage}")
        marks = ", ".join("?" * len(names))
        await raw.executemany(
            f"INSERT INTO {stage} ({cols}) VALUES ({marks})",
            [tuple(v.isoformat() if isinstance(v, date) else v for v in r) for r in rows],
        )
        where = " WHERE true"  # SQLite reads "SELECT ... ON CONFLICT" ambiguously without it
    updates = ", ".join(f"{v} = {table.name}.{v} + excluded.{v}" for v in values)
    # In key order: the primary key's pages are then visited once each, in order, instead of
    # at random (the index of a province's counts is larger than the buffer cache).
    await raw.execute(
        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage}{where} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


async def _top(db: AsyncSession, table: Table, at_col: Any, after: int, cutoff: datetime) -> int:
    """The highest id whose every lower id was written before `cutoff` (so has committed)."""
    first_recent = (
        await db.execute(select(func.min(table.c.id)).where(table.c.id > after, at_col >= cutoff))
    ).scalar_one()
    if first_recent is not None:
        return max(after, int(first_recent) - 1)
    top = (await db.execute(select(func.max(table.c.id)))).scalar_one()
    return max(after, int(top or 0))


RATING_COLUMNS = (
    E.c.id,
    E.c.org_id,
    E.c.window_id,
    E.c.item_id,
    E.c.level,
    E.c.received_at,
    E.c.comment,
    E.c.reasons,
    E.c.region_code,
)


# What Python's str.strip() strips: a comment of these characters only is no comment.
_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


def _dialect(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


def _counted(lo: int, hi: int, event_wm: int) -> list[Any]:
    """The first ratings lo < id <= hi that count: no system default, and valid as of the
    standing-event watermark (no event up to it, or the last one says valid)."""
    last = (
        select(SE.c.evaluation_id, func.max(SE.c.id).label("id"))
        .where(SE.c.evaluation_id > lo, SE.c.evaluation_id <= hi, SE.c.id <= event_wm)
        .group_by(SE.c.evaluation_id)
        .subquery("last_event")
    )
    not_valid = (
        select(SE.c.evaluation_id)
        .select_from(SE.join(last, SE.c.id == last.c.id))
        .where(SE.c.to_standing != "valid")
    )
    return [
        E.c.id > lo,
        E.c.id <= hi,
        E.c.eval_count == 1,
        E.c.is_default.is_(False),
        E.c.id.not_in(not_valid),
    ]


async def _add_select(db: AsyncSession, table: Table, rows: Any, values: tuple[str, ...]) -> None:
    """INSERT ... SELECT grouped rows (in the table's column order), adding their values to
    the rows already there."""
    ins = pg_insert if _dialect(db) == "postgresql" else sqlite_insert
    names = [c.name for c in table.columns]
    # SQLite reads "SELECT ... ON CONFLICT" ambiguously without a WHERE: hence the true().
    keys = [c.name for c in table.primary_key.columns]
    # In key order (see `_bulk_add`).
    ordered = rows.where(true()).order_by(*(literal_column(k) for k in keys))
    stmt = ins(table).from_select(names, ordered)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={v: table.c[v] + stmt.excluded[v] for v in values},
    )
    await db.execute(stmt)


async def _fold_volumes(db: AsyncSession, counts: Counts, where: list[Any]) -> tuple[int, int]:
    """The volumes of the counted ratings, set-based: the day rows of units and items added
    in SQL; per (day, region, item, class) a few thousand rows come back, from which the
    week, the region-day and the running volumes are added here. Returns (ratings,
    comments)."""
    dialect = _dialect(db)
    if dialect == "postgresql":
        # Hash aggregates of up to a chunk's ratings: in memory, not spilled in 4 MB pieces;
        # and no parallel workers, whose start costs more than they save on these groups.
        await db.execute(text("SET LOCAL work_mem = '128MB'"))
        await db.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    day = local_day(E.c.received_at, dialect).label("day")
    unit = func.coalesce(E.c.window_id, E.c.org_id).label("org_id")
    item = func.coalesce(E.c.item_id, 0).label("item_id")
    cls = case(
        (E.c.level <= 2, LevelClass.BAD.value),
        (E.c.level == 3, LevelClass.BASIC.value),
        else_=LevelClass.GOOD.value,
    ).label("level_class")
    has_comment = func.length(func.trim(func.coalesce(E.c.comment, ""), _SPACE)) > 0
    comments = func.sum(case((has_comment, 1), else_=0))
    region = func.coalesce(E.c.region_code, "").label("region_code")
    ratings_n = comments_n = 0
    for d, r, i, c, n, k in await db.execute(
        select(day, region, item, cls, func.count(), comments)
        .where(*where)
        .group_by(day, region, item, cls)
    ):
        d, n, k = as_date(d), int(n), int(k)
        ratings_n += n
        comments_n += k
        counts.week_volume[(week_of(d), r, int(i))] += n
        rvol = counts.region_volume.setdefault((d, r, c), [0, 0])
        rvol[0] += n
        rvol[1] += k
    if not ratings_n:
        return 0, 0
    await _add_select(
        db,
        VOLUME,
        select(day, unit, item, cls, func.count().label("ratings"), comments.label("comments"))
        .where(*where)
        .group_by(day, unit, item, cls),
        ("ratings", "comments"),
    )
    return ratings_n, comments_n


COMPLAINT_COLUMNS = (
    E.c.id,
    E.c.org_id,
    E.c.window_id,
    E.c.item_id,
    E.c.level,
    E.c.received_at,
    E.c.comment,
    cast(E.c.reasons, Text).label("reasons"),  # parsed once per distinct list
    E.c.region_code,
)


async def _fold(db: AsyncSession, lexicon: Lexicon, counts: Counts, lo: int, hi: int, ewm: int):
    """Count the first ratings lo < id <= hi: their volumes in SQL, then the complaints (bad
    and 基本满意: the only ones whose reasons and words are read) here, their comments
    segmented. Returns (ratings, comments counted, comments segmented)."""
    where = _counted(lo, hi, ewm)
    ratings, comments = await _fold_volumes(db, counts, where)
    segmented = 0
    if not ratings:
        return 0, 0, 0
    for start in range(lo, hi, READ_WINDOW):
        rows = (
            await db.execute(
                select(*COMPLAINT_COLUMNS).where(
                    *_counted(start, min(hi, start + READ_WINDOW), ewm), E.c.level <= 3
                )
            )
        ).all()
        # Segmentation is CPU work: in a thread, so that the server's requests go on.
        segmented += await asyncio.to_thread(_add_complaints, counts, lexicon, rows)
    return ratings, comments, segmented


def _add_complaints(counts: Counts, lexicon: Lexicon, rows: Sequence[Any]) -> int:
    """Add the complaints among `rows` to the counts; returns how many were segmented."""
    return sum(1 for row in rows if counts.add_complaint(lexicon, row))


async def _apply_events(
    db: AsyncSession, lexicon: Lexicon, counts: Counts, lo: int, hi: int, rating_wm: int
) -> int:
    """Standing events lo < id <= hi of ratings already counted (id <= rating_wm): a rating
    that leaves or rejoins the valid ones is taken away from or added to the counts."""
    events = (
        await db.execute(
            select(SE.c.evaluation_id, SE.c.from_standing, SE.c.to_standing)
            .where(SE.c.id > lo, SE.c.id <= hi, SE.c.evaluation_id <= rating_wm)
            .order_by(SE.c.id)
        )
    ).all()
    change: dict[int, list[str]] = {}
    for eid, old, new in events:
        change.setdefault(eid, [old, new])[1] = new
    moved = {eid: (new == "valid") - (old == "valid") for eid, (old, new) in change.items()}
    moved = {eid: sign for eid, sign in moved.items() if sign}
    if not moved:
        return 0
    rows = await db.execute(
        select(*RATING_COLUMNS).where(
            E.c.id.in_(list(moved)), E.c.eval_count == 1, E.c.is_default.is_(False)
        )
    )
    applied = 0
    for row in rows:
        counts.add(lexicon, row, moved[row.id])
        applied += 1
    return applied


async def _roll_run(db: AsyncSession, run: Run) -> bool:
    """Move the running sums to `run.week` when they are as of another week: rebuilt from
    the week rows (once a week: a few hundred thousand rows grouped). True when rebuilt."""
    if await jobs.watermark(db, WM_RUN, lock=True) == run.week.toordinal():
        return False
    await db.execute(delete(TERM_RUN))
    await db.execute(delete(VOLUME_RUN))
    for table, run_table, value in (
        (WEEK_TERM, TERM_RUN, WEEK_TERM.c.n),
        (WEEK_VOLUME, VOLUME_RUN, WEEK_VOLUME.c.ratings),
    ):
        keys = [table.c.week, table.c.region_code, table.c.item_id]
        if table is WEEK_TERM:
            keys.append(table.c.term)
        found = await db.execute(
            select(*keys, func.sum(value))
            .where(table.c.week >= run.since, table.c.week <= run.week, table.c.item_id != 0)
            .group_by(*keys)
        )
        if table is WEEK_TERM:
            bags: dict[tuple[date, str, int], Counter[str]] = {}
            for r in found:
                bags.setdefault((as_date(r[0]), r[1], r[2]), Counter())[r[3]] += int(r[4])
            rows = run.term_rows(bags)
        else:
            rows = run.volume_rows(Counter({(as_date(r[0]), r[1], r[2]): int(r[3]) for r in found}))
        await _bulk_add(db, run_table, rows, ("recent", "before"))
    await jobs.advance(db, WM_RUN, run.week.toordinal())
    return True


async def refresh(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    lexicons: Lexicons | None = None,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    chunk: int = CHUNK,
    limit: int | None = None,
) -> RefreshReport:
    """Segment and count the new first ratings and apply the standing changes (own
    transactions, one per chunk); safe in several processes (the watermark rows are locked).
    The running sums of the default emerging question move to the current week first when
    a new week has begun. `limit`: stop after about that many ratings."""
    lexicons = lexicons or Lexicons()
    report = RefreshReport()
    moment = now or utcnow()
    cutoff = moment - grace
    while limit is None or report.ratings < limit:
        async with sessionmaker() as db:
            wm = await jobs.watermark(db, WM_RATINGS, lock=True)
            ewm = await jobs.watermark(db, WM_EVENTS, lock=True)
            run = await Run.load(db, moment)
            rolled = await _roll_run(db, run)
            top = min(await _top(db, E, E.c.received_at, wm, cutoff), wm + chunk)
            new_ewm = await _top(db, SE, SE.c.created_at, ewm, cutoff)
            report.watermark = wm
            if top == wm and new_ewm == ewm:
                if rolled:
                    await db.commit()
                return report
            lexicon = await lexicons.current(db)
            counts = Counts()
            report.changes += await _apply_events(db, lexicon, counts, ewm, new_ewm, wm)
            ratings, comments, segmented = await _fold(db, lexicon, counts, wm, top, new_ewm)
            report.ratings += ratings
            report.comments += comments
            report.segmented += segmented
            report.rows += await counts.write(db, run)
            await jobs.advance(db, WM_RATINGS, top)
            await jobs.advance(db, WM_EVENTS, new_ewm)
            await db.commit()
            report.watermark = top
            if top - wm < chunk and new_ewm == ewm:
                # Everything committed so far is in; the next pass takes what arrives.
                break
    return report


async def rebuild(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    lexicons: Lexicons | None = None,
    now: datetime | None = None,
) -> RefreshReport:
    """Empty the counts and segment every comment again with today's dictionary (after
    dictionary words were added, to count the old comments with them too)."""
    async with sessionmaker() as db:
        await jobs.watermark(db, WM_RATINGS, lock=True)
        await jobs.watermark(db, WM_EVENTS, lock=True)
        await jobs.watermark(db, WM_RUN, lock=True)
        for table in (
            TERM,
            VOLUME,
            WEEK_TERM,
            WEEK_VOLUME,
            TERM_RUN,
            VOLUME_RUN,
            REGION_TERM,
            REGION_VOLUME,
        ):
            await db.execute(delete(table))
        for name in (WM_RATINGS, WM_EVENTS, WM_RUN):
            await jobs.advance(db, name, 0)
        await db.commit()
    return await refresh(sessionmaker, lexicons=lexicons, now=now)
