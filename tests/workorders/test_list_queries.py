"""The work-order list reads its rows in a fixed number of queries, however many there are."""

from __future__ import annotations

from tests.factories import statements_sent
from tests.workorders.conftest import rate_badly

WO = "/api/v1/work-orders"


async def _list(client, headers, engine) -> tuple[list[dict], int]:
    with statements_sent(engine) as statements:
        r = await client.get(WO, headers=headers, params={"limit": 50})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"], len(statements)


async def test_list_query_count_does_not_grow_with_the_rows(client, db, world, handlers, engine):
    office = handlers["office"]
    for _ in range(5):
        await rate_badly(client, db, world)
    await _list(client, office, engine)  # warms what is cached per app (policies, calendar)
    five, queries_for_5 = await _list(client, office, engine)
    assert len(five) == 5
    for _ in range(45):
        await rate_badly(client, db, world)
    fifty, queries_for_50 = await _list(client, office, engine)
    assert len(fifty) == 50
    assert queries_for_50 == queries_for_5, (queries_for_5, queries_for_50)
    # What each item shows is still there: the rating, the lead unit, what may be done next.
    first = fifty[0]
    assert first["id"] == five[0]["id"]
    assert first["evaluation"]["level"] == 2 and first["case_no"]
    assert first["org_code"] and first["allowed_actions"] and first["events"] == []
