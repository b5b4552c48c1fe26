"""The to-do counts of the console's navigation (待办): per role and scope, equal to what the
queues behind them list, in words for screen readers, and absent where a role has no such work."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from haochaping.console.forms import day_start
from haochaping.console.todo import SPOT_CHECKS, todo_counts
from haochaping.core.auth import Principal
from haochaping.core.calendar import local_today
from haochaping.core.roles import Role
from haochaping.core.timeutil import utcnow
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs.models import Org
from haochaping.workorders.models import SpotCheck
from tests.factories import bearer_headers, make_case
from tests.pages.helpers import rate, sign_in
from tests.workorders.conftest import rate_badly

BADGE = re.compile(
    r'<a href="(/console/[^"]+)"[^>]*>[^<]*<span class="nav-todo" aria-hidden="true">(\d+)</span>'
    r'<span class="visually-hidden">（([^）]+)）</span>'
)
QUEUE = "/console/work-orders"


async def badges(client) -> dict[str, tuple[int, str]]:
    r = await client.get("/console/evaluations")
    assert r.status_code == 200
    nav = r.text[r.text.index('<nav class="main-nav"') : r.text.index("</nav>")]
    return {path: (int(n), words) for path, n, words in BADGE.findall(nav)}


async def listed(client, **params) -> int:
    r = await client.get(QUEUE, params=params)
    assert r.status_code == 200
    return len(re.findall(r'<tr class="[^"]*" data-state="[^"]+" data-id="\d+"', r.text))


async def test_counts_per_role_equal_the_queues(client, db, world):
    now = utcnow()
    overdue_ev, overdue = await rate_badly(client, db, world)
    _, today = await rate_badly(client, db, world)
    appealed_ev, _ = await rate_badly(client, db, world)
    end_of_today = day_start(local_today() + timedelta(days=1))
    overdue.verify_due_at = now - timedelta(hours=1)
    today.verify_due_at = now + (end_of_today - now) / 2
    for order in (overdue, today):
        order.rectify_due_at = now + timedelta(days=20)
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await client.post(
        "/api/v1/appeals",
        headers=unit,
        json={
            "evaluation_id": appealed_ev["id"],
            "category": "mistaken",
            "reasons": "该评价针对的并非本单位办理的事项，请求复核",
        },
    )
    assert r.status_code == 201, r.text
    hall_a = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
    db.add(
        IntegrityFlag(
            evaluation_id=overdue_ev["id"],
            org_id=hall_a.id,
            check_name="burst",
            stage="batch",
            subject="pad",
            reason="短时间内集中评价",
            evidence={},
        )
    )
    good = await rate(client, world.keys["hall_a_pad"], (await make_case(db, world))["case_no"], 5)
    db.add(SpotCheck(evaluation_id=good["id"], org_id=hall_a.id, state="pending"))
    await db.commit()

    await sign_in(client, world.users["office"])
    found = await badges(client)
    n_overdue = await listed(client, overdue="yes")
    n_today = await listed(client, overdue="no", due_before=local_today().isoformat())
    assert n_overdue >= 1 and n_today >= 1
    total = n_overdue + n_today
    assert found[QUEUE] == (total, f"待办 {total} 项：已超期 {n_overdue} 项，今日到期 {n_today} 项")
    assert found["/console/appeals"] == (1, "待办 1 项")
    assert found["/console/integrity"] == (1, "待办 1 项")
    assert found["/console/spot-checks"] == (1, "待办 1 项")
    office_org = (await db.execute(select(Org).where(Org.code == "OFFICE"))).scalar_one()
    office = Principal(
        kind="user",
        id=0,
        name="o",
        org_id=office_org.id,
        org_path=office_org.path,
        role=Role.OFFICE,
    )
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get("/api/v1/spot-checks", headers=headers)
    assert (await todo_counts(db, office))[SPOT_CHECKS].total == len(r.json()["items"]) == 1

    # The unit handles the same orders; appeals and flags are the office's to decide.
    await sign_in(client, world.users["unit_a"])
    found = await badges(client)
    assert found == {
        QUEUE: (total, f"待办 {total} 项：已超期 {n_overdue} 项，今日到期 {n_today} 项"),
        "/console/spot-checks": (1, "待办 1 项"),  # a unit calls its spot checks too
    }
    assert await listed(client, overdue="yes") == n_overdue
    # Another hall's unit and the assessors have nothing to do here.
    for role in ("unit_b", "assessor"):
        await sign_in(client, world.users[role])
        assert await badges(client) == {}, role


async def test_badges_are_kept_briefly_and_read_again_after_an_act(client, db, world):
    from haochaping.console.todo import FLAGS, TodoCache

    ev, _ = await rate_badly(client, db, world)
    office_org = (await db.execute(select(Org).where(Org.code == "OFFICE"))).scalar_one()
    office = Principal(
        kind="user",
        id=1,
        name="o",
        org_id=office_org.id,
        org_path=office_org.path,
        role=Role.OFFICE,
    )
    cache, paths = TodoCache(), {FLAGS}
    assert await cache.get(db, office, paths) == {}
    db.add(
        IntegrityFlag(
            evaluation_id=ev["id"],
            org_id=office_org.id,
            check_name="burst",
            stage="batch",
            subject="pad",
            reason="短时间内集中评价",
            evidence={},
        )
    )
    await db.flush()
    assert await cache.get(db, office, paths) == {}  # kept
    assert (await cache.get(db, office, paths, fresh=True))[FLAGS].total == 1
    expired = TodoCache(seconds=0)
    assert (await expired.get(db, office, paths))[FLAGS].total == 1
