"""Engine and session factory; one unit of work per request or job."""

from __future__ import annotations

import logging
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from haochaping.config import Settings
from haochaping.db.crypto import DataKeys
from haochaping.db.types import dialect_keys

# aiosqlite logs every statement with its parameters (phone numbers, names) at DEBUG: a
# debug log level must not write personal data.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine for the configured database, tuned per backend."""
    if settings.is_sqlite:
        settings.ensure_data_dir()
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            hide_parameters=True,  # error messages and logs must not carry personal data
            connect_args={"timeout": 30},
        )

        attach_keys(engine, settings)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the single writer; FULL sync makes a 201 durable.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy, not the driver, open transactions (SAVEPOINTs then work) ...
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # ... and take the write lock up front: a deferred transaction that later writes
            # can fail at once with SQLITE_BUSY instead of waiting its turn.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
    )
    attach_keys(engine, settings)
    ping_when_idle(engine.sync_engine, PING_IDLE_SECONDS)
    return engine


def attach_keys(engine: AsyncEngine, settings: Settings) -> DataKeys:
    """Give an engine the data keys of its settings: its encrypted columns and identity-hash
    defaults read them from the engine's own dialect (see db/types.py), never from a global."""
    keys = DataKeys.from_settings(settings)
    engine.sync_engine.dialect.hcp_keys = keys  # type: ignore[attr-defined]
    return keys


def engine_keys(bind: AsyncEngine | AsyncSession) -> DataKeys:
    """The data keys of an engine, or of the engine a session is bound to."""
    return dialect_keys(
        bind.get_bind().dialect if isinstance(bind, AsyncSession) else bind.sync_engine.dialect
    )


# A connection that went back to the pool less than this long ago is handed out unpinged.
PING_IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle_seconds: float = PING_IDLE_SECONDS) -> None:
    """Check a pooled connection before use when it sat idle, not on every checkout.

    `pool_pre_ping=True` pings on every checkout: three round trips on asyncpg (BEGIN, `;`,
    ROLLBACK), 3 of the 7 statements of a rating and ~10 % of its server CPU. A connection
    in steady use is known good: it answered a request moments ago. One that sat idle
    through a PostgreSQL restart, a failover or a firewall's idle timeout is pinged, and
    replaced when the ping fails, so the first request after such a pause still succeeds.
    What is given up: a connection broken less than `idle_seconds` after its last use fails
    the request that takes it (503); that error invalidates the whole pool, so the next
    requests reconnect, as they would for the requests in flight at the break anyway."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_conn, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # a new connection, or one in steady use
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and tries another (or a new one).
            raise DisconnectionError("idle connection failed its ping") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory used by requests and jobs."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
