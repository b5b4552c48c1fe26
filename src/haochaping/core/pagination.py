"""Keyset pagination: one page of a select() and the cursor of the page after it.

A list is ordered by a unique key (an id or a code), or by a time people care about (a
rating's time, an appeal's filing) with the id breaking ties. The cursor holds the last row's
key, or its time and id, so a page never repeats or skips a row however many share a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from haochaping.core.errors import Malformed
from haochaping.core.schemas import MAX_ID, decode_cursor, decode_int_cursor, encode_cursor

T = TypeVar("T")
_SEP = "|"


def _bad_cursor() -> Malformed:
    return Malformed("分页游标无效", code="invalid_cursor", details=[{"field": "cursor"}])


def decode_time_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (time, id) behind a cursor of a list ordered by time; 400 when it is not one."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    at, sep, raw_id = value.rpartition(_SEP)
    if not sep or not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 19:
        raise _bad_cursor()
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise _bad_cursor() from None
    if when.tzinfo is None or int(raw_id) > MAX_ID:
        raise _bad_cursor()
    return when, int(raw_id)


async def page(
    db: AsyncSession,
    stmt: Select,
    *,
    key: InstrumentedAttribute[Any],
    cursor: str | None,
    limit: int,
    descending: bool = False,
    text_key: bool = False,
    scalars: bool = False,
    time_key: InstrumentedAttribute[Any] | None = None,
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of `stmt` after the cursor, ordered by the unique column `key`
    (ascending, or newest first when `descending`), and the next page's cursor (None on the
    last page). Rows are result rows whose first entity carries `key`, or that entity itself
    with `scalars`; `text_key` for a string key (a code), else the cursor holds an id.

    With `time_key` (a non-null time column of the same entity) the order is that time, then
    `key` (the id) to break ties, both in the same direction."""
    if time_key is not None:
        last_at = decode_time_cursor(cursor)
        if last_at is not None:
            at, last_id = last_at
            if descending:
                after = or_(time_key < at, and_(time_key == at, key < last_id))
            else:
                after = or_(time_key > at, and_(time_key == at, key > last_id))
            stmt = stmt.where(after)
        order = (time_key.desc(), key.desc()) if descending else (time_key, key)
        stmt = stmt.order_by(None).order_by(*order).limit(limit + 1)
    else:
        last = decode_cursor(cursor) if text_key else decode_int_cursor(cursor)
        if last is not None:
            stmt = stmt.where(key < last if descending else key > last)
        # One extra row tells whether a next page exists.
        stmt = stmt.order_by(None).order_by(key.desc() if descending else key).limit(limit + 1)
    result = await db.execute(stmt)
    rows = list(result.scalars() if scalars else result.all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    entity = rows[-1] if scalars else rows[-1][0]
    if time_key is not None:
        when = getattr(entity, time_key.key)
        return rows, encode_cursor(f"{when.isoformat()}{_SEP}{getattr(entity, key.key)}")
    return rows, encode_cursor(getattr(entity, key.key))


PageFetch = Callable[[str | None, int], Awaitable[tuple[list[T], str | None]]]


async def walk(db: AsyncSession, fetch: PageFetch[T], *, batch: int = 1000) -> AsyncIterator[T]:
    """Every row of a keyset-paged list, `batch` rows per query, in the list's order: what an
    export streams. `fetch(cursor, limit)` is the list's own page function, so the rows are
    exactly the list's. Between batches the read transaction ends, so a long export holds no
    lock (SQLite's transactions begin IMMEDIATE) and keeps no rows in the session."""
    cursor: str | None = None
    while True:
        rows, cursor = await fetch(cursor, batch)
        await db.rollback()
        for row in rows:
            yield row
        if cursor is None:
            return
