"""Subtree searches on materialised paths are served by an index on PostgreSQL whatever the
database's collation (a plain b-tree serves LIKE 'prefix%' only under the "C" collation)."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.mark.parametrize("table", ["org", "region"])
async def test_a_path_prefix_is_an_index_scan_on_postgresql(db, table):
    if db.bind.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (run with HAOCHAPING_TEST_DATABASE_URL)")
    await db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        (await db.execute(text(f"EXPLAIN SELECT path FROM {table} WHERE path LIKE '/33/%'")))
        .scalars()
        .all()
    )
    assert f"ix_{table}_path" in plan, plan
