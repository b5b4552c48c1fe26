"""The request's database session (the unit of work; handlers commit at the edge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; rolled back unless the handler committed."""
    async with request.app.state.sessionmaker() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (0 when the driver cannot tell): the
    compare-and-set check of optimistic locking and single-use claims."""
    return cast(CursorResult[Any], result).rowcount or 0
