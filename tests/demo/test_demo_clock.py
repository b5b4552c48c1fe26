"""The demo loaded on a public holiday, before office hours: the showcase orders still put
every state of the loop on show (their moments count working days back from any day)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from haochaping.core.timeutil import SHANGHAI
from haochaping.demo import loader
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import State

# 国庆节: a Monday off work, at 07:30 in the morning.
HOLIDAY = datetime(2026, 10, 5, 7, 30, tzinfo=SHANGHAI)


async def test_every_state_is_on_show_whatever_the_day(demo_engine, demo_settings):
    async with demo_engine.connect() as conn:
        trans = await conn.begin()
        maker = async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            async with maker() as db:
                summary = await loader.load_into(
                    db, cases=300, seed=3, now=HOLIDAY, settings=demo_settings
                )
                states = set((await db.execute(select(WorkOrder.state).distinct())).scalars())
                assert states == {s.value for s in State}
                assert summary.showcase and summary.appeals["pending"]
                assert summary.orders["supervising"] >= 2  # one overdue, one dissatisfied
        finally:
            await trans.rollback()
