"""The pool pings only idle connections (db/session.py): one whose server session ended while
it sat idle is replaced and the request that takes it succeeds; one in steady use is not
pinged, so a break in the last second reaches the request (the trade-off, see the module)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from haochaping.config import Settings
from haochaping.db import session as db_session

PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    if settings.is_sqlite:
        pytest.skip("a pool of PostgreSQL connections")
    return settings


async def _pooled_then_killed(settings: Settings, engine) -> int:
    """Open one pooled connection, return it to the pool, end its server session."""
    async with engine.connect() as conn:
        victim = (await conn.execute(PID)).scalar_one()
    admin = await asyncpg.connect(settings.database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", victim)
    finally:
        await admin.close()
    return victim


async def test_idle_connection_ended_by_the_server_is_replaced(pg_settings, monkeypatch):
    monkeypatch.setattr(db_session, "PING_IDLE_SECONDS", 0.2)
    engine = db_session.make_engine(pg_settings)
    try:
        victim = await _pooled_then_killed(pg_settings, engine)
        await asyncio.sleep(0.4)  # idle past the threshold
        async with engine.connect() as conn:
            assert (await conn.execute(PID)).scalar_one() != victim
    finally:
        await engine.dispose()


async def test_connection_in_steady_use_is_not_pinged(pg_settings, monkeypatch):
    monkeypatch.setattr(db_session, "PING_IDLE_SECONDS", 60.0)
    engine = db_session.make_engine(pg_settings)
    try:
        await _pooled_then_killed(pg_settings, engine)
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.execute(PID)
        assert failed.value.connection_invalidated
        async with engine.connect() as conn:  # the pool was invalidated: the next reconnects
            await conn.execute(PID)
    finally:
        await engine.dispose()
