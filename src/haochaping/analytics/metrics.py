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
from haochaping.analytics import snapshots, source
from haochaping.analytics.schemas import RankingsRead
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
    # `orgs` is read from the database only when a question needs the tree walked in Python
    # (`organisations`): the figures themselves filter by the subtree in SQL.
    prefix: str = "/"
    orgs_loaded: bool = True
    # The region the organisations must lie in (the question's region, or an assessor's own
    # region narrowing an organisation's subtree), if any.
    region_path: str | None = None


async def organisations(db: AsyncSession, ctx: Context) -> dict[int, OrgRow]:
    """The organisations in scope, by id (read once per context)."""
    if not ctx.orgs_loaded:
        orgs = {o.id: o for o in await source.org_rows(db, ctx.prefix)}
        if ctx.region_path is not None:
            codes = set(await source.region_paths(db, ctx.region_path))
            orgs = {i: o for i, o in orgs.items() if o.region_code in codes}
        ctx.orgs, ctx.orgs_loaded = orgs, True
    return ctx.orgs


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
    subtree, 422 a bad range) and resolve them into a `Context` (with its organisations)."""
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    await organisations(db, ctx)
    return ctx


async def _resolve(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Context:
    """`resolve` without reading the organisations in scope: a handful of indexed look-ups,
    whatever the size of the subtree."""
    P.check_range(since, until if until is not None or since is None else utcnow())
    node_org_model = None
    if org_code:
        node_org_model = await org_service.get_org(db=db, code=org_code)
    node_region = await org_service.get_region(db=db, code=region_code) if region_code else None
    # The caller's reach (403 outside it): their subtree, or an assessor's region, which is
    # what their question is about when it names no node.
    node_region = await org_service.stats_node(
        db=db, actor=actor, org=node_org_model, region=node_region
    )
    area = actor.region_path
    item_id = None
    if item_code:
        item_id = await source.item_id(db, item_code)
        if item_id is None:
            raise _not_found_item(item_code)
    prefix = (
        node_org_model.path
        if node_org_model is not None
        else "/"  # an assessor: the organisations of their region, wherever in the tree
        if area is not None
        else actor.org_path
    )
    # The organisations must lie in the question's region, or, for an assessor's question
    # about an organisation, in the assessor's region (its part of that subtree).
    region_path = node_region.path if node_region is not None else area
    root = None
    if node_org_model is not None:
        m = node_org_model
        root = OrgRow(m.id, m.code, m.name, m.kind, m.parent_id, m.path, m.region_code)
    elif prefix != "/":
        root = await source.org_by_path(db, prefix)
    if root is not None and region_path is not None:
        # The root counts only when it lies in the region (as when the tree was filtered).
        codes = await source.region_paths(db, region_path)
        if root.region_code not in codes:
            root = None
    # The organisation the question is about: org_code's, else the caller's own unless the
    # question names a region.
    node_org = root if org_code or node_region is None else None
    whole = region_path is None and (
        prefix == "/"
        # A caller at the top of the only tree: no filter beats a filter on every org.
        or (root is not None and root.parent_id is None and await source.root_count(db) == 1)
    )
    by_window = root is not None and root.kind == "window"
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
    # Where the rollups keep the scope's figures: the subtree's root; with a region, the one
    # organisation whose subtree is exactly the region's part of the caller's tree, if any.
    node = None
    if region_path is None:
        node = (root.id, root.path) if root is not None else None
    else:
        exact = await source.subtree_of_region(db, prefix, region_path)
        node = (exact.id, exact.path) if exact is not None else None
    scope = Scope(
        org_ids=None,
        by_window=by_window,
        item_id=item_id,
        since=since,
        until=until,
        held_counts=formula.held_counts,
        node=node,
        path=None if whole else prefix,
        region_path=region_path,
    )
    return Context(
        scope,
        formula,
        {},
        node_org,
        node_region,
        policy_region,
        prefix,
        orgs_loaded=False,
        region_path=region_path,
    )


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
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    return await summary_of(db=db, ctx=ctx, now=now)


async def summary_of(
    *,
    db: AsyncSession,
    ctx: Context,
    now: datetime | None = None,
    totals: tuple[LevelCounts, dict[str, int]] | None = None,
) -> Summary:
    """`summary` of an already resolved question (`totals`: its counts, when already read)."""
    counts, excluded = totals if totals is not None else await source.totals(db, ctx.scope)
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
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=start,
        until=end,
    )
    return await series_of(db=db, ctx=ctx, granularity=granularity)


async def series_of(*, db: AsyncSession, ctx: Context, granularity: str) -> Series:
    """`timeseries` of an already resolved question over its range (without `since`: the
    default span before `until`, without `until`: now)."""
    end = ctx.scope.until or utcnow()
    start = ctx.scope.since or end - DEFAULT_SPAN[granularity]
    scope = ctx.scope
    if (scope.since, scope.until) != (start, end):
        scope = scope.narrowed(start, end)
    by_day = await source.level_counts(db, scope, "day")
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
    for org in (await organisations(db, ctx)).values():
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
    db: AsyncSession, ctx: Context, tier: str, counted: dict[Any, LevelCounts] | None = None
) -> tuple[dict[str, LevelCounts], dict[str, Unit]]:
    """Counted ratings per unit of a ranking tier, in scope (`counted`: the counts by unit,
    staff member or item, when already read)."""
    if tier in ("staff", "item"):  # ratings that name no staff member / item are no unit
        by_id = dict(counted) if counted is not None else None
        if by_id is None:
            by_id = await source.level_counts(db, ctx.scope, tier)
        by_id.pop(None, None)
        pick = _staff_units if tier == "staff" else _item_units
        return await pick(db, by_id)
    by_unit = counted if counted is not None else await source.level_counts(db, ctx.scope, "unit")
    if tier == "region":
        region = ctx.node_region or await _region_of(db, ctx)
        return await _region_units(db, ctx, by_unit, region)
    orgs = await organisations(db, ctx)
    return _org_units(ctx, by_unit, lambda org_id: _ancestor(orgs, org_id, tier))


async def _tier_split(
    db: AsyncSession, ctx: Context, scope: Scope, tier: str, split: datetime
) -> tuple[dict[str, LevelCounts], dict[str, LevelCounts], dict[str, Unit]] | None:
    """The counted ratings per unit of a region or organisation tier over the scope's range
    cut at `split` ([since, split), [split, until)), mapped to their units in SQL
    (`source.tier_counts_split`); None for the staff and item tiers."""
    region_code = None
    if tier == "region":
        region = ctx.node_region or await _region_of(db, ctx)
        if region is None:
            return {}, {}, {}
        region_code = region.code
    elif tier not in source.ORG_TIERS:
        return None
    before, after, names = await source.tier_counts_split(
        db,
        scope,
        tier,
        split,
        prefix=ctx.prefix,
        region_path=ctx.region_path,
        region_code=region_code,
    )
    kind = "region" if tier == "region" else "org"
    return before, after, {code: Unit(code, name, kind) for code, name in names.items()}


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
    orgs = await organisations(db, ctx)
    if ctx.node_region is not None and ctx.node_org is None:
        region = ctx.node_region
        child_of, _ = await _child_region_map(db, ctx, region)
        # The units located in the region itself, not in one of its child regions (a city's
        # own halls and departments): their top-level organisations.
        tops = {
            o.id
            for o in orgs.values()
            if o.id not in child_of and (o.parent_id is None or o.parent_id not in orgs)
        }
        counts: dict[str, LevelCounts] = {}
        units: dict[str, Unit] = {}
        for org_id, c in by_unit.items():
            child = child_of.get(org_id)
            if child is not None:
                _add(counts, child.code, c)
                units[child.code] = Unit(child.code, child.name, "region")
                continue
            top = _top_in(orgs, org_id, tops)
            if top is not None:
                _add(counts, top.code, c)
                units[top.code] = Unit(top.code, top.name, "org")
        return ("region" if child_of else "org"), counts, units
    node = ctx.node_org
    if node is None:  # the whole tree (a system caller): its root organisations
        roots = {o.id for o in orgs.values() if o.parent_id is None}
        counts, units = _org_units(ctx, by_unit, lambda org_id: _top_in(orgs, org_id, roots))
        return "org", counts, units
    kids = {o.id for o in orgs.values() if o.parent_id == node.id}
    if kids:
        counts, units = _org_units(ctx, by_unit, lambda org_id: _top_in(orgs, org_id, kids))
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
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    return await breakdown_of(db=db, ctx=ctx, by=by, limit=limit)


async def breakdown_of(
    *,
    db: AsyncSession,
    ctx: Context,
    by: str,
    limit: int | None = None,
    by_channel: dict[str, LevelCounts] | None = None,
) -> Breakdown:
    """`breakdown` of an already resolved question (`by_channel`: its counted ratings per
    channel and level, when already read: the level and channel rows are sums of them)."""
    if by not in BREAKDOWNS:
        raise ValueError(by)
    f = ctx.formula
    child_kind = None
    if by == "level":
        if by_channel is not None:
            total = [sum(c[i] for c in by_channel.values()) for i in range(5)]
        else:
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
        counts = (
            by_channel
            if by_channel is not None
            else await source.level_counts(db, ctx.scope, "channel")
        )
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


# --- the dashboard: every figure of one page from one resolution ------------------------------


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the console's dashboard shows for one question."""

    summary: Summary
    trend: Series
    levels: Breakdown
    channels: Breakdown
    reasons: Breakdown
    children: Breakdown


async def dashboard(
    *,
    db: AsyncSession,
    actor: Principal,
    granularity: Granularity = "day",
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Dashboard:
    """`summary`, `timeseries` and the level, channel, reason and child `breakdown`s of one
    question, the same figures as those functions give, with the scope resolved once and
    the summary, level and channel counts read in one statement."""
    if granularity not in GRANULARITIES:
        raise ValueError(granularity)
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    held = ctx.formula.held_counts
    measures = await source.channel_measures(db, ctx.scope)
    by_channel = source.measures_levels(measures, held)
    return Dashboard(
        summary=await summary_of(
            db=db, ctx=ctx, now=now, totals=source.measures_totals(measures, held)
        ),
        trend=await series_of(db=db, ctx=ctx, granularity=granularity),
        levels=await breakdown_of(db=db, ctx=ctx, by="level", by_channel=by_channel),
        channels=await breakdown_of(db=db, ctx=ctx, by="channel", by_channel=by_channel),
        reasons=await breakdown_of(db=db, ctx=ctx, by="reason"),
        children=await breakdown_of(db=db, ctx=ctx, by="child"),
    )


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
    kept: bool = False  # read from a kept snapshot (`analytics/snapshots.py`)


def _key(counts: LevelCounts, formula: Formula) -> tuple[Fraction, Fraction]:
    """The exact figures a unit is ranked by, best first when sorted in reverse."""
    total, good, _, points = _exact(counts, formula)
    by = {"score": Fraction(points, total), "good_rate": Fraction(good, total)}
    return by[formula.ranking_metric], by[formula.tie_break]


# Below this many ratings per unit, a ranking compares its figures as floats: the quotient of
# two integers is correctly rounded, so equal fractions give equal floats, and two different
# fractions p/q, r/s (q, s below the bound) differ by at least 1/(qs), more than the float
# spacing of numbers up to a few hundred points, so their floats keep their order. Exact as
# the Fractions, a tenth of their cost (a province's 2,866 departments).
_FLOAT_EXACT_BELOW = 10_000_000


def rank(
    counts: dict[str, LevelCounts], units: dict[str, Unit], formula: Formula
) -> tuple[list[RankRow], list[RankRow]]:
    """Competition ranking (1, 2, 2, 4) of the units with at least `min_sample` counted
    ratings by the formula's figure, then the other figure; equal on both, equal rank.
    The units below the minimum sample come apart, unranked, biggest first."""
    good_at = [lv - 1 for lv in formula.good_levels]
    bad_at = [lv - 1 for lv in formula.bad_levels]
    points_of = [formula.points[lv] for lv in range(1, 6)]
    exact: dict[str, tuple[int, int, int, int]] = {}  # total, good, bad, points
    for code, c in counts.items():
        total = int(sum(c))
        if total:
            exact[code] = (
                total,
                sum(c[i] for i in good_at),
                sum(c[i] for i in bad_at),
                sum(n * p for n, p in zip(c, points_of, strict=True)),
            )
    ranked = [code for code, e in exact.items() if e[0] >= formula.min_sample]
    by_score = formula.ranking_metric == "score"
    fast = all(exact[code][0] < _FLOAT_EXACT_BELOW for code in ranked)
    keys: dict[str, tuple[Any, Any]] = {}
    for code in ranked:
        total, good, _, points = exact[code]
        pair: tuple[Any, Any] = (
            (points / total, good / total)
            if fast
            else (Fraction(points, total), Fraction(good, total))
        )
        keys[code] = pair if by_score else (pair[1], pair[0])
    ranked.sort(key=lambda code: (-keys[code][0], -keys[code][1], code))

    def row(rank_: int | None, code: str) -> RankRow:
        total, good, bad, points = exact[code]
        return RankRow(
            rank_,
            code,
            units[code].name,
            total,
            round(good / total, 6),
            round(bad / total, 6),
            round(points / total, 3),
        )

    rows: list[RankRow] = []
    previous_key = None
    current_rank = 0
    for position, code in enumerate(ranked, start=1):
        if keys[code] != previous_key:
            current_rank, previous_key = position, keys[code]
        rows.append(row(current_rank, code))
    below = sorted(
        (code for code in exact if code not in keys), key=lambda code: (-exact[code][0], code)
    )
    return rows, [row(None, code) for code in below]


def _snapshot_key(ctx: Context, tier: str, label: str) -> str:
    """The key of a ranking question once resolved: everything that decides its answer
    (`analytics/snapshots.py`), not who asked."""
    sc = ctx.scope
    return snapshots.key(
        [
            "rankings",
            tier,
            label,
            ctx.prefix,
            ctx.region_path,
            ctx.node_region.code if ctx.node_region is not None else None,
            ctx.policy_region,
            sc.org_ids,
            sc.by_window,
            sc.item_id,
            sc.held_counts,
            sc.node,
            sc.path,
            sc.region_path,
            ctx.formula.describe(),
        ]
    )


def _row_list(r: RankRow) -> list[Any]:
    return [r.rank, r.code, r.name, r.total, r.good_rate, r.bad_rate, r.score, r.rank_change]


def _snapshot_body(result: Rankings) -> dict[str, Any]:
    return {
        "items": [_row_list(r) for r in result.items],
        "unranked": [_row_list(r) for r in result.unranked],
        "formula": result.formula,
        "min_sample": result.min_sample,
    }


def _rows_of(body: dict[str, Any], part: str) -> list[RankRow]:
    return [RankRow(*r) for r in body[part]]


async def _ranked_period(
    db: AsyncSession, ctx: Context, tier: str, period: P.Period
) -> tuple[list[RankRow], list[RankRow]]:
    since, until = period.bounds()
    if snapshots.closed(until, utcnow()):  # a kept ranking of this period, if it holds
        kept = await snapshots.lookup(db, _snapshot_key(ctx, tier, period.label))
        if kept is not None:
            return _rows_of(kept, "items"), _rows_of(kept, "unranked")
    sub = dataclasses.replace(ctx, scope=ctx.scope.narrowed(since, until))
    mapped = await _tier_split(db, ctx, sub.scope, tier, until)
    if mapped is not None:
        return rank(mapped[0], mapped[2], ctx.formula)
    counts, units = await _tier_units(db, sub, tier)
    if sub.orgs_loaded and not ctx.orgs_loaded:  # read once for every period
        ctx.orgs, ctx.orgs_loaded = sub.orgs, True
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
    keep: bool = False,
) -> Rankings:
    """The ranking of a tier's units in scope for a month (`2026-11`), quarter (`2026-Q4`),
    year (`2026`) or, without a period, live for the current month; `rank_change` is the
    previous period's rank minus this one (positive: moved up), None when not ranked then.

    A closed period's answer is read from its kept snapshot while that holds
    (`analytics/snapshots.py`); with `keep` (a caller that commits) a fresh answer is kept."""
    if tier not in TIERS:
        raise ValueError(tier)
    moment = now or utcnow()
    live = period is None
    current = P.current_period("month", moment) if period is None else P.parse_period(period)
    since, until = current.bounds()
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    # The period and the one before it in one read of the counts.
    prev_since, _ = current.previous().bounds()
    # Closed by the real clock (not a caller's `now`): no rating of it can still arrive.
    snapshot_key, marks = None, None
    if not live and snapshots.closed(until, utcnow()):
        snapshot_key = _snapshot_key(ctx, tier, current.label)
        marks = await snapshots.marks(db) if keep else None  # before computing
        kept = await snapshots.lookup(db, snapshot_key)
        if kept is not None:
            return Rankings(
                tier=tier,
                period=current.label,
                live=False,
                since=since,
                until=until,
                items=_rows_of(kept, "items"),
                unranked=_rows_of(kept, "unranked"),
                formula=kept["formula"],
                min_sample=kept["min_sample"],
                kept=True,
            )
    both = dataclasses.replace(ctx, scope=ctx.scope.narrowed(prev_since, until))
    mapped = await _tier_split(db, ctx, both.scope, tier, since)
    if mapped is not None:
        earlier_units, now_units, units = mapped
        items, unranked = rank(now_units, units, ctx.formula)
        before, _ = rank(earlier_units, units, ctx.formula)
    else:
        earlier, now_counts = await source.level_counts_split(db, both.scope, tier, since)
        items, unranked = rank(*await _tier_units(db, both, tier, now_counts), ctx.formula)
        before, _ = rank(*await _tier_units(db, both, tier, earlier), ctx.formula)
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
    result = Rankings(
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
    if snapshot_key is not None and marks is not None:
        await snapshots.store(
            db,
            snapshot_key,
            tier=tier,
            period=current.label,
            since=prev_since,
            until=until,
            marks_=marks,
            body=_snapshot_body(result),
            answer_json=RankingsRead.model_validate(result).model_dump_json(),
        )
    return result


async def _closed_key(
    *,
    db: AsyncSession,
    actor: Principal,
    tier: str,
    period: str | None,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
) -> str | None:
    """The snapshot key of a ranking question about a closed period (None for the live month
    or a period not closed yet), with the same checks and refusals as `rankings`."""
    if period is None:
        return None
    current = P.parse_period(period)
    since, until = current.bounds()
    if not snapshots.closed(until, utcnow()):
        return None
    ctx = await _resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    return _snapshot_key(ctx, tier, current.label)


async def kept_rankings_json(
    *,
    db: AsyncSession,
    actor: Principal,
    tier: Tier,
    period: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
) -> str | None:
    """The API's JSON of `rankings` for a closed period if a kept answer holds (served as
    stored: at 2,850 rows the response model took ~10 ms of a request's CPU), else None."""
    key = await _closed_key(
        db=db,
        actor=actor,
        tier=tier,
        period=period,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
    )
    return None if key is None else await snapshots.answer(db, key)


async def keep_ranking(
    *,
    db: AsyncSession,
    actor: Principal,
    tier: Tier,
    period: str,
    region_code: str | None = None,
) -> bool:
    """Keep the ranking of a closed period unless a kept one still holds (the scheduler's
    `analytics/jobs.warm`; the caller commits). True when it was computed anew."""
    key = await _closed_key(db=db, actor=actor, tier=tier, period=period, region_code=region_code)
    if key is None or await snapshots.holds(db, key):
        return False
    await rankings(db=db, actor=actor, tier=tier, period=period, region_code=region_code, keep=True)
    return True


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
    ctx = await _resolve(
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


# --- staff per hall (窗口服务之星, issue 12) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HallStaff:
    """One hall's staff ranked for a period: `items` those with at least the minimum number
    of counted ratings, best first (competition ranks), `unranked` the others."""

    hall_code: str
    hall_name: str
    items: list[RankRow]
    unranked: list[RankRow]


async def hall_staff_rankings(
    *,
    db: AsyncSession,
    actor: Principal,
    period: str,
    region_code: str | None = None,
    org_code: str | None = None,
    min_ratings: int | None = None,
) -> list[HallStaff]:
    """Per hall in scope, its staff ranked for a month, quarter or year by the formula's
    figure (then the other), like the staff tier of `rankings`; ranked from `min_ratings`
    counted ratings (default: the policy's `min_sample`). A staff member belongs to the hall
    at or above their own organisation; halls without rated staff are left out."""
    current = P.parse_period(period)
    since, until = current.bounds()
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    by_id = await source.level_counts(db, ctx.scope, "staff")
    by_id.pop(None, None)
    homes = await source.staff_homes(db, list(by_id))
    formula = dataclasses.replace(ctx.formula, min_sample=min_ratings or ctx.formula.min_sample)
    halls: dict[int, tuple[OrgRow, dict[str, LevelCounts], dict[str, Unit]]] = {}
    for staff_id, counts in by_id.items():
        home = homes.get(staff_id)
        hall = _ancestor(ctx.orgs, home[2], "hall") if home is not None else None
        if home is None or hall is None:
            continue
        _, hall_counts, units = halls.setdefault(hall.id, (hall, {}, {}))
        _add(hall_counts, home[0], counts)
        units[home[0]] = Unit(home[0], home[1], "staff")
    out = []
    for hall, hall_counts, units in sorted(halls.values(), key=lambda h: h[0].code):
        items, unranked = rank(hall_counts, units, formula)
        out.append(HallStaff(hall.code, hall.name, items, unranked))
    return out


# --- 主动评价率 (active rating rate; added for the appraisal, issue 12) -----------------------


@dataclass(frozen=True, slots=True)
class ActiveRating:
    """主动评价率 = rated cases / completed cases (None when no case was completed)."""

    completed: int
    rated: int
    rate: float | None


async def active_rating(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None = None,
    item_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ActiveRating:
    """主动评价率 of the cases completed in scope and range: those with at least one first
    rating that is not a system default, over all completed ones (docs/metrics.md)."""
    ctx = await resolve(
        db=db,
        actor=actor,
        org_code=org_code,
        item_code=item_code,
        region_code=region_code,
        since=since,
        until=until,
    )
    return await active_rating_of(db=db, ctx=ctx)


async def active_rating_of(*, db: AsyncSession, ctx: Context) -> ActiveRating:
    """`active_rating` of an already resolved question."""
    completed, rated = await source.case_rating_counts(db, ctx.scope)
    return ActiveRating(completed=completed, rated=rated, rate=_rate(rated, completed))
