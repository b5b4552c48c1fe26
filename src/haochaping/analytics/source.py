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

Query shape (issue 10's measurements): the organisation scope is resolved beforehand into the
list of organisation ids, so the ratings are filtered by `org_id IN (...)` (`= ANY(array)`
on PostgreSQL), which uses the `(org_id, received_at)` index; no per-row function and no
join to the organisation table. Days are grouped in Asia/Shanghai local time (UTC+8)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
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
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haochaping.analytics import rollups
from haochaping.evaluations.models import Evaluation, ReasonTag
from haochaping.evaluations.standing import EvaluationStanding, counted_clause
from haochaping.orgs.models import Item, Org, Region, Staff
from haochaping.workorders.models import CallbackAttempt, WorkOrder
from haochaping.workorders.queries import overdue_clause

E = Evaluation
W = WorkOrder
# Counts of levels 1..5 (index 0 is level 1).
LevelCounts = list[int]
# The dimensions `level_counts` groups by.
DIMENSIONS = ("channel", "unit", "staff", "item", "day")
# Callback verdicts that count as satisfied (满意 / 基本满意).
SATISFIED_VERDICTS = ("satisfied", "basic")


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
    # (id, path) of the organisation whose whole subtree `org_ids` is: the rollups answer for
    # it (`analytics/rollups.py`); None: the ratings table does.
    node: tuple[int, str] | None = None

    def narrowed(self, since: datetime | None, until: datetime | None) -> Scope:
        """The same scope over another time range."""
        return Scope(
            self.org_ids,
            self.by_window,
            self.item_id,
            since,
            until,
            self.held_counts,
            self.node,
        )


def _dialect(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


def _ids_clause(db: AsyncSession, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    if not ids:
        return literal(False)  # type: ignore[return-value]
    if _dialect(db) == "postgresql":
        # One array parameter, whatever the number of organisations.
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(list(ids))


def _first_ratings(db: AsyncSession, scope: Scope) -> list[ColumnElement[bool]]:
    """First ratings (not follow-ups) in scope and range, whatever their standing."""
    where: list[ColumnElement[bool]] = [E.eval_count == 1]
    if scope.org_ids is not None:
        where.append(_ids_clause(db, E.window_id if scope.by_window else E.org_id, scope.org_ids))
    if scope.item_id is not None:
        where.append(E.item_id == scope.item_id)
    if scope.since is not None:
        where.append(E.received_at >= scope.since)
    if scope.until is not None:
        where.append(E.received_at < scope.until)
    return where


def counted(db: AsyncSession, scope: Scope) -> list[ColumnElement[bool]]:
    """The ratings that count: first ratings in scope, not system defaults, neither invalid
    nor held (unless the policy lets held ones count meanwhile)."""
    return [
        *_first_ratings(db, scope),
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


async def funnel_counts(
    db: AsyncSession,
    scope: Scope,
    *,
    now: datetime,
    rectified_basis: str,
    bad_levels: Sequence[int],
) -> dict[str, int]:
    """The bad-review funnel over the work orders of the counted bad ratings in scope.

    `rectified_basis`: `reported` — rectification reported by its deadline; `closed` — the
    order closed by the rectification deadline."""
    if rectified_basis == "closed":
        rectified_on_time = and_(
            W.state == "closed",
            W.closed_at.is_not(None),
            or_(W.rectify_due_at.is_(None), W.closed_at <= W.rectify_due_at),
        )
    else:
        rectified_on_time = and_(
            W.rectified_at.is_not(None),
            or_(W.rectify_due_at.is_(None), W.rectified_at <= W.rectify_due_at),
        )
    verified_on_time = and_(
        W.verified_at.is_not(None),
        or_(W.verify_due_at.is_(None), W.verified_at <= W.verify_due_at),
    )
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
    supervised = or_(W.supervising_at.is_not(None), W.escalations > 0)
    open_ = W.state.not_in(("closed", "invalidated"))

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = (
        await db.execute(
            select(
                func.count(),
                n(verified_on_time),
                n(rectified_on_time),
                n(reached),
                n(satisfied),
                n(supervised),
                n(and_(open_, overdue_clause(now))),
            )
            .select_from(W)
            .join(E, E.id == W.evaluation_id)
            .where(*counted(db, scope), E.level.in_(list(bad_levels)))
        )
    ).one()
    names = (
        "opened",
        "verified_on_time",
        "rectified_on_time",
        "called_back",
        "callback_satisfied",
        "supervised",
        "overdue_open",
    )
    return {name: int(value or 0) for name, value in zip(names, row, strict=True)}


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
