"""GET /api/v1/audit-events: the audit trail as administrators read it, scoped to their
subtree, newest first, cursor-paginated and filtered (issue 9)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from haochaping.accounts import service as account_service
from haochaping.core import audit
from haochaping.core.audit import AuditAction
from tests.factories import PASSWORD, assert_error, bearer_headers, key_headers

URL = "/api/v1/audit-events"


@pytest.fixture
async def trail(db, world) -> dict[str, str]:
    """Three acts of one new action target: by a person of hall A, of hall B, and by the
    command line (no person); plus an administrator of hall A (not the root)."""
    tag = uuid.uuid4().hex[:8]
    hall_admin = f"hadmin{tag}"
    await account_service.create_user(
        db=db, username=hall_admin, password=PASSWORD, role="admin", org_code="HALL-A"
    )
    for actor, role in ((world.users["unit_a"], "unit"), (world.users["unit_b"], "unit")):
        audit.record(
            db,
            actor=actor,
            actor_role=role,
            action=AuditAction.REVEAL_PHONE,
            target_type="work_order",
            target_id=None,
            detail={"tag": tag},
        )
    audit.record(
        db,
        actor="cli",
        actor_role=None,
        action=AuditAction.IMPORT_CALENDAR,
        target_type="calendar",
        target_id=None,
        detail={"tag": tag},
    )
    await db.commit()
    return {"tag": tag, "hall_admin": hall_admin}


def tagged(body: dict, tag: str) -> list[dict]:
    return [i for i in body["items"] if i["detail"].get("tag") == tag]


async def test_the_root_administrator_reads_every_act_newest_first(client, world, trail):
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.get(URL, headers=headers, params={"limit": 500})
    assert r.status_code == 200, r.text
    mine = tagged(r.json(), trail["tag"])
    assert [(i["actor"], i["action"]) for i in mine] == [
        ("cli", "import_calendar"),
        (world.users["unit_b"], "reveal_phone"),
        (world.users["unit_a"], "reveal_phone"),
    ]
    assert mine[0]["actor_org_code"] is None and mine[0]["action_label"] == "导入工作日历"
    assert mine[2]["actor_org_code"] == "HALL-A" and mine[2]["action_label"] == "查看评价人手机号"
    ids = [i["id"] for i in r.json()["items"]]
    assert ids == sorted(ids, reverse=True)


async def test_an_administrator_below_the_root_reads_only_their_subtree(client, world, trail):
    headers = await bearer_headers(client, trail["hall_admin"])
    r = await client.get(URL, headers=headers, params={"limit": 500})
    assert r.status_code == 200, r.text
    mine = tagged(r.json(), trail["tag"])
    assert [(i["actor"], i["actor_org_code"]) for i in mine] == [(world.users["unit_a"], "HALL-A")]
    # Nothing of another hall or of the command line, whatever the filters.
    r = await client.get(URL, headers=headers, params={"actor": "cli", "limit": 500})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(
        URL, headers=headers, params={"actor": world.users["unit_b"], "limit": 500}
    )
    assert r.status_code == 200 and r.json()["items"] == []


async def test_filters_by_action_actor_and_time(client, world, trail):
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.get(
        URL, headers=headers, params={"action": "reveal_phone", "actor": world.users["unit_a"]}
    )
    assert r.status_code == 200
    assert {(i["actor"], i["action"]) for i in r.json()["items"]} == {
        (world.users["unit_a"], "reveal_phone")
    }
    assert tagged(r.json(), trail["tag"])
    r = await client.get(URL, headers=headers, params={"action": "import_calendar"})
    assert {i["action"] for i in r.json()["items"]} == {"import_calendar"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await client.get(URL, headers=headers, params={"since": future})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(URL, headers=headers, params={"since": past, "limit": 500})
    assert len(tagged(r.json(), trail["tag"])) == 3
    r = await client.get(URL, headers=headers, params={"until": past, "limit": 500})
    assert tagged(r.json(), trail["tag"]) == []


async def test_pages_with_a_cursor(client, world, trail):
    headers = await bearer_headers(client, world.users["admin"])
    seen: list[int] = []
    params: dict = {"actor": world.users["unit_a"], "limit": 1}
    r = await client.get(URL, headers=headers, params={**params, "limit": 500})
    total = len(r.json()["items"])
    assert total >= 1
    while True:
        r = await client.get(URL, headers=headers, params=params)
        assert r.status_code == 200
        seen += [i["id"] for i in r.json()["items"]]
        if not r.json()["next_cursor"]:
            break
        params["cursor"] = r.json()["next_cursor"]
    assert len(seen) == total and seen == sorted(seen, reverse=True)


async def test_refusals(client, world, trail):
    assert_error(await client.get(URL), 401)
    assert_error(await client.get(URL, headers=key_headers(world)), 403, "user_required")
    for who in ("office", "unit_a", "assessor"):
        headers = await bearer_headers(client, world.users[who])
        assert_error(await client.get(URL, headers=headers), 403, "role_forbidden")
    headers = await bearer_headers(client, world.users["admin"])
    for params in (
        {"action": "delete_everything"},
        {"since": "yesterday"},
        {"until": "2026-01-01T00:00:00"},  # no offset
        {"limit": 0},
        {"limit": 501},
        {"actor": "x" * 101},
    ):
        assert_error(await client.get(URL, headers=headers, params=params), 422)
    assert_error(
        await client.get(URL, headers=headers, params={"cursor": "@@"}), 400, "invalid_cursor"
    )
