"""The figures of 好差评, defined once (DOMAIN.md §8, docs/metrics.md).

Every surface — the statistics API, the dashboard, the rankings, the public pages and the
downloads — asks this module, so the same question gives the same number. Each function is
async, keyword-only, takes `db` and the caller (`actor`, whose organisation subtree limits
every read) and returns a typed result. The formulas come from the policy of the region the
question is about (`policies/schemas.py` PolicyValues: good levels, points per level, what
"rectified on time" means, the ranking figure, the minimum sample, bottom N and K, the
public k-anonymity), inherited down the region tree like every other policy value.

The counts come from `analytics/source.py` (the SQL seam); this module applies the formula.
Periods and days are in Asia/Shanghai local time (`analytics/periods.py`)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import periods as P
from haochaping.analytics import source
from haochaping.analytics.source import LevelCounts, OrgRow, Scope
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.choices import CHANNEL_LABELS, LEVEL_LABELS
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Region
from haochaping.policies import service as policy_service
from haochaping.policies.schemas import PolicyValues

Granularity = Literal["day", "week", "month"]
BreakdownBy = Literal["level", "channel", "reason", "child", "item", "staff"]
Tier = Literal["region", "department", "hall", "window", "staff", "item"]
GRANULARITIES: tuple[str, ...] = ("day", "week", "month")
BREAKDOWNS: tuple[str, ...] = ("level", "channel", "reason", "child", "item", "staff")
TIERS: tuple[str, ...] = ("region", "department", "hall", "window", "staff", "item")
# A time series without `since` covers this much before `until`.
DEFAULT_SPAN = {
    "day": timedelta(days=30),
    "week": timedelta(weeks=12),
    "month": timedelta(days=365),
}
NONE_CODE = "-"  # the group of ratings that name no item / no staff member


# --- the formula ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Formula:
    """The policy values the figures use, for one region."""

    region_code: str | None
    good_levels: frozenset[int]
    bad_levels: frozenset[int]
    points: dict[int, int]  # level -> points
    rectified_on_time: str
    ranking_metric: str
    min_sample: int
    bottom_n: int
    bottom_k: int
    public_min_cell: int
    held_counts: bool

    @classmethod
    def of(cls, values: PolicyValues, region_code: str | None = None) -> Formula:
        return cls(
            region_code=region_code,
            good_levels=values.good_level_set(),
            bad_levels=frozenset(values.bad_levels),
            points={5 - i: p for i, p in enumerate(values.level_points)},
            rectified_on_time=values.rectified_on_time,
            ranking_metric=values.ranking_metric,
            min_sample=values.min_sample,
            bottom_n=values.bottom_n,
            bottom_k=values.bottom_k,
            public_min_cell=values.public_min_cell,
            held_counts=values.held_ratings_count,
        )

    @property
    def tie_break(self) -> str:
        return "good_rate" if self.ranking_metric == "score" else "score"

    def describe(self) -> dict[str, Any]:
        """The formula as the rankings answer states it."""
        return {
            "region_code": self.region_code,
            "metric": self.ranking_metric,
            "tie_break": self.tie_break,
            "good_levels": sorted(self.good_levels, reverse=True),
            "bad_levels": sorted(self.bad_levels, reverse=True),
            "points": {str(level): self.points[level] for level in (5, 4, 3, 2, 1)},
            "min_sample": self.min_sample,
            "ties": "competition",  # 1, 2, 2, 4
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one group of counted ratings (rates and score None when there are none)."""

    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None


def _exact(counts: LevelCounts, formula: Formula) -> tuple[int, int, int, int]:
    total = sum(counts)
    good = sum(counts[lv - 1] for lv in formula.good_levels)
    bad = sum(counts[lv - 1] for lv in formula.bad_levels)
    points = sum(counts[lv - 1] * formula.points[lv] for lv in range(1, 6))
    return total, good, bad, points


def figures(counts: LevelCounts, formula: Formula) -> Figures:
    """好评率 = good / total; 差评率 = bad / total; score = Σ points / total."""
    total, good, bad, points = _exact(counts, formula)
    return Figures(
        total=total,
        good=good,
        bad=bad,
        good_rate=round(good / total, 6) if total else None,
        bad_rate=round(bad / total, 6) if total else None,
        score=round(points / total, 3) if total else None,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


# --- scope ------------------------------------------------------------------------------------


@dataclass
class Context:
    """A resolved question: what to count, under which formula, and the tree around it."""

    scope: Scope
    formula: Formula
    orgs: dict[int, OrgRow]  # the organisations in scope, by id
    node_org: OrgRow | None  # the organisation the question is about (org_code, else the
    # caller's own organisation when no region_code is given)
    node_region: Region | None  # the region the question is about (region_code), if any
    policy_region: str | None


def _not_found_item(code: str) -> NotFound:
    return NotFound(
        f"事项 {code} 不存在",
        code="item_not_found",
        details=[{"field": "item_code", "value": code}],
    )


async def _policy(db: AsyncSession, region_code: str | None, on: date) -> PolicyValues:
    if not region_code:
        return PolicyValues()
    try:
        values, _ = await policy_service.effective(db=db, region_code=region_code, on=on)
    except NotFound:  # an organisation outside the region tree: the national defaults
        return PolicyValues()
    return values


async def resolve(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Context:
    """Check the filters (404 unknown org/item/region, 403 an org outside the caller's
    subtree, 422 a bad range) and resolve them into a `Context`."""
    P.check_range(since, until if until is not None or since is None else utcnow())
    node_org_model = None
    if org_code:
        node_org_model = await org_service.get_org(db=db, code=org_code)
        actor.require(node_org_model.path)
    node_region = await org_service.get_region(db=db, code=region_code) if region_code else None
    item_id = None
    if item_code:
        item_id = await source.item_id(db, item_code)
        if item_id is None:
            raise _not_found_item(item_code)
    prefix = node_org_model.path if node_org_model is not None else actor.org_path
    orgs = {o.id: o for o in await source.org_rows(db, prefix)}
    if node_region is not None:
        codes = set(await source.region_paths(db, node_region.path))
        orgs = {i: o for i, o in orgs.items() if o.region_code in codes}
    root = next((o for o in orgs.values() if o.path == prefix), None)
    # The organisation the question is about: org_code's, else the caller's own unless the
    # question names a region.
    node_org = root if org_code or node_region is None else None
    whole = node_region is None and (
        prefix == "/"
        # A caller at the top of the only tree: no filter beats a list of every id.
        or len(orgs) == await source.org_count(db)
    )
    by_window = root is not None and root.kind == "window"
    scope_ids = None if whole else tuple(sorted(orgs))
    policy_region = (
        node_region.code
        if node_region is not None
        else root.region_code
        if root is not None
        else None
    )
    if policy_region is None:  # the whole tree: the policy of the one top region, if one
        tops = await source.top_regions(db)
        policy_region = tops[0] if len(tops) == 1 else None
    # The policy in force on the range's last day (`until` is exclusive), or today.
    last = min(until - timedelta(microseconds=1), utcnow()) if until else utcnow()
    on = P.local_day(last)
    values = await _policy(db, policy_region, on)
    formula = Formula.of(values, policy_region)
    scope = Scope(
        org_ids=scope_ids,
        by_window=by_window,
        item_id=item_id,
        since=since,
        until=until,
        held_counts=formula.held_counts,
        # The subtree's root, where the rollups keep its figures (not when a region narrows
        # the organisations to a part of a subtree).
        node=(root.id, root.path) if root is not None and node_region is None else None,
    )
    return Context(scope, formula, orgs, node_org, node_region, policy_region)


# --- summary ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of counted ratings in scope, the excluded ones, and the bad-review funnel."""

    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    default_ratings: int
    invalid: int
    held: int
    opened: int
    verified_on_time: int
    rectified_on_time: int
    called_back: int
    callback_satisfied: int
    supervised: int
    overdue_open: int
    rectified_on_time_rate: float | None
    callback_rate: float | None
    callback_satisfied_rate: float | None
    verified_on_time_rate: float | None


async def summary(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Summary:
    """Counts, rates and score of the counted ratings in scope, plus the funnel."""
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    return await summary_of(db=db, ctx=ctx, now=now)


async def summary_of(*, db: AsyncSession, ctx: Context, now: datetime | None = None) -> Summary:
    """`summary` of an already resolved question."""
    counts, excluded = await source.totals(db, ctx.scope)
    fig = figures(counts, ctx.formula)
    funnel = await source.funnel_counts(
        db,
        ctx.scope,
        now=now or utcnow(),
        rectified_basis=ctx.formula.rectified_on_time,
        bad_levels=sorted(ctx.formula.bad_levels),
    )
    return Summary(
        **asdict(fig),
        **excluded,
        **funnel,
        # 整改率 = bad reviews rectified on time / valid bad reviews (DOMAIN.md §8)
        rectified_on_time_rate=_rate(funnel["rectified_on_time"], fig.bad),
        # 回访率 = orders whose rater was reached / orders opened
        callback_rate=_rate(funnel["called_back"], funnel["opened"]),
        # 回访满意率 = satisfied (满意/基本满意) / reached
        callback_satisfied_rate=_rate(funnel["callback_satisfied"], funnel["called_back"]),
        verified_on_time_rate=_rate(funnel["verified_on_time"], funnel["opened"]),
    )


# --- time series ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    period: str
    total: int
    good_rate: float | None
    bad: int
    score: float | None


@dataclass(frozen=True, slots=True)
class Series:
    granularity: str
    items: list[SeriesPoint]


_LABEL = {"day": P.day_label, "week": P.week_label, "month": P.month_label}


async def timeseries(
    *,
    db: AsyncSession,
    actor: Principal,
    granularity: Granularity = "day",
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Series:
    """The figures per local day, ISO week (`2026-W48`) or month (`2026-11`), every period
    of the range present (empty ones with total 0). Without `until`: now; without `since`:
    30 days (day), 12 weeks (week) or 365 days (month) before `until`."""
    if granularity not in GRANULARITIES:
        raise ValueError(granularity)
    end = until or utcnow()
    start = since or end - DEFAULT_SPAN[granularity]
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=start,
        until=end,
    )
    by_day = await source.level_counts(db, ctx.scope, "day")
    label = _LABEL[granularity]
    buckets: dict[str, LevelCounts] = {}
    last = P.local_day(end - timedelta(microseconds=1)) if end > start else P.local_day(start)
    for day in P.days(P.local_day(start), last + timedelta(days=1)):
        buckets.setdefault(label(day), [0] * 5)
    for day_text, counts in by_day.items():
        bucket = buckets.setdefault(label(date.fromisoformat(str(day_text))), [0] * 5)
        for i in range(5):
            bucket[i] += counts[i]
    items = []
    for period in sorted(buckets):
        fig = figures(buckets[period], ctx.formula)
        items.append(SeriesPoint(period, fig.total, fig.good_rate, fig.bad, fig.score))
    return Series(granularity, items)


# --- units: how ratings map to the rows of a breakdown or a ranking ---------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    kind: str | None = None  # of a child row: region, org or staff


def _ancestor(orgs: dict[int, OrgRow], org_id: int, kind: str) -> OrgRow | None:
    """The nearest organisation of a kind at or above this one, inside the scope."""
    seen = 0
    current = orgs.get(org_id)
    while current is not None and seen < 64:
        if current.kind == kind:
            return current
        current = orgs.get(current.parent_id) if current.parent_id else None
        seen += 1
    return None


def _add(into: dict[str, LevelCounts], key: str, counts: LevelCounts) -> None:
    bucket = into.setdefault(key, [0] * 5)
    for i in range(5):
        bucket[i] += counts[i]


async def _staff_units(
    db: AsyncSession, by_id: dict[Any, LevelCounts]
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    found = await source.staff_names(db, [i for i in by_id if i is not None])
    names = {i: Unit(no, name, "staff") for i, (no, name) in found.items()}
    counts: dict[str, LevelCounts] = {}
    units: dict[str, Unit] = {}
    for i, c in by_id.items():
        unit = names.get(i) if i is not None else Unit(NONE_CODE, "未关联工作人员", "staff")
        if unit is None:
            continue
        _add(counts, unit.code, c)
        units[unit.code] = unit
    return counts, units


async def _item_units(
    db: AsyncSession, by_id: dict[Any, LevelCounts]
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    found = await source.item_names(db, [i for i in by_id if i is not None])
    names = {i: Unit(code, name) for i, (code, name) in found.items()}
    counts: dict[str, LevelCounts] = {}
    units: dict[str, Unit] = {}
    for i, c in by_id.items():
        unit = names.get(i) if i is not None else Unit(NONE_CODE, "未关联事项")
        if unit is None:
            continue
        _add(counts, unit.code, c)
        units[unit.code] = unit
    return counts, units


async def _child_region_map(
    db: AsyncSession, ctx: Context, region: Region
) -> tuple[dict[int, Region], dict[str, Region]]:
    """Each organisation in scope -> the child region of `region` it lies in (if any)."""
    children = await source.child_regions(db, region.code)
    if not children:
        return {}, children
    paths = await source.region_paths(db, region.path)
    depth = len([c for c in region.path.split("/") if c])
    out: dict[int, Region] = {}
    for org in ctx.orgs.values():
        path = paths.get(org.region_code)
        parts = [p for p in path.split("/") if p] if path else []
        if len(parts) > depth and parts[depth] in children:
            out[org.id] = children[parts[depth]]
    return out, children


async def _region_units(
    db: AsyncSession, ctx: Context, by_unit: dict[Any, LevelCounts], region: Region | None
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    """Ratings per child region of `region` (by their organisation's region)."""
    counts: dict[str, LevelCounts] = {}
    units: dict[str, Unit] = {}
    if region is None:
        return counts, units
    child_of, _ = await _child_region_map(db, ctx, region)
    for org_id, c in by_unit.items():
        child = child_of.get(org_id)
        if child is not None:
            _add(counts, child.code, c)
            units[child.code] = Unit(child.code, child.name, "region")
    return counts, units


def _org_units(
    ctx: Context, by_unit: dict[Any, LevelCounts], pick: Any
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    counts: dict[str, LevelCounts] = {}
    units: dict[str, Unit] = {}
    for org_id, c in by_unit.items():
        org = pick(org_id)
        if org is not None:
            _add(counts, org.code, c)
            units[org.code] = Unit(org.code, org.name, "org")
    return counts, units


async def _tier_units(
    db: AsyncSession, ctx: Context, tier: str
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    """Counted ratings per unit of a ranking tier, in scope."""
    if tier in ("staff", "item"):  # ratings that name no staff member / item are no unit
        by_id = await source.level_counts(db, ctx.scope, tier)
        by_id.pop(None, None)
        pick = _staff_units if tier == "staff" else _item_units
        return await pick(db, by_id)
    by_unit = await source.level_counts(db, ctx.scope, "unit")
    if tier == "region":
        region = ctx.node_region or await _region_of(db, ctx)
        return await _region_units(db, ctx, by_unit, region)
    return _org_units(ctx, by_unit, lambda org_id: _ancestor(ctx.orgs, org_id, tier))


async def _region_of(db: AsyncSession, ctx: Context) -> Region | None:
    if ctx.policy_region is None:
        return None
    return await source.region(db, ctx.policy_region)


# --- breakdown --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    code: str
    name: str
    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    kind: str | None = None  # `child` rows: region, org or staff (what the code names)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Rows of one breakdown; for `child`, `child_kind` says what the codes name: `region`
    (drill down with region_code), `org` (with org_code) or `staff`."""

    by: str
    child_kind: str | None
    rows: list[BreakdownRow]


def _rows(
    counts: dict[str, LevelCounts], units: dict[str, Unit], formula: Formula, limit: int | None
) -> list[BreakdownRow]:
    rows = [
        BreakdownRow(code, units[code].name, **asdict(figures(c, formula)), kind=units[code].kind)
        for code, c in counts.items()
    ]
    rows.sort(key=lambda r: (-r.total, r.code))
    return rows[:limit] if limit else rows


async def _reason_units(
    db: AsyncSession, ctx: Context
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    counts = await source.reason_counts(db, ctx.scope)
    texts = await source.reason_texts(db, list(counts))
    return counts, {code: Unit(code, texts.get(code, code)) for code in counts}


async def _child_units(
    db: AsyncSession, ctx: Context
) -> tuple[str, dict[str, LevelCounts], dict[str, Unit]]:
    """One tier below the node: a region's child regions (when any of them holds an
    organisation in scope), else its top-level organisations; an organisation's child
    organisations; a window's (or any childless organisation's) staff."""
    by_unit = await source.level_counts(db, ctx.scope, "unit")
    if ctx.node_region is not None and ctx.node_org is None:
        region = ctx.node_region
        child_of, _ = await _child_region_map(db, ctx, region)
        # The units located in the region itself, not in one of its child regions (a city's
        # own halls and departments): their top-level organisations.
        tops = {
            o.id
            for o in ctx.orgs.values()
            if o.id not in child_of and (o.parent_id is None or o.parent_id not in ctx.orgs)
        }
        counts: dict[str, LevelCounts] = {}
        units: dict[str, Unit] = {}
        for org_id, c in by_unit.items():
            child = child_of.get(org_id)
            if child is not None:
                _add(counts, child.code, c)
                units[child.code] = Unit(child.code, child.name, "region")
                continue
            top = _top_in(ctx.orgs, org_id, tops)
            if top is not None:
                _add(counts, top.code, c)
                units[top.code] = Unit(top.code, top.name, "org")
        return ("region" if child_of else "org"), counts, units
    node = ctx.node_org
    if node is None:  # the whole tree (a system caller): its root organisations
        roots = {o.id for o in ctx.orgs.values() if o.parent_id is None}
        counts, units = _org_units(ctx, by_unit, lambda org_id: _top_in(ctx.orgs, org_id, roots))
        return "org", counts, units
    kids = {o.id for o in ctx.orgs.values() if o.parent_id == node.id}
    if kids:
        counts, units = _org_units(ctx, by_unit, lambda org_id: _top_in(ctx.orgs, org_id, kids))
        return "org", counts, units
    staff_counts, staff_units = await _staff_units(
        db, await source.level_counts(db, ctx.scope, "staff")
    )
    return "staff", staff_counts, staff_units


def _top_in(orgs: dict[int, OrgRow], org_id: int, tops: set[int]) -> OrgRow | None:
    """The organisation among `tops` at or above this one."""
    current = orgs.get(org_id)
    seen = 0
    while current is not None and seen < 64:
        if current.id in tops:
            return current
        current = orgs.get(current.parent_id) if current.parent_id else None
        seen += 1
    return None


async def breakdown(
    *,
    db: AsyncSession,
    actor: Principal,
    by: BreakdownBy,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> Breakdown:
    """The figures per level (5…1), channel, reason tag, child node, item or staff member,
    biggest first (levels in order 5…1)."""
    if by not in BREAKDOWNS:
        raise ValueError(by)
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    f = ctx.formula
    child_kind = None
    if by == "level":
        total = (await source.level_counts(db, ctx.scope)).get(None, [0] * 5)
        rows = []
        for level in (5, 4, 3, 2, 1):
            single = [0] * 5
            single[level - 1] = total[level - 1]
            rows.append(
                BreakdownRow(str(level), LEVEL_LABELS.get(level, ""), **asdict(figures(single, f)))
            )
        return Breakdown(by, None, rows[:limit] if limit else rows)
    if by == "channel":
        counts = await source.level_counts(db, ctx.scope, "channel")
        units = {c: Unit(c, CHANNEL_LABELS.get(c, c)) for c in counts}
    elif by == "reason":
        counts, units = await _reason_units(db, ctx)
    elif by == "item":
        counts, units = await _item_units(db, await source.level_counts(db, ctx.scope, "item"))
    elif by == "staff":
        counts, units = await _staff_units(db, await source.level_counts(db, ctx.scope, "staff"))
    else:
        child_kind, counts, units = await _child_units(db, ctx)
    rows = _rows(counts, units, f, limit)
    if by != "child":  # `kind` tells a drill-down's rows apart; elsewhere it is `by`
        rows = [dataclasses.replace(r, kind=None) for r in rows]
    return Breakdown(by, child_kind, rows)


# --- rankings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankRow:
    rank: int | None
    code: str
    name: str
    total: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    rank_change: int | None = None


@dataclass(frozen=True, slots=True)
class Rankings:
    tier: str
    period: str
    live: bool
    since: datetime
    until: datetime
    items: list[RankRow]
    unranked: list[RankRow]
    formula: dict[str, Any]
    min_sample: int


def _key(counts: LevelCounts, formula: Formula) -> tuple[Fraction, Fraction]:
    """The exact figures a unit is ranked by, best first when sorted in reverse."""
    total, good, _, points = _exact(counts, formula)
    by = {"score": Fraction(points, total), "good_rate": Fraction(good, total)}
    return by[formula.ranking_metric], by[formula.tie_break]


def rank(
    counts: dict[str, LevelCounts], units: dict[str, Unit], formula: Formula
) -> tuple[list[RankRow], list[RankRow]]:
    """Competition ranking (1, 2, 2, 4) of the units with at least `min_sample` counted
    ratings by the formula's figure, then the other figure; equal on both, equal rank.
    The units below the minimum sample come apart, unranked, biggest first."""
    totals: dict[str, int] = {code: int(sum(c)) for code, c in counts.items()}
    ranked = [code for code, n in totals.items() if n and n >= formula.min_sample]
    keys = {code: _key(counts[code], formula) for code in ranked}
    ranked.sort(key=lambda code: (tuple(-k for k in keys[code]), code))
    rows: list[RankRow] = []
    previous_key = None
    current_rank = 0
    for position, code in enumerate(ranked, start=1):
        if keys[code] != previous_key:
            current_rank, previous_key = position, keys[code]
        fig = figures(counts[code], formula)
        rows.append(
            RankRow(
                current_rank,
                code,
                units[code].name,
                fig.total,
                fig.good_rate,
                fig.bad_rate,
                fig.score,
            )
        )
    below = sorted(
        (code for code, n in totals.items() if code not in keys and n),
        key=lambda code: (-totals[code], code),
    )
    unranked = []
    for code in below:
        fig = figures(counts[code], formula)
        unranked.append(
            RankRow(None, code, units[code].name, fig.total, fig.good_rate, fig.bad_rate, fig.score)
        )
    return rows, unranked


async def _ranked_period(
    db: AsyncSession, ctx: Context, tier: str, period: P.Period
) -> tuple[list[RankRow], list[RankRow]]:
    since, until = period.bounds()
    sub = Context(
        ctx.scope.narrowed(since, until),
        ctx.formula,
        ctx.orgs,
        ctx.node_org,
        ctx.node_region,
        ctx.policy_region,
    )
    counts, units = await _tier_units(db, sub, tier)
    return rank(counts, units, ctx.formula)


async def rankings(
    *,
    db: AsyncSession,
    actor: Principal,
    tier: Tier,
    period: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    now: datetime | None = None,
) -> Rankings:
    """The ranking of a tier's units in scope for a month (`2026-11`), quarter (`2026-Q4`),
    year (`2026`) or, without a period, live for the current month; `rank_change` is the
    previous period's rank minus this one (positive: moved up), None when not ranked then."""
    if tier not in TIERS:
        raise ValueError(tier)
    moment = now or utcnow()
    live = period is None
    current = P.current_period("month", moment) if period is None else P.parse_period(period)
    since, until = current.bounds()
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    items, unranked = await _ranked_period(db, ctx, tier, current)
    before, _ = await _ranked_period(db, ctx, tier, current.previous())
    previous_rank = {r.code: r.rank for r in before if r.rank is not None}
    items = [
        RankRow(
            r.rank,
            r.code,
            r.name,
            r.total,
            r.good_rate,
            r.bad_rate,
            r.score,
            (previous_rank[r.code] - r.rank)
            if r.code in previous_rank and r.rank is not None
            else None,
        )
        for r in items
    ]
    return Rankings(
        tier=tier,
        period=current.label,
        live=live,
        since=since,
        until=until,
        items=items,
        unranked=unranked,
        formula=ctx.formula.describe(),
        min_sample=ctx.formula.min_sample,
    )


# --- consecutive bottom -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodRank:
    period: str
    rank: int
    of: int  # units ranked in that period


@dataclass(frozen=True, slots=True)
class BottomUnit:
    code: str
    name: str
    ranks: list[PeriodRank]


@dataclass(frozen=True, slots=True)
class BottomList:
    tier: str
    periods: list[str]
    bottom: int
    items: list[BottomUnit]
    formula: dict[str, Any] = field(default_factory=dict)


def bottom_of(rows: list[RankRow], n: int) -> list[RankRow]:
    """The units in the bottom N of one ranking: fewer than N units ranked strictly below
    them (ties at the boundary are all in). A ranking of N units or fewer has no bottom."""
    if len(rows) <= n:
        return []
    return [r for r in rows if sum(1 for o in rows if (o.rank or 0) > (r.rank or 0)) < n]


async def bottom(
    *,
    db: AsyncSession,
    actor: Principal,
    tier: Tier,
    periods: int | None = None,
    bottom: int | None = None,
    period: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    now: datetime | None = None,
) -> BottomList:
    """Units in the bottom N of the tier's ranking for K periods running, up to `period`
    (a month, quarter or year) or, without it, the last complete month; across year
    boundaries. N and K default to the region's policy (`bottom_n`, `bottom_k`)."""
    if tier not in TIERS:
        raise ValueError(tier)
    moment = now or utcnow()
    last = (
        P.current_period("month", moment).previous() if period is None else P.parse_period(period)
    )
    since, _ = last.bounds()
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=last.bounds()[1],
    )
    k = periods or ctx.formula.bottom_k
    n = bottom or ctx.formula.bottom_n
    window = [last.shift(-i) for i in range(k - 1, -1, -1)]
    per_period: list[dict[str, RankRow]] = []
    counts_of: list[int] = []
    for p in window:
        rows, _ = await _ranked_period(db, ctx, tier, p)
        per_period.append({r.code: r for r in bottom_of(rows, n)})
        counts_of.append(len(rows))
    always = set(per_period[0])
    for members in per_period[1:]:
        always &= set(members)
    items = [
        BottomUnit(
            code,
            per_period[-1][code].name,
            [
                PeriodRank(p.label, members[code].rank or 0, of)
                for p, members, of in zip(window, per_period, counts_of, strict=True)
            ],
        )
        for code in always
    ]
    items.sort(key=lambda u: (-u.ranks[-1].rank, u.code))
    return BottomList(
        tier=tier,
        periods=[p.label for p in window],
        bottom=n,
        items=items,
        formula=ctx.formula.describe(),
    )


# --- public pages -----------------------------------------------------------------------------

# The public (no sign-in) asks over the whole tree; the portal narrows with org/region/item.
PUBLIC = Principal(kind="public", id=0, name="公众", org_id=0, org_path="/")


async def formula_for(
    *,
    db: AsyncSession,
    org_code: str | None = None,
    region_code: str | None = None,
    on: date | None = None,
) -> Formula:
    """The formula of a region (or of an organisation's region) on a day (default today)."""
    region = region_code
    if region is None and org_code:
        region = (await org_service.get_org(db=db, code=org_code)).region_code
    elif region is not None:
        await org_service.get_region(db=db, code=region)
    return Formula.of(await _policy(db, region, on or P.local_day(utcnow())), region)


def publishable(rows: list[BreakdownRow], formula: Formula) -> list[BreakdownRow]:
    """The rows a public page may show at staff level: cells of at least `public_min_cell`
    counted ratings (k-anonymity)."""
    return [r for r in rows if r.total >= formula.public_min_cell]
