"""Kept rankings of closed periods (issue 10): a closed month's ranking as one indexed read.

A ranking of a period that ended more than the intake grace ago can change in three ways
only, because a rating's period is its time of receipt (`rollups.PERIOD_COLUMN`): a standing
change (upheld appeal, invalidation, review of a held rating) of a rating in its range, a
change in the directory (an organisation, region, staff member or item renamed, moved, added
or removed), or another formula (which is part of the question's key). So the answer of
`metrics.rankings` for such a period is kept in `stat_ranking_snapshot` under a key of
everything that decides it (scope, tier, period, formula), with two marks read *before* it was
computed:

- the directory mark: the highest `directory_change` id (a trigger adds a row for every
  change of those four tables: migration 0034) at or below which every change has committed;
- the event mark: the same for the standing changes (`standing_event`).

A kept answer is served while no directory change follows its mark and no standing change
above its mark names a rating received in its range (the period and the one before it, which
`rank_change` reads). Otherwise the question is answered from the rollups as before.

Only callers that commit keep answers (`keep=True`: the scheduler's `warm`, the monthly
report): a page or API read only looks, and never writes in its request. `warm` keeps the
rankings people ask for most: every tier of the last twelve closed months, the last four
quarters and the last year for each top organisation (a provincial office's own view), and
of the last closed month for each region of the top two tiers (the public region pages and
the monthly 通报). Historical loads (the demo loader, `archive detach`) call `clear`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics.models import StatRankingSnapshot
from haochaping.analytics.rollups import GRACE
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import StandingEvent
from haochaping.orgs.models import DirectoryChange

# Bump when the body's shape or the ranking's rules change: older rows then never match.
FORMAT = 1
S = StatRankingSnapshot
# How far back `_mark` looks before it scans the whole table.
_RECENT_ROWS = 500


@dataclass(frozen=True, slots=True)
class Marks:
    directory_mark: int
    event_mark: int


def key(parts: list[Any]) -> str:
    """The key of a question: a digest of everything that decides its answer."""
    text = json.dumps([FORMAT, *parts], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def closed(until: datetime, now: datetime) -> bool:
    """Whether a period ending at `until` can be kept: every rating of it has committed."""
    return until + GRACE <= now


async def _mark(db: AsyncSession, table: Any, cutoff: datetime) -> int:
    """The highest id of `table` at or below which every row has committed.

    SQLite has one writer at a time, so ids commit in order: the highest visible id. On
    PostgreSQL a lower id may commit after a higher one; a row written more than the grace
    ago has committed (the rollups' reasoning), so the mark is the newest row older than
    that, found among the last few hundred rows, else over the whole table."""
    if db.get_bind().dialect.name != "postgresql":
        return int((await db.execute(select(func.max(table.id)))).scalar_one_or_none() or 0)
    recent = (
        select(table.id, table.created_at).order_by(table.id.desc()).limit(_RECENT_ROWS).subquery()
    )
    seen, mark = (
        await db.execute(
            select(func.count(), func.max(recent.c.id).filter(recent.c.created_at < cutoff))
        )
    ).one()
    if mark is None and int(seen) == _RECENT_ROWS:  # a burst: look at the whole table
        mark = (
            await db.execute(select(func.max(table.id)).where(table.created_at < cutoff))
        ).scalar_one_or_none()
    return int(mark or 0)


async def marks(db: AsyncSession, now: datetime | None = None) -> Marks:
    """The marks to keep an answer under; read before computing it."""
    cutoff = (now or utcnow()) - GRACE
    return Marks(await _mark(db, DirectoryChange, cutoff), await _mark(db, StandingEvent, cutoff))


async def _holding(db: AsyncSession, key_: str, *columns: Any) -> Any:
    """The kept row under `key_` (with `columns`) if it still holds, else None."""
    row = (
        await db.execute(
            select(S.since, S.until, S.directory_mark, S.event_mark, *columns).where(S.key == key_)
        )
    ).one_or_none()
    if row is None:
        return None
    moved = (
        await db.execute(
            select(DirectoryChange.id).where(DirectoryChange.id > row.directory_mark).limit(1)
        )
    ).first()
    if moved is not None:
        return None
    se, e = StandingEvent, Evaluation
    touched = (
        await db.execute(
            select(se.id)
            .join(e, e.id == se.evaluation_id)
            .where(se.id > row.event_mark, e.received_at >= row.since, e.received_at < row.until)
            .limit(1)
        )
    ).first()
    return None if touched is not None else row


async def holds(db: AsyncSession, key_: str) -> bool:
    """Whether a kept answer under `key_` still holds (without reading it)."""
    return await _holding(db, key_) is not None


async def lookup(db: AsyncSession, key_: str) -> dict[str, Any] | None:
    """The kept answer under `key_` if it still holds, else None."""
    row = await _holding(db, key_, S.body)
    if row is None:
        return None
    body: dict[str, Any] = json.loads(row.body)
    return body


async def answer(db: AsyncSession, key_: str) -> str | None:
    """The API's JSON of the kept answer under `key_` if it still holds, else None."""
    row = await _holding(db, key_, S.answer)
    return None if row is None else str(row.answer)


async def store(
    db: AsyncSession,
    key_: str,
    *,
    tier: str,
    period: str,
    since: datetime,
    until: datetime,
    marks_: Marks,
    body: dict[str, Any],
    answer_json: str,
) -> None:
    """Keep an answer in the caller's transaction (which commits it), replacing the old."""
    values = {
        "key": key_,
        "tier": tier,
        "period": period,
        "since": since,
        "until": until,
        "directory_mark": marks_.directory_mark,
        "event_mark": marks_.event_mark,
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "answer": answer_json,
        "computed_at": utcnow(),
    }
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(S).values(**values)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=[S.key],
            set_={k: stmt.excluded[k] for k in values if k != "key"},
        )
    )


async def clear(db: AsyncSession) -> int:
    """Forget every kept answer (after a load of historical ratings); the caller commits."""
    result = await db.execute(delete(S))
    return int(getattr(result, "rowcount", 0) or 0)
