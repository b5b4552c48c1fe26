"""Fixtures of the intake tests: a rateable case, and an app that really commits (for races)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from haochaping.app import create_app, shutdown, startup
from haochaping.config import Settings
from haochaping.db import migrate
from haochaping.db.session import make_engine, make_sessionmaker
from tests import factories


@pytest.fixture
async def case(db, world):
    """A case completed yesterday at window W-A1, rateable by its applicant."""
    return await factories.make_case(db, world)


@dataclass
class Live:
    """An app on its own committing engine, with a world of its own (codes end in `suffix`)."""

    client: httpx.AsyncClient
    world: factories.World
    sessionmaker: object
    app: object

    def code(self, base: str) -> str:
        return self.world.code(base)


async def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def live_settings(settings: Settings):
    """A migrated sibling database on the suite's backend, for tests that really commit.

    Committed rows in the shared test database would break other tests' counts, and ratings
    cannot be deleted afterwards (the table is append-only), so they get a database of their own.
    """
    base, _, name = settings.database_url.rpartition("/")
    drop: list[str] = []
    if settings.is_sqlite:
        target = f"live-{uuid.uuid4().hex[:8]}.db"
    else:
        target = f"{name}_live"
        drop = [
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{target}"',
        ]
        asyncio.run(_pg_admin(settings.database_url, *drop, f'CREATE DATABASE "{target}"'))
    s = settings.model_copy(update={"database_url": f"{base}/{target}"})
    migrate.upgrade(s)
    yield s
    if settings.is_sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(base.split(":///", 1)[1], target + suffix).unlink(missing_ok=True)
    else:
        asyncio.run(_pg_admin(settings.database_url, *drop))


@pytest.fixture
async def live(live_settings):
    """create_app(settings) + startup with a committing engine: requests really race."""
    settings = live_settings
    engine = make_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    suffix = f"-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as db:
        world = await factories.build_world(db, suffix=suffix)
        await db.commit()
    app = create_app(settings)
    await startup(app, engine=engine)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4444))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=120
        ) as client:
            yield Live(client=client, world=world, sessionmaker=sessionmaker, app=app)
    finally:
        await shutdown(app)
        await engine.dispose()
