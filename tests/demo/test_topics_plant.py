"""The demo's planted complaint topic (issue 12): once the job has segmented the demo's
comments, the emerging-topics view of the province puts the planted item and its matter first."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker

from haochaping.core.timeutil import utcnow
from haochaping.demo import generate, loader, topics_plant
from haochaping.topics import jobs, queries
from tests.factories import ADMIN


async def test_the_planted_item_and_matter_come_first(demo_engine, demo_settings):
    now = utcnow()
    async with demo_engine.connect() as conn:
        trans = await conn.begin()
        maker = async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        async with maker() as db:
            await loader.load_into(db, cases=1500, seed=11, now=now, settings=demo_settings)
            await db.commit()
            report = await jobs.refresh(maker, now=now + timedelta(days=1))
            assert report.comments > 100
            found = await queries.emerging(db, actor=ADMIN, now=now)
            ref = generate.build_reference(
                random.Random(11), now=now, org_id=1, staff_id=1, item_id=1
            )
            item = topics_plant.planted_item(ref)
            top = found.items[0]
            assert (top.item_code, top.term) == (item.code, topics_plant.MATTER)
            # Each planted complaint names the matter (jieba may cut one phrasing otherwise).
            assert sum(topics_plant.WEEKLY) - 3 <= top.recent <= sum(topics_plant.WEEKLY)
            assert top.before == 0
            assert top.examples and all(topics_plant.MATTER in e.text for e in top.examples)
        await trans.rollback()
