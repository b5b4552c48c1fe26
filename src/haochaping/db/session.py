"""Engine and session factory; one unit of work per request or job."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from haochaping.config import Settings
from haochaping.core.crypto import configure_keys


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine for the configured database, tuned per backend."""
    # Whoever talks to the database reads and writes encrypted identifiers: install the keys.
    configure_keys(secret=settings.secret_key, keys_spec=settings.data_keys,
                   active=settings.data_key_id)
    if settings.is_sqlite:
        settings.ensure_data_dir()
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            connect_args={"timeout": 30},
        )

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
    return create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory used by requests and jobs."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
