"""The demo tests count whole tables, so they get a database of their own, not the suite's
shared one (where other tests leave committed rows behind)."""

from __future__ import annotations

import asyncio
import os

import pytest

from haochaping.db import migrate
from haochaping.db.session import make_engine


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    base = url.rpartition("/")[0].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(base + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def demo_settings(settings, tmp_path_factory):
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo')}/demo.db"
        name = None
    else:
        name = f"hcp_demo_{os.getpid()}"
        asyncio.run(_pg(settings.database_url, f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_pg(settings.database_url, f'CREATE DATABASE "{name}"'))
        url = settings.database_url.rpartition("/")[0] + f"/{name}"
    own = settings.model_copy(update={"database_url": url})
    migrate.upgrade(own)
    yield own
    if name:
        asyncio.run(_pg(settings.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def demo_engine(demo_settings):
    eng = make_engine(demo_settings)
    yield eng
    await eng.dispose()
