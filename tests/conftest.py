"""Test harness: one migrated database per run (SQLite or PostgreSQL), one rolled-back
transaction per test, and an HTTP client bound to the app.

Choose the database with HAOCHAPING_TEST_DATABASE_URL (default: a SQLite file in a temp dir).
A PostgreSQL URL gets a fresh database `<name>_hcp_<pid>` created next to the one named; if the
server cannot be reached the run fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.app import create_app, startup
from haochaping.config import Settings
from haochaping.core.security import use_fast_hashing_for_tests
from haochaping.db import migrate
from haochaping.db.session import make_engine
from tests import factories

TEST_SECRET = "test-secret-" + "x" * 40
use_fast_hashing_for_tests()


def _database_url() -> str:
    url = os.environ.get("HAOCHAPING_TEST_DATABASE_URL")
    if url:
        return url
    folder = tempfile.mkdtemp(prefix="hcp-test-")
    return f"sqlite+aiosqlite:///{folder}/test.db"


async def _drop_pg_database(url: str) -> None:
    import asyncpg

    base, _, target = url.rpartition("/")
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target}' AND pid <> pg_backend_pid()"
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
    finally:
        await conn.close()


async def _recreate_pg_database(url: str) -> str:
    """Drop and create `<db>_hcp_<pid>`; returns the URL of the new database."""
    import asyncpg

    base, _, dbname = url.rpartition("/")
    # One database per test process, so that parallel runs never collide.
    target = f"{dbname}_hcp_{os.getpid()}"
    dsn = base.replace("postgresql+asyncpg", "postgresql") + f"/{dbname}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target}' AND pid <> pg_backend_pid()"
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
        await conn.execute(f'CREATE DATABASE "{target}"')
    finally:
        await conn.close()
    return f"{base}/{target}"


@pytest.fixture(scope="session")
def settings():
    url = _database_url()
    if url.startswith("postgresql"):
        url = asyncio.run(_recreate_pg_database(url))
    s = Settings(
        env="test",
        database_url=url,
        secret_key=TEST_SECRET,
        base_url="http://testserver",
        upload_dir=tempfile.mkdtemp(prefix="hcp-up-"),
        sms_log_path=os.path.join(tempfile.mkdtemp(prefix="hcp-sms-"), "sms.jsonl"),
        job_interval_seconds=0,
        # Other tests' worlds are top organisations too: a pass would rank them all.
        ranking_warm_seconds=0,
        _env_file=None,
    )
    migrate.upgrade(s)
    yield s
    if url.startswith("postgresql"):
        asyncio.run(_drop_pg_database(url))


@pytest.fixture(scope="session")
async def engine(settings: Settings):
    eng = make_engine(settings)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine) -> AsyncIterator:
    """A connection whose outer transaction is rolled back after the test."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        yield conn
        await trans.rollback()


@pytest.fixture
def sessionmaker(connection) -> async_sessionmaker[AsyncSession]:
    # Sessions join the test's transaction; their commits only release SAVEPOINTs.
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def db(sessionmaker) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def app(settings, engine, sessionmaker):
    application = create_app(settings)
    await startup(application, engine=engine, sessionmaker=sessionmaker)
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def world(db) -> factories.World:
    """A small province: two halls with windows, staff, items, keys and users."""
    w = await factories.build_world(db)
    await db.commit()
    return w
