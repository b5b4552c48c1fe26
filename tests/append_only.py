"""Lifting the append-only guard of a table for one step, as an attacker with database access
(or a test recreating an old schema) would: on PostgreSQL a superuser switching the table's
triggers off, on SQLite anyone who can write the file dropping them and putting them back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import text


@asynccontextmanager
async def unguarded(db, table: str, *, all_triggers: bool = False) -> AsyncIterator[None]:
    """Within the block, `table` accepts UPDATE and DELETE; `all_triggers` also switches off
    PostgreSQL's foreign-key triggers (on SQLite, foreign keys are deferred to a commit the
    rolled-back test never reaches)."""
    if db.bind.dialect.name == "postgresql":
        which = "ALL" if all_triggers else f"{table}_append_only"
        await db.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {which}"))
        yield
        await db.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {which}"))
        return
    if all_triggers:
        await db.execute(text("PRAGMA defer_foreign_keys = ON"))
    triggers = (
        await db.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        )
    ).all()
    for name, _sql in triggers:
        await db.execute(text(f"DROP TRIGGER {name}"))
    yield
    for _name, sql in triggers:
        await db.execute(text(sql))


@contextmanager
def unguarded_file(conn: sqlite3.Connection, table: str) -> Iterator[None]:
    """`unguarded` on a SQLite file opened with the standard library."""
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
    ).fetchall()
    for name, _sql in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    yield
    for _name, sql in triggers:
        conn.execute(sql)
