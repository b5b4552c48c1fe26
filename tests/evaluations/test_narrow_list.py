"""The list of ratings for a narrow scope (a hall) read per organisation on PostgreSQL gives the
same pages as the plain query: order, ties, cursor and filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from haochaping.core.auth import Principal
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import queries
from haochaping.orgs.models import Org
from tests.ledger.conftest import add_ratings


async def pages(db, rules, actor, **filters) -> list[list[int]]:
    out, cursor = [], None
    while True:
        items, cursor = await queries.evaluation_page(
            db=db, actor=actor, rules=rules, cursor=cursor, limit=3, **filters
        )
        out.append([i["id"] for i in items])
        if cursor is None:
            return out


async def test_a_halls_pages_are_those_of_the_plain_query(db, app, world, monkeypatch):
    if db.bind.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite has no LATERAL; it reads the plain query)")
    at = utcnow() - timedelta(days=1)
    # Ties on the rating time across the hall and its window, and a hall beside it.
    for k in range(4):
        same = at - timedelta(minutes=k // 2)
        await add_ratings(db, 2, org_code="HALL-A", evaluated_at=same)
        await add_ratings(db, 1, org_code="W-A1", evaluated_at=same)
        await add_ratings(db, 1, org_code="HALL-B", evaluated_at=same)
    hall = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
    actor = Principal(kind="user", id=1, name="u", org_id=hall.id, org_path=hall.path, role="unit")
    rules = app.state.rules
    cases = [{}, {"level": 5}, {"org_code": "W-A1"}, {"channel": "inspection", "since": at}]
    narrow = [await pages(db, rules, actor, **f) for f in cases]
    assert await queries.narrow_page_ids(
        db=db, actor=actor, org_code=None, level=None, channel=None, since=None, until=None,
        cursor=None, limit=3,
    ) is not None  # fmt: skip
    monkeypatch.setattr(queries, "NARROW_SCOPE", 0)  # every scope reads the plain query
    plain = [await pages(db, rules, actor, **f) for f in cases]
    assert narrow == plain
    assert sum(len(p) for p in narrow[0]) >= 12
    assert len({i for p in narrow[0] for i in p}) == sum(len(p) for p in narrow[0])
