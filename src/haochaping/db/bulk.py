"""Many rows in one INSERT on PostgreSQL: the rows as one JSON parameter, unpacked by
`json_to_recordset` on the server.

SQLAlchemy's executemany sends a batch as one multi-row `INSERT … VALUES (…), (…)` with a
bound parameter per row and column: for 1,000 ratings of 37 columns it processes 37,000
parameters one by one in Python, and PostgreSQL parses and plans a statement of 37,000
parameters. Here the columns that need it go through the column type's own bind processor
(the same encryption as the ORM's), the rows are encoded as one JSON array (C code), and the
statement has one parameter whatever the number of rows. (One array per column with `unnest`
was tried first: asyncpg checks every element of an array parameter against the abstract
`Iterable`, which cost more than the JSON.) Defaults the model gives in Python are filled
when they are constants; a row set must carry every column whose default is computed (the
callers compute them already).

On SQLite, and for fewer than `JSON_MIN_ROWS` rows, the same call is SQLAlchemy's
executemany, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from haochaping.db.base import UTCDateTime

_PG = postgresql.dialect()


@cache
def _statement(
    table: Table, columns: tuple[str, ...], returning: tuple[str, ...], on_conflict: bool
) -> Any:
    record = ", ".join(f"{name} {table.c[name].type.compile(dialect=_PG)}" for name in columns)
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.name} ({names}) "
        f"SELECT {names} FROM json_to_recordset(CAST(:rows AS json)) AS u({record})"
    )
    if on_conflict:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return text(sql)


# Below this many rows the executemany path costs less: the JSON round trip pays off on the
# batch route's thousand rows, not on a group commit's dozen (measured, docs/benchmarks.md).
JSON_MIN_ROWS = 100


@cache
def _executemany_statement(
    table: Table, returning: tuple[str, ...], on_conflict: bool, postgres: bool
) -> Any:
    stmt = (pg_insert if postgres else sqlite_insert)(table)
    if on_conflict:
        stmt = stmt.on_conflict_do_nothing()
    if returning:
        return stmt.returning(*(table.c[name] for name in returning))
    return stmt


def _constant_defaults(table: Table) -> dict[str, Any]:
    return {
        c.name: c.default.arg
        for c in table.columns
        if isinstance(c.default, ScalarElementColumnDefault)
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # aware (UTC) times: the column parses the offset
    raise TypeError(f"{type(value).__name__} is not a column value")


async def insert_rows(
    db: AsyncSession,
    table: Any,  # a Table (a model's `__table__`, typed as a FromClause)
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
    on_conflict_do_nothing: bool = False,
) -> list[Any]:  # rows of the RETURNING columns (SQLAlchemy Rows: tuples)
    """Insert `rows` (dicts of column values, all with the same keys) in one statement on
    PostgreSQL; the RETURNING rows, for the rows inserted (a skipped conflict returns none)."""
    if not rows:
        return []
    dialect = db.get_bind().dialect
    postgres = dialect.name == "postgresql"
    if not postgres or len(rows) < JSON_MIN_ROWS:
        stmt = _executemany_statement(table, tuple(returning), on_conflict_do_nothing, postgres)
        result = await db.execute(stmt, list(rows))
        return list(result.all()) if returning else []
    given = tuple(rows[0])
    missing = {
        c.name
        for c in table.columns
        if c.name not in given and c.default is not None and not c.primary_key
    }
    constants = {k: v for k, v in _constant_defaults(table).items() if k in missing}
    computed = missing - set(constants)
    if computed:
        raise ValueError(f"rows for {table.name} lack computed defaults: {sorted(computed)}")
    columns = given + tuple(sorted(constants))
    out = [{**row, **constants} for row in rows] if constants else [dict(row) for row in rows]
    for name in given:
        kind = table.c[name].type
        if isinstance(kind, JSON | UTCDateTime):
            continue  # JSON values nest as they are; times are checked below, encoded as text
        process = kind._cached_bind_processor(dialect)  # noqa: SLF001 - the type's own step
        if process is not None:
            for row in out:
                row[name] = process(row[name])
    for name in given:
        if isinstance(table.c[name].type, UTCDateTime):
            for row in out:
                if row[name] is not None and row[name].tzinfo is None:
                    raise ValueError("naive datetime given to a UTCDateTime column")
    payload = json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    stmt = _statement(table, columns, tuple(returning), on_conflict_do_nothing)
    result = await db.execute(stmt, {"rows": payload})
    return list(result.all()) if returning else []
