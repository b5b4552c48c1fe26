"""Migrations 0025-0026 on a database that already holds ratings (as 0021 left it): up, the
guard and the indexes in place, ratings intact; down again, and up once more."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import pytest
from alembic import command

from haochaping.db import migrate

ROW = (
    "INSERT INTO evaluation (stage, eval_count, channel, level, reasons, tagset_version, "
    "org_id, region_code, rater_type, anonymous, is_public, is_default, evaluated_at, "
    "received_at) VALUES ('whole', 1, 'inspection', {level}, '[\"517\"]', 'national-2020', 1, "
    "'330102', 'person', {false}, {true}, {false}, '2023-11-05 02:00:00+00:00', "
    "'2023-11-05 02:00:05+00:00')"
)
REFERENCE = [
    "INSERT INTO region (code, name, tier, path, created_at) VALUES "
    "('330102', '上城区', 3, '/330102/', '2023-01-01 00:00:00+00:00')",
    "INSERT INTO org (id, code, name, kind, region_code, path, created_at, active) VALUES "
    "(1, 'HALL-A', '市民之家', 'hall', '330102', '/HALL-A/', '2023-01-01 00:00:00+00:00', {true})",
]


@pytest.fixture
def database(settings, tmp_path):
    """A database of its own, beside the suite's, on the suite's kind of server."""
    if not settings.database_url.startswith("postgresql"):
        yield settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/mig.db"})
        return
    import asyncpg

    base, _, name = settings.database_url.rpartition("/")
    admin = base.replace("postgresql+asyncpg", "postgresql") + f"/{name}"
    target = f"{name}_mig"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{target}"'))
    asyncio.run(run(f'CREATE DATABASE "{target}"'))
    yield settings.model_copy(update={"database_url": f"{base}/{target}"})
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))


def execute(settings, statements: list[str]) -> list:
    """Run statements in one transaction; the rows of the last one (or the error)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.split("///", 1)[1])) as conn:
            cur = None
            for sql in statements:
                cur = conn.execute(sql.format(true=1, false=0, level=5))
            rows = cur.fetchall() if cur is not None else []
            conn.commit()
            return rows
    import asyncpg

    async def run() -> list:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            async with conn.transaction():
                for sql in statements[:-1]:
                    await conn.execute(sql.format(true="true", false="false", level=5))
                return await conn.fetch(statements[-1].format(true="true", false="false", level=5))
        finally:
            await conn.close()

    return asyncio.run(run())


def indexes(settings) -> set[str]:
    if settings.database_url.startswith("sqlite"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'evaluation'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'evaluation'"
    return {r[0] for r in execute(settings, [sql])}


def test_the_table_migrations_on_a_database_with_ratings(database):
    config = migrate.alembic_config(database)
    database.ensure_data_dir()
    command.upgrade(config, "0021")
    execute(database, [*REFERENCE, ROW, ROW, "SELECT count(*) FROM evaluation"])
    command.upgrade(config, "head")
    assert execute(database, ["SELECT count(*) FROM evaluation"])[0][0] == 2
    pg = database.database_url.startswith("postgresql")
    names = indexes(database)
    assert "ix_evaluation_org_evaluated_id" in names
    assert ("ix_evaluation_received_brin" in names) is pg
    assert ("ix_evaluation_received" in names) is not pg
    with pytest.raises(Exception, match="评价记录不可修改或删除"):
        execute(database, ["UPDATE evaluation SET level = 1"])
    with pytest.raises(Exception, match="评价记录不可修改或删除"):
        execute(database, ["DELETE FROM evaluation"])
    command.downgrade(config, "0021")
    assert "ix_evaluation_org_evaluated_id" not in indexes(database)
    assert "ix_evaluation_received" in indexes(database)
    if not pg:  # PostgreSQL's guard is older (0008) and stays
        execute(database, ["UPDATE evaluation SET level = 4", "SELECT 1"])
    command.upgrade(config, "head")
    assert execute(database, ["SELECT count(*) FROM evaluation"])[0][0] == 2
