"""Ratings and the ledger are append-only in the database itself, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from haochaping.evaluations.models import Evaluation
from haochaping.ledger import jobs as ledger_jobs
from haochaping.ledger.models import LedgerEntry
from tests.ledger.conftest import add_ratings

RATINGS = "评价记录不可修改或删除"
LEDGER = "存证账本不可修改或删除"


async def test_the_database_refuses_to_change_or_remove_ratings(db, sessionmaker, world):
    ids = await add_ratings(db, 2)
    await ledger_jobs.seal_pending(sessionmaker)
    assert (await db.get(LedgerEntry, ids[0])) is not None
    conn = await db.connection()
    refused = [
        (f"UPDATE evaluation SET level = 5 WHERE id = {ids[0]}", RATINGS),
        (f"UPDATE evaluation SET comment = NULL WHERE id = {ids[1]}", RATINGS),
        (f"DELETE FROM evaluation WHERE id = {ids[0]}", RATINGS),
        ("DELETE FROM evaluation", RATINGS),
        (f"UPDATE ledger_entry SET seq = seq WHERE evaluation_id = {ids[0]}", LEDGER),
        (f"DELETE FROM ledger_entry WHERE evaluation_id = {ids[0]}", LEDGER),
        ("UPDATE ledger_block SET root = root", LEDGER),
        ("DELETE FROM ledger_block", LEDGER),
    ]
    for sql, message in refused:
        with pytest.raises(DBAPIError, match=message):
            async with conn.begin_nested():
                await conn.execute(text(sql))
    levels = (await db.execute(select(Evaluation.level).where(Evaluation.id.in_(ids)))).all()
    assert len(levels) == 2
    # Adding stays allowed: intake is an INSERT.
    assert len(await add_ratings(db, 1)) == 1
