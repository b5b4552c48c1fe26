"""Every refusal has the contract's error body, the right 4xx, and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from haochaping.core.schemas import encode_cursor
from tests.factories import (
    EvaluationPayloadFactory,
    assert_error,
    key_headers,
    make_case,
    table_counts,
)

JSON = {"content-type": "application/json"}


@pytest.fixture
async def case(db, world):
    return await make_case(db, world)


async def test_unknown_route_and_method_answer_with_the_error_body(client, world):
    assert_error(
        await client.get("/api/v1/nothing-here", headers=key_headers(world)), 404, "not_found"
    )
    assert_error(
        await client.delete("/api/v1/evaluations/1", headers=key_headers(world)),
        405,
        "method_not_allowed",
    )


async def test_malformed_json_is_400_and_stores_nothing(client, db, world, case):
    before = await table_counts(db)
    for raw in [
        b'{"case_no": "X", "level": ',  # cut off
        b"{'level': 5}",  # not JSON quotes
        b'{"level": 5,}',
        b"\x00\x01\x02",
    ]:
        for route in (
            "/api/v1/evaluations",
            "/api/v1/evaluations/batch",
            "/api/v1/cases",
            "/api/v1/orgs",
        ):
            r = await client.post(route, content=raw, headers={**key_headers(world), **JSON})
            assert_error(r, 400, "malformed_json")
    assert await table_counts(db) == before


async def test_non_utf8_body_is_400_with_a_chinese_message(client, db, world, case):
    before = await table_counts(db)
    for raw in [b'{"comment": "\xff\xfe\xfd"}', '{"comment": "办事很快"}'.encode("gbk")]:
        r = await client.post(
            "/api/v1/evaluations", content=raw, headers={**key_headers(world), **JSON}
        )
        err = assert_error(r, 400)
        assert err["code"].startswith("malformed")
    assert await table_counts(db) == before


async def test_a_body_that_is_not_an_object_is_422(client, db, world):
    before = await table_counts(db)
    for raw in [b"null", b"[]", b'[{"level": 5}]', b'"text"', b"5", b"true"]:
        r = await client.post(
            "/api/v1/evaluations", content=raw, headers={**key_headers(world), **JSON}
        )
        assert_error(r, 422, "invalid_input")
    assert await table_counts(db) == before


async def test_json_sent_as_text_plain_is_refused_not_stored(client, db, world, case):
    before = await table_counts(db)
    body = json.dumps(EvaluationPayloadFactory(case_no=case["case_no"]))
    r = await client.post(
        "/api/v1/evaluations",
        content=body,
        headers={**key_headers(world), "content-type": "text/plain"},
    )
    assert_error(r, 422)
    assert await table_counts(db) == before


async def test_empty_body_is_422(client, db, world):
    r = await client.post(
        "/api/v1/evaluations", content=b"", headers={**key_headers(world), **JSON}
    )
    assert_error(r, 422, "invalid_input")


async def test_wrong_types_name_each_offending_field(client, db, world, case):
    before = await table_counts(db)
    body = {
        **EvaluationPayloadFactory(case_no=case["case_no"]),
        "level": "5",
        "reasons": "517",
        "anonymous": "no",
        "rater": [],
    }
    err = assert_error(
        await client.post("/api/v1/evaluations", json=body, headers=key_headers(world)),
        422,
        "invalid_input",
    )
    fields = {d["field"] for d in err["details"]}
    assert {"level", "reasons", "anonymous", "rater"} <= fields
    assert all(d["message"] and not d["message"].startswith("Input") for d in err["details"])
    assert "另有" in err["message"]  # one sentence that says there is more than one problem
    assert await table_counts(db) == before


async def test_unknown_fields_are_refused_by_name(client, db, world, case):
    before = await table_counts(db)
    body = {
        **EvaluationPayloadFactory(case_no=case["case_no"]),
        "score": 100,
        "rater": {"name": "张三", "vip": True},
    }
    err = assert_error(
        await client.post("/api/v1/evaluations", json=body, headers=key_headers(world)),
        422,
        "invalid_input",
    )
    assert {(d["field"], d["type"]) for d in err["details"]} == {
        ("score", "extra_forbidden"),
        ("rater.vip", "extra_forbidden"),
    }
    assert await table_counts(db) == before


async def test_nul_characters_in_text_are_refused_on_every_database(client, db, world, case):
    before = await table_counts(db)
    for change, field in [
        ({"comment": "a\x00b"}, "comment"),
        ({"comment": "\x00"}, "comment"),
        ({"rater": {"name": "张\x00三"}}, "rater.name"),
        ({"device_id": "pad\x00"}, "device_id"),
    ]:
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), **change}
        err = assert_error(
            await client.post("/api/v1/evaluations", json=body, headers=key_headers(world)),
            422,
            "invalid_input",
        )
        assert err["details"][0]["field"] == field
    r = await client.post(
        "/api/v1/orgs",
        headers=key_headers(world),
        json={
            "code": "W-NUL",
            "name": "窗口\x00",
            "kind": "window",
            "parent_code": "HALL-A",
            "region_code": "330102",
        },
    )
    assert_error(r, 422, "invalid_input")
    assert await table_counts(db) == before


async def test_lone_surrogates_in_text_are_refused(client, db, world, case):
    before = await table_counts(db)
    body = json.dumps(
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "comment": "\ud800好"}
    ).encode()
    r = await client.post(
        "/api/v1/evaluations", content=body, headers={**key_headers(world), **JSON}
    )
    assert_error(r, 422, "invalid_input")
    assert await table_counts(db) == before


NUL_ADDRESSES = [
    "/api/v1/orgs?q=%00",
    "/api/v1/cases/A%00B",
    "/api/v1/orgs/A%00B",
    "/api/v1/staff?org_code=%00",
    "/api/v1/evaluations?case_no=%00",
]


async def test_nul_characters_in_the_address_never_crash(client, settings, world):
    for path in NUL_ADDRESSES:
        r = await client.get(path, headers=key_headers(world))
        # SQLite compares the text as given (nothing matches); PostgreSQL refuses U+0000.
        assert r.status_code in (200, 404, 422), (path, r.text)
        if r.status_code != 200:
            assert_error(r, r.status_code)
        if not settings.is_sqlite:
            assert_error(r, 422, "invalid_value")


async def test_an_unexpected_failure_is_a_500_with_the_error_body(app, world, monkeypatch):
    from haochaping.orgs import service as org_service

    async def broken(**_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(org_service, "get_region", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/api/v1/regions/330000", headers=key_headers(world))
    err = assert_error(r, 500, "internal_error")
    assert "disk on fire" not in r.text  # no internals leak to the caller
    assert err["details"] == []


async def test_timestamps_at_the_edge_of_the_calendar_are_422(client, db, world, case):
    before = await table_counts(db)
    for value in [
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:59:59-08:00",
        "1899-12-31T23:00:00+00:00",
        "3000-01-01T00:00:00+00:00",
    ]:
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "evaluated_at": value}
        err = assert_error(
            await client.post("/api/v1/evaluations", json=body, headers=key_headers(world)),
            422,
            "invalid_input",
        )
        assert err["details"][0]["field"] == "evaluated_at"
        assert "年之间" in err["message"]
        for param in ("since", "until"):
            r = await client.get(
                "/api/v1/evaluations", params={param: value}, headers=key_headers(world)
            )
            assert_error(r, 422, "invalid_input")
    assert await table_counts(db) == before


async def test_ids_that_cannot_exist_are_a_4xx(client, world):
    for path in [
        "/api/v1/evaluations/99999999999999999999999",
        "/api/v1/evaluations/9223372036854775808",
        "/api/v1/evaluations/0",
        "/api/v1/evaluations/-1",
        "/api/v1/evaluations/abc",
        "/api/v1/evaluations/1.5",
    ]:
        r = await client.get(path, headers=key_headers(world))
        assert r.status_code in (404, 422), (path, r.text)
        assert_error(r, r.status_code)
    # The largest id a BIGINT can hold is merely unknown.
    assert_error(
        await client.get("/api/v1/evaluations/9223372036854775807", headers=key_headers(world)),
        404,
        "evaluation_not_found",
    )


FORGED_CURSORS = [
    "not-a-cursor!",
    encode_cursor(10**30),
    encode_cursor("²"),
    encode_cursor("-5"),
    encode_cursor("١٢٣"),
    encode_cursor("9" * 5000),
    "a",
    "YQ",
    "%%%",
]


async def test_forged_cursors_are_400(client, world):
    for route in ["/api/v1/evaluations", "/api/v1/orgs", "/api/v1/staff", "/api/v1/items"]:
        for cursor in FORGED_CURSORS:
            r = await client.get(route, params={"cursor": cursor}, headers=key_headers(world))
            assert_error(r, 400, "invalid_cursor")
    # Region cursors are codes (strings); a cursor we never made is still refused.
    for cursor in ["a", "YQ", "not-a-cursor!"]:
        r = await client.get(
            "/api/v1/regions", params={"cursor": cursor}, headers=key_headers(world)
        )
        assert_error(r, 400, "invalid_cursor")


async def test_bad_list_filters_are_422(client, world):
    for params in [
        {"limit": 0},
        {"limit": 501},
        {"limit": "x"},
        {"level": 0},
        {"level": 6},
        {"level": "5.5"},
        {"channel": "fax"},
        {"since": "yesterday"},
        {"until": "2026-01-01T00:00:00"},
    ]:
        r = await client.get("/api/v1/evaluations", params=params, headers=key_headers(world))
        assert_error(r, 422, "invalid_input")
