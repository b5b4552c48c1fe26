"""Keyset pagination: one page of a select() and the cursor of the page after it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from haochaping.core.schemas import decode_cursor, decode_int_cursor, encode_cursor


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
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of `stmt` after the cursor, ordered by the unique column `key`
    (ascending, or newest first when `descending`), and the next page's cursor (None on the
    last page). Rows are result rows whose first entity carries `key`, or that entity itself
    with `scalars`; `text_key` for a string key (a code), else the cursor holds an id."""
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
    return rows, encode_cursor(getattr(entity, key.key))
