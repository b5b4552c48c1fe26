"""Every administrative act leaves one audit row in its own transaction, and a refused act
leaves none (issue 9)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from haochaping.accounts import service as account_service
from haochaping.core import outbox
from haochaping.core.calendar import import_year
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.models import AuditEvent
from haochaping.core.outbox_models import OutboxMessage, OutboxStatus
from tests.core.test_calendar import CSV_2031, UNKNOWN
from tests.core.test_outbox import put
from tests.factories import PASSWORD, assert_error, bearer_headers, key_headers


async def rows(db, action: str, target_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == target_id)
    return list((await db.execute(query)).scalars())


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


async def test_creating_a_user_is_on_record_without_the_password(db, world):
    before = len(await rows(db, "create_user"))
    user = await account_service.create_user(
        db=db,
        username="clerk9",
        password=PASSWORD,
        role="unit",
        org_code="HALL-A",
        actor="admin",
        actor_role="admin",
    )
    await db.commit()
    new = (await rows(db, "create_user"))[before:]
    assert [(r.actor, r.actor_role, r.target_type, r.target_id) for r in new] == [
        ("admin", "admin", "user", user.id)
    ]
    assert new[0].detail == {"username": "clerk9", "role": "unit", "org": "HALL-A"}
    assert PASSWORD not in str(new[0].detail)


async def test_a_refused_user_or_client_leaves_no_row(db, world):
    before = {a: len(await rows(db, a)) for a in ("create_user", "create_client")}
    with pytest.raises(Invalid):
        await account_service.create_user(
            db=db, username="x1", password="short", role="unit", org_code="HALL-A", actor="admin"
        )
    with pytest.raises(Conflict):
        await account_service.create_user(
            db=db,
            username="admin",
            password=PASSWORD,
            role="unit",
            org_code="HALL-A",
            actor="admin",
        )
    with pytest.raises(Invalid):
        await account_service.create_client(
            db=db, name="c1", org_code="HALL-A", channels=["fax"], actor="admin"
        )
    assert {a: len(await rows(db, a)) for a in before} == before


async def test_creating_a_client_is_on_record_by_key_prefix_only(db, world):
    client, key = await account_service.create_client(
        db=db, name="kiosk9", org_code="HALL-A", channels=["pad"]
    )
    await db.commit()
    row = (await rows(db, "create_client"))[-1]
    assert (row.actor, row.actor_role, row.target_type, row.target_id) == (
        "cli",
        None,
        "api_client",
        client.id,
    )
    assert row.detail["key_prefix"] == key[:12] and row.detail["channels"] == ["pad"]
    assert key not in str(row.detail)


async def test_publishing_a_policy_is_on_record_and_a_refusal_is_not(client, db, world):
    values = {"evaluation_window_days": 10}
    refused = await client.post(
        "/api/v1/policies",
        json={"region_code": "330102", "values": values},
        headers=await bearer_headers(client, world.users["unit_a"]),
    )
    assert_error(refused, 403)
    headers = await bearer_headers(client, world.users["admin"])
    bad = {"region_code": "330102", "values": {"evaluation_window_days": -1}}
    invalid = await client.post("/api/v1/policies", headers=headers, json=bad)
    assert_error(invalid, 422)
    assert await rows(db, "publish_policy") == []

    r = await client.post(
        "/api/v1/policies", headers=headers, json={"region_code": "330102", "values": values}
    )
    assert r.status_code == 201, r.text
    [row] = await rows(db, "publish_policy")
    assert (row.actor, row.actor_role, row.target_type, row.target_id) == (
        "admin",
        "admin",
        "policy_set",
        r.json()["id"],
    )
    assert row.detail["region_code"] == "330102" and row.detail["version"] == r.json()["version"]


async def test_importing_a_calendar_is_on_record_and_a_bad_file_is_not(db):
    with pytest.raises(Invalid):
        await import_year(
            db=db,
            year=UNKNOWN,
            csv_text="date,type,name\nnope,x,y\n",
            source="bad",
            actor="admin",
            actor_role="admin",
        )
    assert await rows(db, "import_calendar") == []
    await import_year(
        db=db,
        year=UNKNOWN,
        csv_text=CSV_2031,
        source="国办发明电",
        actor="admin",
        actor_role="admin",
    )
    await db.commit()
    [row] = await rows(db, "import_calendar")
    assert (row.actor, row.actor_role, row.target_type, row.target_id) == (
        "admin",
        "admin",
        "calendar_year",
        UNKNOWN,
    )
    assert (row.detail["holidays"], row.detail["workdays"]) == (8, 2)


async def test_retrying_a_dead_message_is_on_record_and_a_refusal_is_not(db, tag):
    to = f"unit-{tag}@gov.test"
    await put(db, to)
    row = (
        await db.execute(select(OutboxMessage).where(OutboxMessage.recipient == to))
    ).scalar_one()
    row.status = OutboxStatus.SENT.value
    await db.flush()
    with pytest.raises(NotFound):
        await outbox.retry_message(db, message_id=10**9, actor="admin", actor_role="admin")
    with pytest.raises(Conflict):
        await outbox.retry_message(db, message_id=row.id, actor="admin", actor_role="admin")
    assert await rows(db, "retry_message", row.id) == []
    row.status = OutboxStatus.DEAD.value
    await outbox.retry_message(db, message_id=row.id, actor="admin", actor_role="admin")
    await db.commit()
    [event] = await rows(db, "retry_message", row.id)
    assert (event.actor, event.actor_role, event.target_type, event.target_id) == (
        "admin",
        "admin",
        "outbox_message",
        row.id,
    )
    assert to not in str(event.detail)


async def test_people_changing_reference_data_are_on_record_clients_are_not(client, db, world):
    admin = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/orgs",
        headers=admin,
        json={
            "code": "W-A9",
            "name": "新窗口",
            "kind": "window",
            "parent_code": "HALL-A",
            "region_code": "330102",
        },
    )
    assert r.status_code == 201, r.text
    [row] = [e for e in await rows(db, "create_org") if e.detail["code"] == "W-A9"]
    assert (row.actor, row.actor_role, row.target_type) == ("admin", "admin", "org")
    assert row.detail["code"] == "W-A9"

    r = await client.post(
        "/api/v1/staff",
        headers=admin,
        json={"staff_no": "S-A9", "name": "张伟", "org_code": "W-A9"},
    )
    assert r.status_code == 201, r.text
    [row] = [e for e in await rows(db, "create_staff") if e.detail["staff_no"] == "S-A9"]
    assert row.actor == "admin" and row.detail == {"staff_no": "S-A9", "org": "W-A9"}
    assert "张伟" not in str(row.detail)

    # A channel system pushing its reference data is a sync, not a person's act.
    r = await client.post(
        "/api/v1/items",
        headers=key_headers(world),
        json={"code": "ITEM-A9", "name": "食品经营许可", "org_code": "HALL-A"},
    )
    assert r.status_code == 201, r.text
    assert [e for e in await rows(db, "create_item") if e.detail["code"] == "ITEM-A9"] == []


async def test_refused_reference_data_leaves_no_row(client, db, world):
    before = len(await rows(db, "create_org"))
    unit = await bearer_headers(client, world.users["unit_a"])
    refused = await client.post(
        "/api/v1/orgs",
        headers=unit,
        json={
            "code": "W-X9",
            "name": "越权窗口",
            "kind": "window",
            "parent_code": "HALL-A",
            "region_code": "330102",
        },
    )
    assert_error(refused, 403)
    admin = await bearer_headers(client, world.users["admin"])
    invalid = await client.post(
        "/api/v1/orgs",
        headers=admin,
        json={
            "code": "W-X8",
            "name": "窗口",
            "kind": "window",
            "parent_code": "W-A1",
            "region_code": "330102",
        },
    )
    assert_error(invalid, 422, "invalid_parent")
    assert len(await rows(db, "create_org")) == before
