"""Where the figures come from: every SQL statement of the statistics, in one place.

This module is the seam between the metrics (`analytics/metrics.py`, which applies a region's
policy to counts) and the storage. Each function answers *counts* for a resolved `Scope`:
ratings per level (1..5), optionally grouped by one dimension; the excluded ratings; the
reason tags; the work-order funnel. Nothing here knows about good levels, points or ranking
formulas, so a rollup table (counts per day × organisation × channel × level, per month ×
staff × level...) or a columnar copy can answer these same functions later without any
caller changing.

It also reads the reference data around the counts (the organisation tree, regions, names
and labels), so that metrics.py builds no SQL at all.

Query shape (issue 10's measurements): the organisation scope is a subquery on the path
index (`subtree_ids`: the subtree as a range of `org.path`, a region as a range of
`region.path`), so the ratings are filtered by `org_id IN (SELECT id FROM org WHERE ...)`,
which uses the `(org_id, received_at)` index, and no list of ids is built or compiled per
question; no per-row function. Where a scope is one organisation's whole subtree, the rollups
answer (`analytics/rollups.py`). Days are grouped in Asia/Shanghai local time (UTC+8)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from haochaping.analytics import rollups
from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation, ReasonTag
from haochaping.evaluations.standing import EvaluationStanding, counted_clause
from haochaping.exchange.models import ExchangeWorkOrder
from haochaping.orgs.models import Item, Org, Region, Staff
from haochaping.workorders.choices import SATISFIED_VERDICTS
from haochaping.workorders.models import CallbackAttempt, WorkOrder
from haochaping.workorders.queries import overdue_clause

E = Evaluation
W = WorkOrder
# Counts of levels 1..5 (index 0 is level 1).
LevelCounts = list[int]
# The dimensions `level_counts` groups by.
DIMENSIONS = ("channel", "unit", "staff", "item", "day")


@dataclass(frozen=True, slots=True)
class Scope:
    """What one question counts, resolved to ids and UTC instants (`metrics.resolve_scope`).

    `org_ids` None: every organisation; otherwise the ratings of these organisations (by
    `evaluation.window_id` when `by_window`: a scope rooted at a window). `since` inclusive,
    `until` exclusive, on `evaluation.received_at`."""

    org_ids: tuple[int, ...] | None = None
    by_window: bool = False
    item_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    held_counts: bool = False
    # (id, path) of the organisation whose whole subtree the scope is: the rollups answer for
    # it (`analytics/rollups.py`); None: the ratings table does.
    node: tuple[int, str] | None = None
    # The scope as a subtree in SQL (when `org_ids` is None): the organisations whose path
    # starts with `path`, narrowed to those located in the region whose path starts with
    # `region_path` (no list of ids is built, sent or compiled).
    path: str | None = None
    region_path: str | None = None

    def narrowed(self, since: datetime | None, until: datetime | None) -> Scope:
        """The same scope over another time range."""
        return replace(self, since=since, until=until)


def _dialect(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


def _ids_clause(db: AsyncSession, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    if not ids:
        return literal(False)  # type: ignore[return-value]
    if _dialect(db) == "postgresql":
        # One array parameter, whatever the number of organisations.
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(list(ids))


def _first_ratings(
    db: AsyncSession, scope: Scope, *, by_index: bool = True
) -> list[ColumnElement[bool]]:
    """First ratings (not follow-ups) in scope and range, whatever their standing.
    `by_index` False: conditions the planner cannot read the ratings' indexes by (for a
    statement that should be driven from another, smaller table)."""
    where: list[ColumnElement[bool]] = [E.eval_count == 1]
    column: Any = E.window_id if scope.by_window else E.org_id
    received: Any = E.received_at
    if not by_index and _dialect(db) == "sqlite":
        column, received = column + 0, received.op("||")(literal_column("''"))
    elif not by_index:
        column, received = column + 0, received.op("+")(literal_column("interval '0 s'"))
    if scope.org_ids is not None:
        where.append(_ids_clause(db, column, scope.org_ids))
    elif scope.path is not None:
        where.append(column.in_(subtree_ids(scope.path, scope.region_path)))
    if scope.item_id is not None:
        where.append(E.item_id == scope.item_id)
    if scope.since is not None:
        where.append(received >= scope.since)
    if scope.until is not None:
        where.append(received < scope.until)
    return where


def path_end(path: str) -> str:
    """The smallest string above every path that starts with `path` ("/P/C01/" -> "/P/C010")."""
    return path[:-1] + chr(ord(path[-1]) + 1)


def subtree_ids(path: str, region_path: str | None = None) -> Any:
    """The ids of the organisations under a path (as a range on the path index), narrowed to
    a region's subtree, as a subquery."""
    where = [Org.path >= path, Org.path < path_end(path)]
    if region_path is not None:
        where.append(
            Org.region_code.in_(
                select(Region.code).where(
                    Region.path >= region_path, Region.path < path_end(region_path)
                )
            )
        )
    return select(Org.id).where(*where)


def counted(db: AsyncSession, scope: Scope, *, by_index: bool = True) -> list[ColumnElement[bool]]:
    """The ratings that count: first ratings in scope, not system defaults, neither invalid
    nor held (unless the policy lets held ones count meanwhile)."""
    return [
        *_first_ratings(db, scope, by_index=by_index),
        E.is_default.is_(False),
        counted_clause(E.id, held_counts=scope.held_counts),
    ]


def _day_key(db: AsyncSession) -> Any:
    """The local (Beijing) day of a rating: a date (PostgreSQL) or `YYYY-MM-DD` text."""
    if _dialect(db) == "postgresql":
        # A date groups faster than to_char's text (measured on the demo province).
        return cast(func.timezone("Asia/Shanghai", E.received_at), Date)
    # SQLite keeps UTC text; Shanghai is UTC+8 all year round.
    return func.strftime("%Y-%m-%d", E.received_at, "+8 hours")


def _dimension(db: AsyncSession, by: str) -> Any:
    if by == "channel":
        return E.channel
    if by == "unit":  # the window when known, else the serving organisation
        return func.coalesce(E.window_id, E.org_id)
    if by == "staff":
        return E.staff_id
    if by == "item":
        return E.item_id
    if by == "day":
        return _day_key(db)
    raise ValueError(f"unknown dimension {by!r}")


async def level_counts(
    db: AsyncSession, scope: Scope, by: str | None = None
) -> dict[Any, LevelCounts]:
    """Counted ratings per level, per value of one dimension (`None`: one group, key None).

    Dimensions: `channel`, `unit` (window, else organisation id), `staff`, `item` (ids; None
    where the rating names none), `day` (the local day: a date, or its ISO text)."""
    fast = await _rollup_level_counts(db, scope, by)
    if fast is not None:
        return fast
    key = _dimension(db, by) if by else literal(None)
    keyed = key.label("k")
    stmt = (
        select(keyed, E.level, func.count())
        .where(*counted(db, scope))
        .group_by(*([keyed] if by else []), E.level)
    )
    out: dict[Any, LevelCounts] = defaultdict(lambda: [0] * 5)
    for k, level, n in (await db.execute(stmt)).all():
        out[k][int(level) - 1] += int(n)
    return dict(out)


async def level_counts_split(
    db: AsyncSession, scope: Scope, by: str, split: datetime
) -> tuple[dict[Any, LevelCounts], dict[Any, LevelCounts]]:
    """`level_counts` by `unit`, `staff` or `item` of the scope's range cut in two at
    `split` (a local month start): [since, split) and [split, until), in one read. The
    ratings that name no staff member or item are left out (no unit of a ranking)."""
    scoped = _rollup_scope(scope)
    if scoped is not None and by in rollups.DIMS:
        node, since, until = scoped
        return await rollups.levels_by_key_split(
            db,
            scope=node,
            dim=by,
            since=since,
            split=split,
            until=until,
            held_counts=scope.held_counts,
        )
    key = _dimension(db, by).label("k")
    side = case((E.received_at < split, 0), else_=1).label("p")
    stmt = (
        select(side, key, E.level, func.count())
        .where(*counted(db, scope), _dimension(db, by).is_not(None))
        .group_by(side, key, E.level)
    )
    out: tuple[dict[Any, LevelCounts], dict[Any, LevelCounts]] = (
        defaultdict(lambda: [0] * 5),
        defaultdict(lambda: [0] * 5),
    )
    for p, k, level, n in (await db.execute(stmt)).all():
        out[int(p)][k][int(level) - 1] += int(n)
    return dict(out[0]), dict(out[1])


# --- ranking tiers: each unit's unit of the tier, in SQL ---------------------------------------

# The tiers whose units are organisations of a kind (the nearest at or above the rated unit).
ORG_TIERS = ("department", "hall", "window")


def _org_in_scope(o: Any, prefix: str, region_path: str | None) -> list[ColumnElement[bool]]:
    """An organisation lies under `prefix` and, with `region_path`, in that region's subtree
    (what `metrics.organisations` reads into Python)."""
    where: list[ColumnElement[bool]] = []
    if prefix != "/":
        where += [o.path >= prefix, o.path < path_end(prefix)]
    if region_path is not None:
        where.append(
            o.region_code.in_(
                select(Region.code).where(
                    Region.path >= region_path, Region.path < path_end(region_path)
                )
            )
        )
    return where


def tier_groups(
    tier: str, *, prefix: str, region_path: str | None, region_code: str | None = None
) -> tuple[Select, Select]:
    """(unit, grp): the unit of a ranking tier each organisation in scope counts under, and
    (grp, code, name) of those units. For `department`, `hall`, `window` the nearest
    organisation of that kind at or above it with every organisation on the way in scope (a
    walk up the tree as a recursive query over the scope's organisations, not the tree read
    into Python); for `region` the child region of `region_code` it lies in. Organisations
    under no unit are left out."""
    o = aliased(Org)
    if tier == "region":
        located = aliased(Region)
        child = aliased(Region)
        groups = (
            select(o.id.label("unit"), child.code.label("grp"))
            .select_from(o)
            .join(located, located.code == o.region_code)
            .join(
                child,
                and_(
                    child.parent_code == region_code,
                    func.substr(located.path, 1, func.length(child.path)) == child.path,
                ),
            )
            .where(*_org_in_scope(o, prefix, region_path))
        )
        names = select(Region.code.label("grp"), Region.code.label("code"), Region.name)
        return groups, names
    if tier not in ORG_TIERS:
        raise ValueError(tier)
    up = (
        select(
            o.id.label("unit"),
            o.id.label("at"),
            o.kind.label("kind"),
            o.parent_id.label("parent_id"),
        )
        .where(*_org_in_scope(o, prefix, region_path))
        .cte("tier_up", recursive=True)
    )
    parent = aliased(Org)
    up = up.union_all(
        select(up.c.unit, parent.id, parent.kind, parent.parent_id)
        .select_from(up)
        .join(parent, parent.id == up.c.parent_id)
        .where(up.c.kind != tier, *_org_in_scope(parent, prefix, region_path))
    )
    groups = select(up.c.unit, up.c.at.label("grp")).where(up.c.kind == tier)
    return groups, select(Org.id.label("grp"), Org.code, Org.name)


async def tier_counts_split(
    db: AsyncSession,
    scope: Scope,
    tier: str,
    split: datetime,
    *,
    prefix: str,
    region_path: str | None,
    region_code: str | None = None,
) -> tuple[dict[str, LevelCounts], dict[str, LevelCounts], dict[str, str]]:
    """Counted ratings per level per unit of a ranking tier (`tier_groups`), for the scope's
    range cut in two at `split` (a local month start; `until` for no second part):
    [since, split) and [split, until), and the units' names — in one statement, grouped in
    the database."""
    groups, names_of = tier_groups(
        tier, prefix=prefix, region_path=region_path, region_code=region_code
    )
    names: dict[str, str] = {}
    scoped = _rollup_scope(scope)
    if scoped is not None:
        node, since, until = scoped
        rolled = await rollups.by_group_split(
            db,
            scope=node,
            groups=groups,
            names=names_of,
            since=since,
            split=split,
            until=until,
            held_counts=scope.held_counts,
        )
        sides = []
        for part in rolled:
            sides.append({code: c for (code, _), c in part.items() if any(c)})
            names.update(dict(part.keys()))
        return sides[0], sides[1], names
    g = groups.subquery("unit_group")
    key = _dimension(db, "unit")
    side = case((E.received_at < split, 0), else_=1)
    by_unit = (
        select(side.label("p"), key.label("k"), E.level.label("level"), func.count().label("n"))
        .where(*counted(db, scope))
        .group_by(side, key, E.level)
        .subquery("by_unit")
    )
    summed = (
        select(by_unit.c.p, g.c.grp, by_unit.c.level, func.sum(by_unit.c.n).label("n"))
        .select_from(by_unit.join(g, g.c.unit == by_unit.c.k))
        .group_by(by_unit.c.p, g.c.grp, by_unit.c.level)
        .subquery("by_group")
    )
    n = names_of.subquery("group_name")
    stmt = select(summed.c.p, n.c.code, n.c.name, summed.c.level, summed.c.n).join_from(
        summed, n, n.c.grp == summed.c.grp
    )
    out: tuple[dict[str, LevelCounts], dict[str, LevelCounts]] = (
        defaultdict(lambda: [0] * 5),
        defaultdict(lambda: [0] * 5),
    )
    for p, code, name, level, count in (await db.execute(stmt)).all():
        out[int(p)][str(code)][int(level) - 1] += int(count)
        names[str(code)] = str(name)
    return dict(out[0]), dict(out[1]), names


# --- the rollups (analytics/rollups.py), where the question allows ------------------------------


def _rollup_scope(scope: Scope) -> tuple[rollups.Scope, datetime, datetime] | None:
    """The rollups' node and period for a scope they can answer: a whole organisation subtree
    over a bounded period, not narrowed to an item or rooted at a window."""
    if (
        scope.node is None
        or scope.item_id is not None
        or scope.by_window
        or scope.since is None
        or scope.until is None
    ):
        return None
    return rollups.Scope(org_id=scope.node[0], path=scope.node[1]), scope.since, scope.until


def _levels(answer: dict[Any, rollups.Measures], scope: Scope) -> dict[Any, LevelCounts]:
    out = {}
    for key, m in answer.items():
        counts = m.counted(held_counts=scope.held_counts)[1:]
        if any(counts):
            out[key] = counts
    return out


async def _rollup_summary(db: AsyncSession, scope: Scope) -> rollups.Measures | None:
    scoped = _rollup_scope(scope)
    if scoped is None:
        return None
    node, since, until = scoped
    return await rollups.summary(db, scope=node, since=since, until=until)


async def _rollup_level_counts(
    db: AsyncSession, scope: Scope, by: str | None
) -> dict[Any, LevelCounts] | None:
    """`level_counts` from the rollups, or None when they cannot answer (whole local days for
    totals, series and channels; whole months for units, staff and items)."""
    scoped = _rollup_scope(scope)
    if scoped is None:
        return None
    node, since, until = scoped
    if by is None:
        total = await rollups.summary(db, scope=node, since=since, until=until)
        return None if total is None else _levels({None: total}, scope) or {}
    if by == "day":
        days = await rollups.daily(db, scope=node, since=since, until=until)
        return None if days is None else _levels(dict(days), scope)
    if by == "channel":
        channels = await rollups.by_channel(db, scope=node, since=since, until=until)
        return None if channels is None else _levels(channels, scope)
    keyed = await rollups.by_key(db, scope=node, dim=by, since=since, until=until)
    if keyed is None:
        return None
    out: dict[Any, LevelCounts] = _levels(keyed, scope)
    if by != "unit":  # the ratings that name no staff member or item, as the table gives them
        total = await rollups.summary(db, scope=node, since=since, until=until)
        assert total is not None  # whole months are whole days
        named = [sum(c[i] for c in out.values()) for i in range(5)]
        rest = [
            t - n
            for t, n in zip(total.counted(held_counts=scope.held_counts)[1:], named, strict=True)
        ]
        if any(rest):
            out[None] = rest
    return out


async def totals(db: AsyncSession, scope: Scope) -> tuple[LevelCounts, dict[str, int]]:
    """In one pass over the first ratings in scope: the counted ones per level, and those
    left out of the figures — system defaults (reported apart), invalid and held ones (by
    their standing; held ones count when the policy says so, and are still reported)."""
    rolled = await _rollup_summary(db, scope)
    if rolled is not None:
        return rolled.counted(held_counts=scope.held_counts)[1:], {
            "default_ratings": rolled.default,
            "invalid": rolled.invalid + rolled.default_invalid,
            "held": sum(rolled.held) + rolled.default_held,
        }
    standing = EvaluationStanding.standing
    stmt = (
        select(E.level, E.is_default, standing, func.count())
        .select_from(E)
        .outerjoin(EvaluationStanding, EvaluationStanding.evaluation_id == E.id)
        .where(*_first_ratings(db, scope))
        .group_by(E.level, E.is_default, standing)
    )
    levels = [0] * 5
    excluded = {"default_ratings": 0, "invalid": 0, "held": 0}
    for level, is_default, state, n in (await db.execute(stmt)).all():
        n = int(n)
        if is_default:
            excluded["default_ratings"] += n
        if state in ("invalid", "held"):
            excluded[state] += n
        if not is_default and state != "invalid" and (state != "held" or scope.held_counts):
            levels[int(level) - 1] += n
    return levels, excluded


async def channel_measures(db: AsyncSession, scope: Scope) -> dict[str, rollups.Measures]:
    """In one statement: the first ratings in scope per channel, by standing, level and
    default (`rollups.Measures`) — the summary's counts and excluded ratings, the level mix
    and the channel mix are all sums of these."""
    scoped = _rollup_scope(scope)
    if scoped is not None:
        node, since, until = scoped
        rolled = await rollups.by_channel(db, scope=node, since=since, until=until)
        if rolled is not None:
            return rolled
    standing = func.coalesce(EvaluationStanding.standing, "valid")
    stmt = (
        select(E.channel, E.level, E.is_default, standing, func.count())
        .select_from(E)
        .outerjoin(EvaluationStanding, EvaluationStanding.evaluation_id == E.id)
        .where(*_first_ratings(db, scope))
        .group_by(E.channel, E.level, E.is_default, standing)
    )
    out: dict[str, rollups.Measures] = defaultdict(rollups.Measures)
    for channel, level, is_default, state, n in (await db.execute(stmt)).all():
        m = out[str(channel)]
        for i in rollups.class_index(int(level), bool(is_default), str(state)):
            if i < 5:
                m.valid[i + 1] += int(n)
            elif i < 10:
                m.held[i - 4] += int(n)
            elif i == 10:
                m.invalid += int(n)
            elif i == 11:
                m.default += int(n)
            elif i == 12:
                m.default_held += int(n)
            else:
                m.default_invalid += int(n)
    return dict(out)


def measures_totals(
    measures: dict[str, rollups.Measures], held_counts: bool
) -> tuple[LevelCounts, dict[str, int]]:
    """`totals` from `channel_measures`."""
    total = rollups.Measures()
    for m in measures.values():
        total.add(m)
    return total.counted(held_counts=held_counts)[1:], {
        "default_ratings": total.default,
        "invalid": total.invalid + total.default_invalid,
        "held": sum(total.held) + total.default_held,
    }


def measures_levels(
    measures: dict[str, rollups.Measures], held_counts: bool
) -> dict[str, LevelCounts]:
    """Counted ratings per level per channel, from `channel_measures`."""
    out = {}
    for key, m in measures.items():
        counts = m.counted(held_counts=held_counts)[1:]
        if any(counts):
            out[key] = counts
    return out


async def reason_counts(db: AsyncSession, scope: Scope) -> dict[str, LevelCounts]:
    """Counted ratings per reason tag code and level (a rating with two tags counts in both)."""
    scoped = _rollup_scope(scope)
    if scoped is not None:
        node, since, until = scoped
        by_reason = await rollups.by_reason(db, scope=node, since=since, until=until)
        if by_reason is not None:
            return _levels(by_reason, scope)
    if _dialect(db) == "postgresql":
        tags = func.json_array_elements_text(E.reasons).table_valued("value")
    else:
        tags = func.json_each(E.reasons).table_valued("value")
    stmt = (
        select(tags.c.value, E.level, func.count())
        .select_from(E)
        .join(tags, true())
        .where(*counted(db, scope))
        .group_by(tags.c.value, E.level)
    )
    out: dict[str, LevelCounts] = defaultdict(lambda: [0] * 5)
    for code, level, n in (await db.execute(stmt)).all():
        out[str(code)][int(level) - 1] += int(n)
    return dict(out)


FUNNEL = (
    "opened",
    "verified_on_time",
    "rectified_on_time",
    "called_back",
    "callback_satisfied",
    "supervised",
    "overdue_open",
)


def _funnel_columns(
    t: Any, *, now: datetime, rectified_basis: str, reached: Any, satisfied: Any, supervised: Any
) -> list[Any]:
    """The funnel's counts over work orders `t` (`work_order`, or a child's reported orders
    in `exchange_work_order`: the same column names), in the order of FUNNEL."""
    if rectified_basis == "closed":
        rectified_on_time = and_(
            t.state == "closed",
            t.closed_at.is_not(None),
            or_(t.rectify_due_at.is_(None), t.closed_at <= t.rectify_due_at),
        )
    else:
        rectified_on_time = and_(
            t.rectified_at.is_not(None),
            or_(t.rectify_due_at.is_(None), t.rectified_at <= t.rectify_due_at),
        )
    verified_on_time = and_(
        t.verified_at.is_not(None),
        or_(t.verify_due_at.is_(None), t.verified_at <= t.verify_due_at),
    )
    open_ = t.state.not_in(("closed", "invalidated"))

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    return [
        func.count(),
        n(verified_on_time),
        n(rectified_on_time),
        n(reached),
        n(satisfied),
        n(supervised),
        n(and_(open_, overdue_clause(now, t))),
    ]


async def funnel_counts(
    db: AsyncSession,
    scope: Scope,
    *,
    now: datetime,
    rectified_basis: str,
    bad_levels: Sequence[int],
) -> dict[str, int]:
    """The bad-review funnel over the work orders of the counted bad ratings in scope: this
    instance's own, and those a child reported with its ratings (`exchange_work_order`: the
    child runs the closed loop, the parent counts its outcomes beside its own).

    `rectified_basis`: `reported` — rectification reported by its deadline; `closed` — the
    order closed by the rectification deadline."""
    reached = (
        select(CallbackAttempt.id)
        .where(CallbackAttempt.work_order_id == W.id, CallbackAttempt.reached.is_(True))
        .exists()
    )
    satisfied = (
        select(CallbackAttempt.id)
        .where(
            CallbackAttempt.work_order_id == W.id,
            CallbackAttempt.reached.is_(True),
            CallbackAttempt.verdict.in_(SATISFIED_VERDICTS),
        )
        .exists()
    )
    sqlite = _dialect(db) == "sqlite"
    # A work order opens when its bad rating is stored (opened_at >= received_at), so the
    # window's start bounds the work orders too; driven from them (a seq scan of the few
    # orders, then the ratings by primary key) the funnel no longer walks the window's
    # ratings (PostgreSQL, 10M ratings, city 30 days: 298-417 ms -> 148 ms).
    drive = sqlite or scope.since is not None
    bad = E.level.in_(list(bad_levels))
    figures = select(
        *_funnel_columns(
            W,
            now=now,
            rectified_basis=rectified_basis,
            reached=reached,
            satisfied=satisfied,
            supervised=or_(W.supervising_at.is_not(None), W.escalations > 0),
        )
    )
    if (
        not sqlite
        and bad_levels
        and max(bad_levels) <= 2
        and not scope.by_window
        and (scope.path is not None or scope.org_ids is not None)
    ):
        # A subtree's bad ratings by the partial index `ix_evaluation_org_received_bad` (its
        # predicate written out inline: a prepared statement's parameters prove nothing), then
        # their work orders by rating: a city's 30 days at 10M ratings reads its ~330 bad
        # ratings, not the province's ~5,000 work orders of the window and their ratings.
        stmt = (
            figures.select_from(E)
            .join(W, W.evaluation_id == E.id)
            .where(
                *counted(db, scope),
                bad,
                E.level <= literal_column("2"),
                E.eval_count == literal_column("1"),
            )
        )
    else:
        stmt = (
            figures.select_from(W)
            # From the work orders (a bad rating has one; they are few) to their ratings:
            # on SQLite with nothing to read the ratings by but their primary key.
            .join(E, E.id == (W.evaluation_id + 0 if sqlite else W.evaluation_id))
            .where(
                *([] if scope.since is None else [W.opened_at >= scope.since]),
                *counted(db, scope, by_index=not drive),
                bad,
            )
        )
    own = (await db.execute(stmt)).one()
    # The children's orders, opened at the child when their rating was stored there (the
    # parent's copy of the rating has the same rating time, not the same receipt time).
    X = ExchangeWorkOrder
    reported = (
        await db.execute(
            select(
                *_funnel_columns(
                    X,
                    now=now,
                    rectified_basis=rectified_basis,
                    reached=X.called_back.is_(True),
                    satisfied=and_(X.called_back.is_(True), X.callback_satisfied.is_(True)),
                    supervised=X.supervised.is_(True),
                )
            )
            .select_from(X)
            .join(E, E.id == (X.evaluation_id + 0 if sqlite else X.evaluation_id))
            .where(*counted(db, scope, by_index=not drive), bad)
        )
    ).one()
    return {
        name: int(a or 0) + int(b or 0) for name, a, b in zip(FUNNEL, own, reported, strict=True)
    }


# --- reference data around the counts: the tree, names and labels ---------------------------


@dataclass(frozen=True, slots=True)
class OrgRow:
    """An organisation as the metrics need it (the tree is walked in Python)."""

    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    path: str
    region_code: str


async def org_rows(db: AsyncSession, prefix: str) -> list[OrgRow]:
    """The organisations of a subtree (by materialised path)."""
    rows = await db.execute(
        select(
            Org.id, Org.code, Org.name, Org.kind, Org.parent_id, Org.path, Org.region_code
        ).where(Org.path.startswith(prefix, autoescape=True))
    )
    return [OrgRow(*r) for r in rows.all()]


async def org_by_path(db: AsyncSession, path: str) -> OrgRow | None:
    """The organisation at a path, if any."""
    row = (
        await db.execute(
            select(
                Org.id, Org.code, Org.name, Org.kind, Org.parent_id, Org.path, Org.region_code
            ).where(Org.path == path)
        )
    ).one_or_none()
    return OrgRow(*row) if row is not None else None


async def root_count(db: AsyncSession) -> int:
    """How many organisations have no parent."""
    return int(
        (
            await db.execute(select(func.count()).select_from(Org).where(Org.parent_id.is_(None)))
        ).scalar_one()
    )


async def subtree_of_region(db: AsyncSession, path: str, region_path: str) -> OrgRow | None:
    """The organisation whose subtree is exactly the organisations under `path` located in
    the region under `region_path`, if there is one (then the rollups at it answer for
    them): the one highest of them, when its subtree holds all of them and nothing else."""
    in_scope = subtree_ids(path, region_path).subquery()
    tops = (
        await db.execute(
            select(Org.id, Org.code, Org.name, Org.kind, Org.parent_id, Org.path, Org.region_code)
            .where(Org.id.in_(select(in_scope.c.id)))
            .where(~Org.parent_id.in_(select(in_scope.c.id)) | Org.parent_id.is_(None))
            .limit(2)
        )
    ).all()
    if len(tops) != 1:
        return None
    top = OrgRow(*tops[0])
    outside = (
        await db.execute(
            select(func.count())
            .select_from(Org)
            .where(Org.path >= top.path, Org.path < path_end(top.path))
            .where(~Org.id.in_(select(in_scope.c.id)))
        )
    ).scalar_one()
    return top if not outside else None


async def org_count(db: AsyncSession) -> int:
    return int((await db.execute(select(func.count()).select_from(Org))).scalar_one())


async def region_paths(db: AsyncSession, path: str) -> dict[str, str]:
    """Code -> path of a region and every region below it."""
    rows = await db.execute(
        select(Region.code, Region.path).where(Region.path.startswith(path, autoescape=True))
    )
    return {str(code): str(p) for code, p in rows.all()}


async def child_regions(db: AsyncSession, code: str) -> dict[str, Region]:
    rows = await db.execute(select(Region).where(Region.parent_code == code))
    return {r.code: r for r in rows.scalars().all()}


async def top_regions(db: AsyncSession) -> list[str]:
    """The codes of the regions without a parent (at most two: "is there one?")."""
    rows = await db.execute(select(Region.code).where(Region.parent_code.is_(None)).limit(2))
    return list(rows.scalars().all())


async def region(db: AsyncSession, code: str) -> Region | None:
    return await db.get(Region, code)


async def item_id(db: AsyncSession, code: str) -> int | None:
    return (await db.execute(select(Item.id).where(Item.code == code))).scalar()


async def staff_names(db: AsyncSession, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Staff id -> (staff number, name)."""
    if not ids:
        return {}
    rows = await db.execute(
        select(Staff.id, Staff.staff_no, Staff.name).where(_ids_clause(db, Staff.id, ids))
    )
    return {i: (no, name) for i, no, name in rows.all()}


async def item_names(db: AsyncSession, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Item id -> (implementation code, name)."""
    if not ids:
        return {}
    rows = await db.execute(
        select(Item.id, Item.code, Item.name).where(_ids_clause(db, Item.id, ids))
    )
    return {i: (code, name) for i, code, name in rows.all()}


async def reason_texts(db: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    """Reason tag code -> its text (the newest tag-set version that has it)."""
    if not codes:
        return {}
    rows = await db.execute(
        select(ReasonTag.code, ReasonTag.text)
        .where(ReasonTag.code.in_(list(codes)))
        .order_by(ReasonTag.version)
    )
    return {str(code): str(text) for code, text in rows.all()}


async def staff_homes(db: AsyncSession, ids: Sequence[int]) -> dict[int, tuple[str, str, int]]:
    """Staff id -> (staff number, name, the organisation the staff member belongs to)."""
    if not ids:
        return {}
    rows = await db.execute(
        select(Staff.id, Staff.staff_no, Staff.name, Staff.org_id).where(
            _ids_clause(db, Staff.id, ids)
        )
    )
    return {i: (no, name, int(org_id)) for i, no, name, org_id in rows.all()}
    return {str(code): str(text) for code, text in rows.all()}


# --- 主动评价率: rated cases / completed cases (added for the appraisal, issue 12) -----------


async def case_rating_counts(db: AsyncSession, scope: Scope) -> tuple[int, int]:
    """(completed cases, of which rated) in scope: cases completed (`completed_at`) in the
    range at an organisation in scope (its window when the scope is a window), and among them
    those with at least one first rating that is not a system default rating."""
    C = Case
    where: list[ColumnElement[bool]] = [C.status == "completed", C.completed_at.is_not(None)]
    column: Any = C.window_id if scope.by_window else C.org_id
    if scope.org_ids is not None:
        where.append(_ids_clause(db, column, scope.org_ids))
    elif scope.path is not None:
        where.append(column.in_(subtree_ids(scope.path, scope.region_path)))
    if scope.item_id is not None:
        where.append(C.item_id == scope.item_id)
    if scope.since is not None:
        where.append(C.completed_at >= scope.since)
    if scope.until is not None:
        where.append(C.completed_at < scope.until)
    rated = (
        select(E.id).where(E.case_id == C.id, E.eval_count == 1, E.is_default.is_(False)).exists()
    )
    stmt = select(func.count(), func.count(case((rated, 1)))).select_from(C).where(*where)
    completed, with_rating = (await db.execute(stmt)).one()
    return int(completed), int(with_rating)
