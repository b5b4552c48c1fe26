"""The to-do counts beside the console's navigation (待办): work orders overdue or due today,
spot checks to call, appeals awaiting a decision, suspected fake ratings awaiting review —
each only for the roles whose work it is, scoped like its queue.

Each count is the count of the very select() its queue pages through (same filters, same
scope), so a badge never disagrees with the list behind it; all of them come back in one
round trip (one SELECT of scalar subqueries). A province's counts cost a noticeable part of a
second (bench/todo.py), so each person's badges are kept `CACHE_SECONDS` by `TodoCache`
(one per application), and read again after any act of theirs in the console."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appeals import queries as appeal_queries
from haochaping.appeals.choices import AppealState
from haochaping.console.forms import day_start
from haochaping.core.auth import Principal
from haochaping.core.calendar import local_today
from haochaping.core.roles import HANDLERS, MANAGERS
from haochaping.core.timeutil import utcnow
from haochaping.integrity import queries as integrity_queries
from haochaping.integrity.choices import FlagState
from haochaping.workorders import queries as wo_queries

WORK_ORDERS = "/console/work-orders"
SPOT_CHECKS = "/console/spot-checks"
APPEALS = "/console/appeals"
FLAGS = "/console/integrity"
CACHE_SECONDS = 30.0
CACHE_PEOPLE = 2000  # the people whose badges are kept at most (the oldest go first)


@dataclass(frozen=True)
class Badge:
    """The count on a navigation entry and what it is made of, said in words."""

    total: int
    parts: tuple[tuple[str, int], ...]

    @property
    def text(self) -> str:
        """待办 5 项：已超期 2 项，今日到期 3 项"""
        detail = "，".join(f"{label} {n} 项" for label, n in self.parts if n)
        return f"待办 {self.total} 项" + (f"：{detail}" if len(self.parts) > 1 else "")


def _count(stmt: Select):
    return select(func.count()).select_from(stmt.order_by(None).subquery()).scalar_subquery()


def counted(user: Principal) -> dict[str, list[tuple[str, Select]]]:
    """The queues whose size the person sees in the navigation, by the page that lists them:
    none for window staff and assessors (no such work), the office's for the offices."""
    now = utcnow()
    out: dict[str, list[tuple[str, Select]]] = {}
    if user.has_role(*HANDLERS):
        # The work-order queue's "overdue" and "not overdue, due by today" filters.
        tomorrow = day_start(local_today() + timedelta(days=1))
        out[WORK_ORDERS] = [
            ("已超期", wo_queries.work_orders(actor=user, overdue=True, now=now)),
            (
                "今日到期",
                wo_queries.work_orders(actor=user, overdue=False, due_before=tomorrow, now=now),
            ),
        ]
        out[SPOT_CHECKS] = [
            ("待回访", wo_queries.spot_checks(actor=user, state="pending")),
        ]
    if user.has_role(*MANAGERS):
        out[APPEALS] = [
            ("待复核申诉", appeal_queries.appeals(actor=user, state=AppealState.PENDING.value))
        ]
        out[FLAGS] = [
            ("待复核", integrity_queries.flags(actor=user, state=FlagState.OPEN.value)),
        ]
    return out


async def todo_counts(
    db: AsyncSession, user: Principal, paths: set[str] | None = None
) -> dict[str, Badge]:
    """The badges of the person's navigation (entries with nothing to do have none); only
    for the pages in `paths` when given (a page not in the navigation gets no count)."""
    queues = {p: q for p, q in counted(user).items() if paths is None or p in paths}
    flat = [(path, label, stmt) for path, parts in queues.items() for label, stmt in parts]
    if not flat:
        return {}
    row = (await db.execute(select(*[_count(stmt) for _, _, stmt in flat]))).one()
    found: dict[str, list[tuple[str, int]]] = {}
    for (path, label, _), n in zip(flat, row, strict=True):
        found.setdefault(path, []).append((label, int(n)))
    return {
        path: Badge(total=sum(n for _, n in parts), parts=tuple(parts))
        for path, parts in found.items()
        if any(n for _, n in parts)
    }


class TodoCache:
    """Each person's badges for `CACHE_SECONDS` (keyed by who they are, their role and their
    area, so a changed role or organisation is never served the old counts)."""

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = CACHE_PEOPLE) -> None:
        self.seconds, self.size = seconds, size
        self._data: OrderedDict[tuple, tuple[float, dict[str, Badge]]] = OrderedDict()

    async def get(
        self, db: AsyncSession, user: Principal, paths: set[str], *, fresh: bool = False
    ) -> dict[str, Badge]:
        """The person's badges: kept ones, unless `fresh` (after an act of theirs) or old."""
        key = (user.kind, user.id, user.role, user.org_path, frozenset(paths))
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now and not fresh:
            return hit[1]
        badges = await todo_counts(db, user, paths)
        self._data[key] = (now + self.seconds, badges)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)
        return badges
