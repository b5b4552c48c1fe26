"""Service cases (办件): create 201 / update 200, status only moves forward, reads are masked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from haochaping.cases.models import Case
from haochaping.orgs.models import Item
from tests.factories import (
    CasePayloadFactory,
    assert_error,
    bearer_headers,
    iso,
    key_headers,
    now,
    table_counts,
)

STATUSES = ["received", "accepted", "completed", "rejected"]
# (from, to) pairs that move forward (or stay); every other pair is a regression.
FORWARD = {("received", s) for s in STATUSES} | {
    ("accepted", "accepted"),
    ("accepted", "completed"),
    ("accepted", "rejected"),
    ("completed", "completed"),
    ("rejected", "rejected"),
}


def payload_in(status: str, **overrides) -> dict:
    """A case payload whose timestamps fit the status."""
    base = CasePayloadFactory(status=status, **overrides)
    if status == "received":
        base["accepted_at"] = base["completed_at"] = None
    elif status in ("accepted", "rejected"):
        base["completed_at"] = None
    return base


async def case_row(db, case_no: str) -> Case:
    row = (await db.execute(select(Case).where(Case.case_no == case_no))).scalar_one()
    await db.refresh(row)
    return row


async def test_a_new_case_is_201_and_masked_in_the_answer(client, db, world):
    payload = CasePayloadFactory(
        applicant={
            "type": "person",
            "name": "欧阳娜娜",
            "cert_type": "id_card",
            "cert_no": "110101199003070011",
            "phone": "13812345678",
        }
    )
    r = await client.post("/api/v1/cases", json=payload, headers=key_headers(world))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["applicant"] == {
        "type": "person",
        "name": "欧**娜",
        "cert_type": "id_card",
        "cert_no": "1101**********0011",
        "phone": "138****5678",
    }
    assert (
        got["case_no"],
        got["item_code"],
        got["org_code"],
        got["window_code"],
        got["staff_no"],
        got["status"],
    ) == (payload["case_no"], "ITEM-A1", "HALL-A", "W-A1", "S-A1", "completed")
    assert got["item_name"] == "营业执照核发"
    row = await case_row(db, payload["case_no"])
    # Stored in full: the callback after a bad review needs the real number.
    assert row.applicant_cert_no == "110101199003070011" and row.applicant_phone == "13812345678"
    assert row.client_id is not None


async def test_get_returns_the_case_masked(client, world):
    payload = CasePayloadFactory()
    await client.post("/api/v1/cases", json=payload, headers=key_headers(world))
    r = await client.get(f"/api/v1/cases/{payload['case_no']}", headers=key_headers(world))
    assert r.status_code == 200
    applicant = r.json()["applicant"]
    assert applicant["name"] == "张*"
    assert payload["applicant"]["cert_no"] not in r.text
    assert payload["applicant"]["phone"] not in r.text
    assert "*" in applicant["cert_no"] and "*" in applicant["phone"]


async def test_a_case_moves_forward_step_by_step(client, db, world):
    headers = key_headers(world)
    received = payload_in("received")
    case_no = received["case_no"]
    assert (await client.post("/api/v1/cases", json=received, headers=headers)).status_code == 201
    accepted = {**received, "status": "accepted", "accepted_at": iso(now() - timedelta(hours=2))}
    r = await client.post("/api/v1/cases", json=accepted, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    completed = {**accepted, "status": "completed", "completed_at": iso(now())}
    r = await client.post("/api/v1/cases", json=completed, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "completed"
    row = await case_row(db, case_no)
    assert row.status == "completed" and row.received_at and row.accepted_at and row.completed_at
    # A later push without a timestamp keeps the one already known.
    r = await client.post("/api/v1/cases", json={**completed, "received_at": None}, headers=headers)
    assert r.status_code == 200 and r.json()["received_at"] is not None


@pytest.mark.parametrize("old", STATUSES)
async def test_status_never_moves_back(client, db, world, old):
    headers = key_headers(world)
    first = payload_in(old)
    assert (await client.post("/api/v1/cases", json=first, headers=headers)).status_code == 201
    for new in STATUSES:
        again = payload_in(new, case_no=first["case_no"])
        r = await client.post("/api/v1/cases", json=again, headers=headers)
        if (old, new) in FORWARD:
            assert r.status_code == 200, (old, new, r.text)
            # Put it back where this test expects it (a forward move cannot be undone, so
            # start the next pair from a fresh case).
            first = payload_in(old)
            await client.post("/api/v1/cases", json=first, headers=headers)
        else:
            err = assert_error(r, 409, "status_regression")
            assert err["details"] == [{"field": "status", "current": old, "requested": new}]
            assert (await case_row(db, first["case_no"])).status == old


async def test_a_regression_changes_nothing_else(client, db, world):
    headers = key_headers(world)
    done = CasePayloadFactory()
    await client.post("/api/v1/cases", json=done, headers=headers)
    before = await case_row(db, done["case_no"])
    snapshot = (before.status, before.staff_id, before.applicant_name, before.updated_at)
    back = payload_in(
        "accepted", case_no=done["case_no"], staff_no="S-B1", applicant={"name": "李四"}
    )
    assert_error(
        await client.post("/api/v1/cases", json=back, headers=headers), 409, "status_regression"
    )
    after = await case_row(db, done["case_no"])
    assert (after.status, after.staff_id, after.applicant_name, after.updated_at) == snapshot


INVALID = [
    ({"status": "completed", "completed_at": None}, None),
    ({"status": "accepted", "accepted_at": None, "completed_at": None}, None),
    ({"completed_at": iso(now() - timedelta(days=3))}, None),  # before acceptance
    ({"received_at": iso(now())}, None),  # received after acceptance
    ({"accepted_at": "2026-01-01T09:00:00"}, "accepted_at"),  # no offset
    ({"accepted_at": "0001-01-01T00:00:00+08:00"}, "accepted_at"),
    ({"status": "closed"}, "status"),
    ({"mode": "fax"}, "mode"),
    ({"case_type": "forever"}, "case_type"),
    ({"case_no": ""}, "case_no"),
    ({"case_no": "A/B"}, "case_no"),
    ({"case_no": "X" * 51}, "case_no"),
    ({"applicant": {"type": "alien"}}, "applicant.type"),
    ({"applicant": {"cert_no": "12"}}, "applicant.cert_no"),
    ({"applicant": {"phone": "call me"}}, "applicant.phone"),
    ({"applicant": {"name": "张三", "age": 30}}, "applicant.age"),
    ({"priority": "high"}, "priority"),
]


async def test_invalid_cases_are_422_and_not_stored(client, db, world):
    before = await table_counts(db)
    for change, field in INVALID:
        r = await client.post(
            "/api/v1/cases", json={**CasePayloadFactory(), **change}, headers=key_headers(world)
        )
        err = assert_error(r, 422, "invalid_input")
        assert err["details"][0]["field"] == field, (change, err)
    assert await table_counts(db) == before


async def test_unknown_references_are_refused(client, db, world):
    before = await table_counts(db)
    for change, status, code in [
        ({"item_code": "NOPE"}, 404, "item_not_found"),
        ({"org_code": "NOPE"}, 404, "org_not_found"),
        ({"window_code": "NOPE"}, 404, "org_not_found"),
        ({"staff_no": "NOPE"}, 404, "staff_not_found"),
        ({"window_code": "HALL-A"}, 422, "not_a_window"),
    ]:
        r = await client.post(
            "/api/v1/cases", json=CasePayloadFactory(**change), headers=key_headers(world)
        )
        assert_error(r, status, code)
    assert await table_counts(db) == before


async def test_cases_outside_the_callers_subtree_are_403(client, db, world):
    headers = key_headers(world, "hall_a_pad")
    before = await table_counts(db)
    assert_error(
        await client.post(
            "/api/v1/cases",
            json=CasePayloadFactory(
                org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
            ),
            headers=headers,
        ),
        403,
        "out_of_scope",
    )
    assert_error(
        await client.post(
            "/api/v1/cases", json=CasePayloadFactory(window_code="W-B1"), headers=headers
        ),
        403,
        "out_of_scope",
    )
    # Nor may hall A attribute its cases (and so their ratings) to hall B's staff.
    assert_error(
        await client.post(
            "/api/v1/cases", json=CasePayloadFactory(staff_no="S-B1"), headers=headers
        ),
        403,
        "out_of_scope",
    )
    assert await table_counts(db) == before
    # A case of hall B cannot be pulled into hall A by re-posting it.
    theirs = CasePayloadFactory(
        org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    assert (
        await client.post("/api/v1/cases", json=theirs, headers=key_headers(world, "hall_b"))
    ).status_code == 201
    r = await client.post(
        "/api/v1/cases",
        json={**theirs, "org_code": "HALL-A", "window_code": "W-A1"},
        headers=headers,
    )
    assert_error(r, 403, "out_of_scope")
    assert_error(
        await client.get(f"/api/v1/cases/{theirs['case_no']}", headers=headers), 403, "out_of_scope"
    )
    assert (
        await client.get(f"/api/v1/cases/{theirs['case_no']}", headers=key_headers(world))
    ).status_code == 200


async def test_unknown_case_is_404(client, world):
    err = assert_error(
        await client.get("/api/v1/cases/HZ-NOPE", headers=key_headers(world)), 404, "case_not_found"
    )
    assert err["details"] == [{"field": "case_no", "value": "HZ-NOPE"}]


async def test_people_who_do_not_handle_cases_may_not_push_them(client, db, world):
    headers = await bearer_headers(client, world.users["assessor"])
    r = await client.post("/api/v1/cases", json=CasePayloadFactory(), headers=headers)
    assert_error(r, 403, "role_forbidden")


async def test_a_unit_user_pushes_cases_of_its_own_hall(client, world):
    headers = await bearer_headers(client, world.users["unit_a"])
    assert (
        await client.post("/api/v1/cases", json=CasePayloadFactory(), headers=headers)
    ).status_code == 201
    assert_error(
        await client.post(
            "/api/v1/cases",
            json=CasePayloadFactory(
                org_code="HALL-B", window_code=None, staff_no=None, item_code="ITEM-B1"
            ),
            headers=headers,
        ),
        403,
        "out_of_scope",
    )


async def test_a_case_may_not_name_another_regions_item(client, db, world):
    """Every code in the case is checked against the caller's subtree: the item too."""
    before = await table_counts(db)
    mine = {"org_code": "HALL-A", "window_code": "W-A1", "staff_no": "S-A1"}
    for headers in (
        key_headers(world, "hall_a_pad"),
        await bearer_headers(client, world.users["unit_a"]),
    ):
        r = await client.post(
            "/api/v1/cases", json=CasePayloadFactory(**mine, item_code="ITEM-B1"), headers=headers
        )
        assert_error(r, 403, "out_of_scope")
    assert await table_counts(db) == before
    # Nor may an existing case of hall A be moved onto hall B's item by re-posting it.
    ours = CasePayloadFactory(**mine, item_code="ITEM-A1")
    headers = key_headers(world, "hall_a_pad")
    assert (await client.post("/api/v1/cases", json=ours, headers=headers)).status_code == 201
    r = await client.post("/api/v1/cases", json={**ours, "item_code": "ITEM-B1"}, headers=headers)
    assert_error(r, 403, "out_of_scope")
    row = await case_row(db, ours["case_no"])
    assert (await db.get(Item, row.item_id)).code == "ITEM-A1"
    # The office above both halls may name either.
    assert (
        await client.post(
            "/api/v1/cases",
            json=CasePayloadFactory(**mine, item_code="ITEM-B1"),
            headers=key_headers(world),
        )
    ).status_code == 201
