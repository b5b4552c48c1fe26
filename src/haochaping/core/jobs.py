"""The bookkeeping every domain's periodic jobs share, in `job_state` (`core.models.JobState`):
watermarks (the last row a job has looked at) and once-per-interval slots across processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.db import rows_changed
from haochaping.core.models import JobState
from haochaping.core.timeutil import utcnow


async def _ensure(db: AsyncSession, name: str, now: datetime) -> None:
    ins = pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]
    await db.execute(
        ins(JobState).values(name=name, value=0, updated_at=now).on_conflict_do_nothing()
    )


async def watermark(db: AsyncSession, name: str, *, lock: bool = False) -> int:
    """A job's watermark (0 the first time); `lock` holds its row until the transaction ends,
    so that two processes do not take the same rows."""
    await _ensure(db, name, utcnow())
    stmt = select(JobState.value).where(JobState.name == name)
    if lock:
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).scalar_one()


async def advance(db: AsyncSession, name: str, value: int, *, expected: int | None = None) -> None:
    """Move a job's watermark to `value` (only from `expected`, when given)."""
    stmt = update(JobState).where(JobState.name == name)
    if expected is not None:
        stmt = stmt.where(JobState.value == expected)
    await db.execute(stmt.values(value=value, updated_at=utcnow()))


async def claim_slot(db: AsyncSession, name: str, *, now: datetime, interval: int) -> bool:
    """Take this interval's run of a job (a conditional UPDATE: one process wins)."""
    await _ensure(db, name, now)
    epoch = int(now.timestamp())
    won = await db.execute(
        update(JobState)
        .where(JobState.name == name, JobState.value <= epoch - interval)
        .values(value=epoch, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(won) == 1
