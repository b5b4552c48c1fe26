"""12345 hotline ratings: the agent's system posts a phone rating with the call's id; the id
is stored, answered and shown in the console, and refused on any other channel."""

from __future__ import annotations

from haochaping.evaluations.models import Evaluation
from tests.factories import assert_error, key_headers, make_case, table_counts
from tests.pages.helpers import sign_in


def post(client, world, body, key="all"):
    return client.post("/api/v1/evaluations", json=body, headers=key_headers(world, key))


def phone_rating(case_no: str, **extra) -> dict:
    return {"case_no": case_no, "channel": "phone", "level": 4, "reasons": [], **extra}


async def test_a_hotline_rating_keeps_its_call_id(client, db, world, case):
    r = await post(client, world, phone_rating(case["case_no"], call_id="12345-20261206-0042"))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["channel"] == "phone" and got["call_id"] == "12345-20261206-0042"
    row = await db.get(Evaluation, got["id"])
    assert row.call_id == "12345-20261206-0042" and row.channel == "phone"
    # Read back through the API, the id is there too.
    r = await client.get(f"/api/v1/evaluations/{got['id']}", headers=key_headers(world))
    assert r.status_code == 200 and r.json()["call_id"] == "12345-20261206-0042"


async def test_a_phone_rating_without_call_id_is_still_taken(client, db, world, case):
    r = await post(client, world, phone_rating(case["case_no"]))
    assert r.status_code == 201, r.text
    assert r.json()["call_id"] is None


async def test_call_id_on_another_channel_is_refused_and_nothing_stored(client, db, world, case):
    before = await table_counts(db)
    body = {"case_no": case["case_no"], "channel": "pad", "level": 5, "call_id": "C-1"}
    err = assert_error(await post(client, world, body), 422, "call_id_not_allowed")
    assert err["details"][0]["field"] == "call_id"
    assert "12345" in err["message"]
    assert await table_counts(db) == before


async def test_call_id_is_bounded_in_length_and_characters(client, db, world, case):
    before = await table_counts(db)
    for bad in ("x" * 65, "", "呼叫 1", "id;drop", 42):
        err = assert_error(
            await post(client, world, phone_rating(case["case_no"], call_id=bad)),
            422,
            "invalid_input",
        )
        assert err["details"][0]["field"] == "call_id", (bad, err)
    assert await table_counts(db) == before
    r = await post(client, world, phone_rating(case["case_no"], call_id="A" * 64))
    assert r.status_code == 201, r.text


async def test_a_client_without_the_phone_channel_cannot_post_hotline_ratings(
    client, db, world, case
):
    before = await table_counts(db)
    r = await post(client, world, phone_rating(case["case_no"], call_id="C-2"), key="hall_a_pad")
    assert_error(r, 403, "channel_out_of_scope")
    assert await table_counts(db) == before


async def test_batch_items_are_checked_one_by_one(client, db, world, case):
    other = await make_case(db, world)
    items = [
        phone_rating(case["case_no"], call_id="C-3"),
        {"case_no": other["case_no"], "channel": "pad", "level": 5, "call_id": "C-4"},
    ]
    r = await client.post(
        "/api/v1/evaluations/batch", json={"items": items}, headers=key_headers(world)
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["items"]
    assert first["status"] == 201 and first["evaluation"]["call_id"] == "C-3"
    assert second["status"] == 422 and second["error"]["code"] == "call_id_not_allowed"


async def test_the_console_shows_the_call_id(client, db, world, case):
    r = await post(client, world, phone_rating(case["case_no"], call_id="HOTLINE-777"))
    assert r.status_code == 201, r.text
    await sign_in(client, world.users["office"])
    page = await client.get("/console/evaluations", params={"channel": "phone"})
    assert page.status_code == 200
    assert "来电编号" in page.text and "HOTLINE-777" in page.text
