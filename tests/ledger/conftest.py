"""Fixtures of the ledger tests: ratings stored as intake stores them, and tampering by hand."""

from __future__ import annotations

from datetime import timedelta

import factory
import pytest
from sqlalchemy import insert, select, text

from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from tests.append_only import unguarded

# Verification "an hour from now": every block counts as sealed long enough ago that a
# rating below it without an entry can only have been put in behind the sealer's back.
LATER = timedelta(hours=1)


class EvaluationRowFactory(factory.DictFactory):
    """The columns of a supervisory rating (监督查评) of a hall, as intake stores them."""

    case_id = None
    stage = "whole"
    eval_count = 1
    channel = "inspection"
    level = factory.Iterator([5, 4, 5, 2, 5, 3])
    reasons = factory.LazyAttribute(
        lambda o: [{5: "517", 4: "413", 3: "314", 2: "209", 1: "110"}[o.level]]
    )
    comment = factory.Iterator(["办事很快", "服务态度好，一次办成", None, "等了很久才叫到号"])
    tagset_version = "national-2020"
    item_id = None
    window_id = None
    staff_id = None
    rater_type = "person"
    rater_name = "张三"
    rater_cert_type = "id_card"
    rater_cert_no = factory.Sequence(lambda n: f"330102199001{n % 10000:04d}{n % 100:02d}")
    rater_phone = factory.Sequence(lambda n: f"138{n % 100_000_000:08d}")
    anonymous = False
    is_public = True
    is_default = False
    client_id = None
    user_id = None
    invitation_id = None
    source_ip = "203.0.113.7"
    user_agent = "Mozilla/5.0 (Linux; Android 14) 好差评"
    device_id = None
    evaluated_at = factory.LazyFunction(lambda: utcnow() - timedelta(minutes=3))
    received_at = factory.LazyFunction(utcnow)


async def add_ratings(db, n: int, *, org_code: str = "HALL-A", **overrides) -> list[int]:
    """Store n ratings of an organisation; their ids in order."""
    org = (await db.execute(select(Org).where(Org.code == org_code))).scalar_one()
    ids = []
    for _ in range(n):
        row = EvaluationRowFactory(org_id=org.id, region_code=org.region_code, **overrides)
        ids.append(
            (await db.execute(insert(Evaluation).values(row).returning(Evaluation.id))).scalar_one()
        )
    await db.commit()
    return ids


async def tamper(db, table: str, sql, **params) -> None:
    """Change stored data as an attacker with database access would: on PostgreSQL a superuser
    who first switches off the table's triggers (the append-only guard and the foreign-key
    checks), on SQLite anyone who can write the file (and drop its triggers)."""
    async with unguarded(db, table, all_triggers=True):
        await db.execute(text(sql) if isinstance(sql, str) else sql, params)
    await db.commit()


@pytest.fixture
def is_pg(engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def pg_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (run with HAOCHAPING_TEST_DATABASE_URL)")
