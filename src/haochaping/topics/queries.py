"""The reads of the text analysis: the most frequent terms, phrases and reason codes of a scope
and period, and the emerging topics. Scoped like every statistic (`analytics.metrics.resolve`:
404 unknown codes, 403 outside the caller's subtree, 422 a bad range); only the ratings that
count are in the tables (`jobs.py`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Table,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import metrics, source
from haochaping.analytics.periods import local_start
from haochaping.analytics.source import Scope
from haochaping.core.auth import Principal
from haochaping.core.errors import Invalid
from haochaping.core.models import JobState
from haochaping.core.security import mask_public_text
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation, ReasonTag
from haochaping.evaluations.standing import EvaluationStanding
from haochaping.orgs.models import Item, Org, Staff
from haochaping.topics import jobs, significance
from haochaping.topics.jobs import local_date, week_of
from haochaping.topics.models import (
    Gram,
    LevelClass,
    TopicTermDay,
    TopicTermWeek,
    TopicVolumeDay,
    TopicVolumeWeek,
)

TERM: Table = TopicTermDay.__table__  # type: ignore[assignment]
VOLUME: Table = TopicVolumeDay.__table__  # type: ignore[assignment]
WEEK_TERM: Table = TopicTermWeek.__table__  # type: ignore[assignment]
WEEK_VOLUME: Table = TopicVolumeWeek.__table__  # type: ignore[assignment]
TERM_RUN, VOLUME_RUN = jobs.TERM_RUN, jobs.VOLUME_RUN
REGION_TERM, REGION_VOLUME = jobs.REGION_TERM, jobs.REGION_VOLUME
E: Table = Evaluation.__table__  # type: ignore[assignment]
ES: Table = EvaluationStanding.__table__  # type: ignore[assignment]
# The comments of complaints: bad and 基本满意 ratings.
COMPLAINTS = (LevelClass.BAD.value, LevelClass.BASIC.value)
DEFAULT_DAYS = 30
MAX_WEEKS = 12
MAX_BASELINE_WEEKS = 26
# Tests turn it off to compare a region's top terms from the region-day rows with the day rows.
USE_REGION_DAYS = True


def _scoped(table: Table, scope: Scope) -> list[Any]:
    where: list[Any] = []
    if scope.org_ids is not None:
        where.append(table.c.org_id.in_(scope.org_ids))
    elif scope.path is not None:  # the subtree (and region) as a subquery on the path index
        where.append(table.c.org_id.in_(source.subtree_ids(scope.path, scope.region_path)))
    if scope.item_id is not None:
        where.append(table.c.item_id == scope.item_id)
    return where


# --- the most frequent terms ------------------------------------------------------------------


@dataclass
class TermCount:
    term: str
    count: int  # bad and 基本满意 comments naming it
    bad: int
    basic: int


@dataclass
class ReasonCount:
    code: str
    text: str
    count: int
    bad: int
    basic: int


@dataclass
class TopTerms:
    """The most frequent terms, phrases and reason codes of the bad and 基本满意 ratings of a
    scope over whole local days [first, last]."""

    first: date
    last: date
    ratings: int  # bad and 基本满意 ratings that count
    comments: int  # of them, with a comment
    terms: list[TermCount] = field(default_factory=list)
    phrases: list[TermCount] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)


def _days(since: datetime | None, until: datetime | None, now: datetime) -> tuple[date, date]:
    """The local days a range covers (the counts are per day): `until` exclusive."""
    end = until or now
    start = since or end - timedelta(days=DEFAULT_DAYS)
    return local_date(start), local_date(end - timedelta(microseconds=1))


async def _reason_texts(db: AsyncSession, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await db.execute(
        select(ReasonTag.code, ReasonTag.text)
        .where(ReasonTag.code.in_(codes))
        .order_by(ReasonTag.version)
    )
    return {r[0]: r[1] for r in rows}  # the newest version's text last, so it wins


async def top_terms(
    db: AsyncSession,
    *,
    actor: Principal,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> TopTerms:
    """The most frequent terms and phrases in the bad and 基本满意 comments of a scope and
    period, and the most frequent reason codes beside them (default: the last 30 days)."""
    ctx = await metrics.resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    first, last = _days(since, until, now or utcnow())
    src = await _source(db, ctx, narrowed=bool(org_code or item_code))
    if USE_REGION_DAYS and src.weekly:
        # A whole region (or everything) the caller sees entirely: the region-day rows, a few
        # per day and term, instead of the day rows of every unit and item.
        t, v = REGION_TERM, REGION_VOLUME
        scoped = [] if src.regions is None else [t.c.region_code.in_(src.regions)]
        v_scoped = [] if src.regions is None else [v.c.region_code.in_(src.regions)]
    else:
        t, v = TERM, VOLUME
        scoped, v_scoped = _scoped(TERM, ctx.scope), _scoped(VOLUME, ctx.scope)
    where = [
        *scoped,
        t.c.day >= first,
        t.c.day <= last,
        t.c.level_class.in_(COMPLAINTS),
    ]
    bad = func.sum(case((t.c.level_class == LevelClass.BAD.value, t.c.n), else_=0))
    total = func.sum(t.c.n)
    out = TopTerms(first, last, 0, 0)
    for gram in Gram:
        rows = (
            await db.execute(
                select(t.c.term, total.label("n"), bad.label("bad"))
                .where(*where, t.c.gram == gram.value)
                .group_by(t.c.term)
                .having(total > 0)
                .order_by(total.desc(), t.c.term)
                .limit(limit)
            )
        ).all()
        found = [TermCount(r.term, int(r.n), int(r.bad), int(r.n) - int(r.bad)) for r in rows]
        if gram is Gram.TERM:
            out.terms = found
        elif gram is Gram.PHRASE:
            out.phrases = found
        else:
            texts = await _reason_texts(db, [t.term for t in found])
            out.reasons = [
                ReasonCount(t.term, texts.get(t.term, ""), t.count, t.bad, t.basic) for t in found
            ]
    volume = (
        await db.execute(
            select(func.sum(v.c.ratings), func.sum(v.c.comments)).where(
                *v_scoped,
                v.c.day >= first,
                v.c.day <= last,
                v.c.level_class.in_(COMPLAINTS),
            )
        )
    ).one()
    out.ratings, out.comments = int(volume[0] or 0), int(volume[1] or 0)
    return out


# --- emerging topics --------------------------------------------------------------------------


@dataclass
class Example:
    """A comment naming the term, masked for anyone to read."""

    received_at: datetime
    level: int
    text: str


@dataclass
class Topic:
    """One emerging (item, term)."""

    item_code: str
    item_name: str
    term: str
    recent: int  # bad and 基本满意 comments naming it in the recent weeks
    before: int  # ... in the weeks before
    recent_ratings: int  # the item's ratings that count in the recent weeks
    before_ratings: int
    p_value: float
    score: float
    weekly: list[int] = field(default_factory=list)  # comments naming it, week by week
    examples: list[Example] = field(default_factory=list)


@dataclass
class Emerging:
    """The emerging topics of a scope, highest score first, and how they were found."""

    weeks: int
    baseline_weeks: int
    recent_since: date  # the first local day of the recent weeks
    baseline_since: date
    last: date  # the last local day counted
    tested: int  # (item, term) pairs tested
    min_count: int
    alpha: float
    week_starts: list[date] = field(default_factory=list)
    items: list[Topic] = field(default_factory=list)


def _check_weeks(weeks: int, baseline_weeks: int) -> None:
    if not 1 <= weeks <= MAX_WEEKS:
        raise Invalid(
            f"近期周数应在 1 到 {MAX_WEEKS} 之间",
            code="invalid_period",
            details=[{"field": "weeks", "value": weeks}],
        )
    if not 1 <= baseline_weeks <= MAX_BASELINE_WEEKS:
        raise Invalid(
            f"对照周数应在 1 到 {MAX_BASELINE_WEEKS} 之间",
            code="invalid_period",
            details=[{"field": "baseline_weeks", "value": baseline_weeks}],
        )


@dataclass
class _Source:
    """Where an emerging question reads: the week rows of whole regions (a region, or the
    whole tree, that the caller sees entirely) or else the day rows of the caller's units."""

    weekly: bool
    regions: tuple[str, ...] | None  # weekly: the region codes (None: every region)
    scope: Scope
    run_key: str | None = None  # weekly: the running sums' key of the same ratings

    def term_where(self, since: date, last: date) -> list[Any]:
        if self.weekly:
            where = [WEEK_TERM.c.week >= since, WEEK_TERM.c.week <= last]
            if self.regions is not None:
                where.append(WEEK_TERM.c.region_code.in_(self.regions))
            return where
        return [
            *_scoped(TERM, self.scope),
            TERM.c.item_id != 0,
            TERM.c.day >= since,
            TERM.c.day <= last,
            TERM.c.level_class.in_(COMPLAINTS),
            TERM.c.gram == Gram.TERM.value,
        ]

    @property
    def term_table(self) -> Table:
        return WEEK_TERM if self.weekly else TERM

    @property
    def when(self):
        return WEEK_TERM.c.week if self.weekly else TERM.c.day


async def _source(db: AsyncSession, ctx: metrics.Context, narrowed: bool) -> _Source:
    if not narrowed:
        if ctx.node_region is None and ctx.scope.org_ids is None and ctx.scope.path is None:
            return _Source(True, None, ctx.scope, jobs.ALL_REGIONS)
        if ctx.node_region is not None:
            codes = tuple(sorted(await source.region_paths(db, ctx.node_region.path)))
            everyone = (
                await db.execute(
                    select(func.count()).select_from(Org).where(Org.region_code.in_(codes))
                )
            ).scalar_one()
            if everyone == len(ctx.orgs):  # the caller sees the whole region
                return _Source(True, codes, ctx.scope, ctx.node_region.code)
    return _Source(False, None, ctx.scope)


async def emerging(
    db: AsyncSession,
    *,
    actor: Principal,
    region_code: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    weeks: int = 4,
    baseline_weeks: int = 8,
    min_count: int = significance.MIN_COUNT,
    alpha: float = significance.ALPHA,
    limit: int = 20,
    examples: int = 3,
    now: datetime | None = None,
) -> Emerging:
    """Terms of the bad and 基本满意 comments whose rate per rating of an item rose
    significantly in the last `weeks` ISO weeks (this one included, up to today) against the
    `baseline_weeks` weeks before (`significance.py`), per item, highest score first, with
    masked example comments and their weekly counts."""
    _check_weeks(weeks, baseline_weeks)
    ctx = await metrics.resolve(
        db=db, actor=actor, region_code=region_code, org_code=org_code, item_code=item_code
    )
    src = await _source(db, ctx, narrowed=bool(org_code or item_code))
    last = local_date(now or utcnow())
    recent_since = week_of(last) - timedelta(days=7 * (weeks - 1))
    baseline_since = recent_since - timedelta(days=7 * baseline_weeks)
    out = Emerging(weeks, baseline_weeks, recent_since, baseline_since, last, 0, min_count, alpha)
    out.week_starts = [
        baseline_since + timedelta(days=7 * i) for i in range(weeks + baseline_weeks)
    ]
    pairs: Sequence[Any]  # (item_id, term, recent, before, ...)
    if await _run_answers(db, src, weeks, baseline_weeks, last):
        # The running sums of the default question, kept by the job as of this week.
        key = src.run_key
        tr, vr = TERM_RUN.c, VOLUME_RUN.c
        tested = (
            await db.execute(
                select(func.count()).where(tr.region_code == key, tr.recent >= min_count)
            )
        ).scalar_one()
        if not tested:
            return out
        # Only the pairs that may be emerging come back: those whose rate rose and that
        # Slud's inequality does not already rule out (`significance.may_be_emerging`, the
        # same conditions). The others are tested and found wanting without a p-value, so
        # they count in `tested` only: of the 17,000 pairs of a province, a dozen come back.
        z = significance.z_bound(alpha / tested)
        k, b = cast(tr.recent, BigInteger), cast(tr.before, BigInteger)
        m, n = vr.recent + cast(vr.before, BigInteger), k + b
        excess = cast(k, Float) * m - cast(n, Float) * vr.recent
        pairs = (
            await db.execute(
                select(tr.item_id, tr.term, tr.recent, tr.before, vr.recent, vr.before)
                .select_from(
                    TERM_RUN.join(
                        VOLUME_RUN, and_(vr.region_code == tr.region_code, vr.item_id == tr.item_id)
                    )
                )
                .where(
                    tr.region_code == key,
                    tr.recent >= min_count,
                    vr.recent > 0,
                    vr.before > 0,
                    k * vr.before > b * vr.recent,  # the rate rose
                    or_(
                        vr.recent > vr.before,
                        and_(4 * vr.recent > m, k * m > n * vr.before),
                        excess * excess
                        > z * z * cast(n, Float) * cast(vr.recent, Float) * vr.before,
                    ),
                )
            )
        ).all()
        volume = {p[0]: (int(p[4]), int(p[5])) for p in pairs}
    else:
        t = src.term_table
        is_recent = src.when >= recent_since
        recent = func.sum(case((is_recent, t.c.n), else_=0))
        before = func.sum(case((is_recent, 0), else_=t.c.n))
        pairs = (
            await db.execute(
                select(t.c.item_id, t.c.term, recent.label("recent"), before.label("before"))
                .where(*src.term_where(baseline_since, last))
                .group_by(t.c.item_id, t.c.term)
                .having(recent >= min_count)
            )
        ).all()
        if not pairs:
            return out
        volume = await _volume(
            db, src, {p.item_id for p in pairs}, baseline_since, recent_since, last
        )
        tested = len(pairs)
    out.tested = tested
    found: list[tuple[float, int, str, int, int, significance.Verdict]] = []
    threshold = alpha / max(1, out.tested)  # Bonferroni: only p-values under it matter
    for p in pairs:
        n_recent, n_before = volume.get(p.item_id, (0, 0))
        verdict = significance.test(
            int(p.recent), int(p.before), n_recent, n_before, below=threshold
        )
        if significance.emerging(
            verdict, int(p.recent), tested=out.tested, alpha=alpha, min_count=min_count
        ):
            found.append((verdict.score, p.item_id, p.term, int(p.recent), int(p.before), verdict))
    found.sort(key=lambda f: (-f[0], -f[3], f[2], f[1]))
    found = found[:limit]
    if not found:
        return out
    items = {
        r.id: (r.code, r.name)
        for r in await db.execute(
            select(Item.id, Item.code, Item.name).where(Item.id.in_({f[1] for f in found}))
        )
    }
    weekly = await _weekly(db, src, [(f[1], f[2]) for f in found], baseline_since, last)
    shown: dict[tuple[int, str], list[Example]] = {}
    if examples:
        shown = await _examples(
            db, ctx.scope, [(f[1], f[2]) for f in found], recent_since, examples
        )
    for score, item_id, term, n_recent_t, n_before_t, verdict in found:
        code, name = items.get(item_id, ("", ""))
        n_recent, n_before = volume.get(item_id, (0, 0))
        topic = Topic(
            code,
            name,
            term,
            n_recent_t,
            n_before_t,
            n_recent,
            n_before,
            verdict.p_value,
            score,
            weekly.get((item_id, term), [0] * len(out.week_starts)),
        )
        topic.examples = shown.get((item_id, term), [])
        out.items.append(topic)
    return out


USE_RUN = True  # tests turn it off to compare the running sums with the week rows


async def _run_answers(
    db: AsyncSession, src: _Source, weeks: int, baseline_weeks: int, last: date
) -> bool:
    """Whether the running sums answer: a weekly question with the default weeks, and the
    sums as of the question's week (the job moves them on in the first pass of a week)."""
    if not (USE_RUN and src.weekly and src.run_key is not None):
        return False
    if (weeks, baseline_weeks) != (jobs.RUN_WEEKS, jobs.RUN_BASELINE):
        return False
    as_of = (
        await db.execute(select(JobState.value).where(JobState.name == jobs.WM_RUN))
    ).scalar_one_or_none()
    return as_of == week_of(last).toordinal()


async def _volume(
    db: AsyncSession, src: _Source, item_ids: set[int], since: date, split: date, last: date
) -> dict[int, tuple[int, int]]:
    """Each item's ratings that count, in the recent weeks and the weeks before."""
    if src.weekly:
        when, ratings = WEEK_VOLUME.c.week, WEEK_VOLUME.c.ratings
        where = [WEEK_VOLUME.c.item_id.in_(item_ids), when >= since, when <= last]
        if src.regions is not None:
            where.append(WEEK_VOLUME.c.region_code.in_(src.regions))
        item = WEEK_VOLUME.c.item_id
    else:
        when, ratings = VOLUME.c.day, VOLUME.c.ratings
        where = [*_scoped(VOLUME, src.scope), VOLUME.c.item_id.in_(item_ids)]
        where += [when >= since, when <= last]
        item = VOLUME.c.item_id
    v_recent = func.sum(case((when >= split, ratings), else_=0))
    v_before = func.sum(case((when >= split, 0), else_=ratings))
    rows = await db.execute(
        select(item, v_recent.label("recent"), v_before.label("before"))
        .where(*where)
        .group_by(item)
    )
    return {r[0]: (int(r.recent), int(r.before)) for r in rows}


async def _weekly(
    db: AsyncSession, src: _Source, pairs: list[tuple[int, str]], since: date, last: date
) -> dict[tuple[int, str], list[int]]:
    """Comments naming each (item, term), ISO week by ISO week from `since` (a Monday)."""
    size = (week_of(last) - since).days // 7 + 1
    out: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * size)
    t = src.term_table
    rows = await db.execute(
        select(t.c.item_id, t.c.term, src.when, func.sum(t.c.n))
        .where(
            *src.term_where(since, last),
            or_(*(and_(t.c.item_id == i, t.c.term == term) for i, term in pairs)),
        )
        .group_by(t.c.item_id, t.c.term, src.when)
    )
    for item_id, term, day, n in rows:
        day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        out[(item_id, term)][(week_of(day) - since).days // 7] += int(n or 0)
    return dict(out)


EXAMPLES_PAGE = 40  # complaints read per shown term of an item, newest first, per page


async def _examples(
    db: AsyncSession, scope: Scope, pairs: list[tuple[int, str]], since: date, limit: int
) -> dict[tuple[int, str], list[Example]]:
    """The newest bad or 基本满意 comments of each (item, term) in the recent weeks, masked as
    the public pages mask free text (numbers, the rater's and the staff's names).

    Each item's complaints are walked newest first on the `(item_id, received_at)` index, a
    page at a time, and matched against the item's terms here: the first page of every item
    in one statement, further pages only for an item with a term still short. (A term in
    SQL, `LIKE '%term%'`, made the planner expect one row, read all of an item's recent
    ratings and sort them: thousands of heap pages at province scale.)"""
    unit = func.coalesce(E.c.window_id, E.c.org_id)
    where = [
        E.c.eval_count == 1,
        E.c.is_default.is_(False),
        E.c.level <= 3,
        E.c.comment.is_not(None),
        E.c.received_at >= local_start(since),
        or_(ES.c.standing.is_(None), ES.c.standing == "valid"),
    ]
    if scope.org_ids is not None:
        where.append(unit.in_(scope.org_ids))
    elif scope.path is not None:
        where.append(unit.in_(source.subtree_ids(scope.path, scope.region_path)))
    joined = E.outerjoin(ES, ES.c.evaluation_id == E.c.id).outerjoin(
        Staff, Staff.id == E.c.staff_id
    )
    terms_of: dict[int, list[str]] = defaultdict(list)
    for item_id, term in pairs:
        terms_of[item_id].append(term)
    out: dict[tuple[int, str], list[Example]] = {pair: [] for pair in pairs}

    def page(item_id: int, after: tuple[datetime, int] | None) -> Any:
        stmt = select(
            E.c.item_id,
            E.c.id,
            E.c.received_at,
            E.c.level,
            E.c.comment,
            E.c.rater_name,
            Staff.name.label("staff_name"),
        ).where(*where, E.c.item_id == item_id)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(
                or_(E.c.received_at < at, and_(E.c.received_at == at, E.c.id < last_id))
            )
        return (
            stmt.select_from(joined)
            .order_by(E.c.received_at.desc(), E.c.id.desc())
            .limit(EXAMPLES_PAGE * len(terms_of[item_id]))
        )

    def take(rows: Sequence[Any]) -> dict[int, tuple[datetime, int]]:
        """Shown examples from a page; the items to read on, with where their page ended."""
        ends: dict[int, tuple[datetime, int]] = {}
        seen: dict[int, int] = defaultdict(int)
        for r in rows:
            seen[r.item_id] += 1
            ends[r.item_id] = (r.received_at, r.id)
            for term in terms_of[r.item_id]:
                shown = out[(r.item_id, term)]
                if len(shown) < limit and term in r.comment:
                    masked = mask_public_text(r.comment, (r.rater_name or "", r.staff_name or ""))
                    shown.append(Example(r.received_at, int(r.level), masked or ""))
        return {
            item_id: end
            for item_id, end in ends.items()
            if seen[item_id] == EXAMPLES_PAGE * len(terms_of[item_id])
            and any(len(out[(item_id, t)]) < limit for t in terms_of[item_id])
        }

    if not pairs:
        return out
    first = [page(item_id, None).subquery(f"item{k}") for k, item_id in enumerate(terms_of)]
    rows = (await db.execute(union_all(*(select(f) for f in first)))).all()
    more = take(sorted(rows, key=lambda r: (r.item_id, r.received_at, r.id), reverse=True))
    while more:
        item_id, after = more.popitem()
        found = take((await db.execute(page(item_id, after))).all())
        more.update(found)
    return out
