"""Alembic environment: runs migrations over the async engine of the configured database."""

from __future__ import annotations

import asyncio
import re

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from haochaping.models import metadata

config = context.config


# PostgreSQL's monthly partitions of the ratings table (migration 0030), attached or detached:
# DDL of the periodic job and of retention, not of the models.
PARTITION = re.compile(r"evaluation_(y\d{4}m\d{2}|default)$")
# On PostgreSQL the foreign keys to a rating reference `evaluation_key` (the partitioned table
# cannot be referenced by id alone); the models keep `evaluation.id`, which orders the ORM's
# inserts. tests/evaluations/test_partitions.py checks those keys instead.
KEYED = {"evaluation", "evaluation_key"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """Schema objects a model marks for some databases only (`info={"dialects": (...)}`, e.g.
    a BRIN index) are not compared on the others."""
    dialect = context.get_context().dialect.name
    if dialect == "postgresql":
        if type_ == "table" and reflected and PARTITION.match(name or ""):
            return False
        if type_ == "foreign_key_constraint" and obj.referred_table.name in KEYED:
            return False
    dialects = getattr(obj, "info", {}).get("dialects")
    return dialects is None or dialect in dialects


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through haochaping.db.migrate")
    engine = create_async_engine(url)
    # The data keys of the settings being migrated (db/migrate.py), on this engine only.
    engine.sync_engine.dialect.hcp_keys = config.attributes.get("hcp_keys")  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
