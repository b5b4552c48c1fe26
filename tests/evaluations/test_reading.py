"""GET /api/v1/evaluations (filters, cursor pages, scope, masking) and GET .../{id}."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from haochaping.accounts import service as account_service
from tests.factories import (
    EvaluationPayloadFactory,
    OrgPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    make_case,
)


async def listing(client, headers, **params) -> list[dict]:
    """Every page of a listing, following next_cursor; checks page size and envelope."""
    items, cursor = [], None
    for _ in range(100):
        r = await client.get(
            "/api/v1/evaluations",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= params.get("limit", 50)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("cursor never ended")


@pytest.fixture
async def rated(client, db, world):
    """Six ratings: four at hall A (pad, levels 5..2), one at hall B, one review of W-A2."""
    out = {}
    for level, reasons, comment in [
        (5, ["517"], "很好"),
        (4, [], None),
        (3, [], None),
        (2, ["213"], "窗口人员不熟悉业务，电话13812345678"),
    ]:
        case = await make_case(db, world)
        r = await client.post(
            "/api/v1/evaluations",
            headers=key_headers(world, "hall_a_pad"),
            json={
                "case_no": case["case_no"],
                "channel": "pad",
                "level": level,
                "reasons": reasons,
                "comment": comment,
            },
        )
        assert r.status_code == 201, r.text
        out[f"a{level}"] = r.json()
    case_b = await make_case(
        db, world, org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world, "hall_b"),
        json={
            **EvaluationPayloadFactory(case_no=case_b["case_no"]),
            "channel": "sms",
            "anonymous": True,
        },
    )
    out["b"] = r.json()
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json={"channel": "review", "org_code": "W-A2", "level": 4},
    )
    out["review"] = r.json()
    return out


def ids(items) -> list[int]:
    return [i["id"] for i in items]


async def test_list_is_newest_first_and_pages_by_cursor(client, world, rated):
    everything = await listing(client, key_headers(world), limit=2)
    assert len(everything) == 6
    assert ids(everything) == sorted(ids(everything), reverse=True)
    assert ids(everything) == ids(await listing(client, key_headers(world)))


async def test_list_filters(client, world, rated):
    headers = key_headers(world)
    case_no = rated["a5"]["case_no"]
    assert ids(await listing(client, headers, case_no=case_no)) == [rated["a5"]["id"]]
    hall_a = await listing(client, headers, org_code="HALL-A")
    assert set(ids(hall_a)) == {rated[k]["id"] for k in ("a5", "a4", "a3", "a2", "review")}
    assert ids(await listing(client, headers, org_code="W-A2")) == [rated["review"]["id"]]
    assert await listing(client, headers, org_code="NOPE") == []
    assert ids(await listing(client, headers, item_code="ITEM-B1")) == [rated["b"]["id"]]
    assert ids(await listing(client, headers, level=2)) == [rated["a2"]["id"]]
    assert set(ids(await listing(client, headers, channel="pad"))) == {
        rated[k]["id"] for k in ("a5", "a4", "a3", "a2")
    }
    assert ids(await listing(client, headers, channel="review")) == [rated["review"]["id"]]
    received = datetime.fromisoformat(rated["a3"]["received_at"])
    since = await listing(client, headers, since=received.isoformat())
    until = await listing(client, headers, until=received.isoformat())
    assert rated["a3"]["id"] in ids(since) and rated["a3"]["id"] not in ids(until)
    assert set(ids(since)) | set(ids(until)) == set(ids(await listing(client, headers)))
    future = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    assert await listing(client, headers, since=future) == []


async def test_list_shows_only_the_callers_subtree(client, world, rated):
    hall_a = await listing(client, key_headers(world, "hall_a_pad"))
    assert set(ids(hall_a)) == {rated[k]["id"] for k in ("a5", "a4", "a3", "a2", "review")}
    hall_b = await listing(client, key_headers(world, "hall_b"))
    assert ids(hall_b) == [rated["b"]["id"]]
    unit_b = await listing(client, await bearer_headers(client, world.users["unit_b"]))
    assert ids(unit_b) == [rated["b"]["id"]]
    # Asking for another subtree by filter shows nothing, not an error.
    assert await listing(client, key_headers(world, "hall_b"), org_code="HALL-A") == []


async def test_reads_mask_personal_data_everywhere(client, world, rated):
    for r in (
        await client.get("/api/v1/evaluations", headers=key_headers(world)),
        await client.get(f"/api/v1/evaluations/{rated['a5']['id']}", headers=key_headers(world)),
    ):
        assert r.status_code == 200
        assert "330102199001" not in r.text  # applicants' ID numbers (factory prefix)
        assert "13812345678" not in r.text  # a phone number typed into a comment
    listed = {i["id"]: i for i in await listing(client, key_headers(world))}
    assert listed[rated["a5"]["id"]]["rater"]["name"] == "张*"
    assert listed[rated["b"]["id"]]["rater"] is None  # anonymous
    assert "138****5678" in listed[rated["a2"]["id"]]["comment"]


async def test_get_one_answers_like_the_post_did(client, world, rated):
    r = await client.get(f"/api/v1/evaluations/{rated['a2']['id']}", headers=key_headers(world))
    assert r.status_code == 200
    got, posted = r.json(), rated["a2"]
    for when in ("evaluated_at", "received_at"):  # the same instant ("Z" or "+00:00")
        assert datetime.fromisoformat(got.pop(when)) == datetime.fromisoformat(posted.pop(when))
    assert got == posted


async def test_get_one_outside_scope_or_unknown_is_404(client, world, rated):
    headers = key_headers(world, "hall_b")
    err = assert_error(
        await client.get(f"/api/v1/evaluations/{rated['a5']['id']}", headers=headers),
        404,
        "evaluation_not_found",
    )
    assert "权限范围" in err["message"]
    assert_error(
        await client.get("/api/v1/evaluations/987654321", headers=headers),
        404,
        "evaluation_not_found",
    )


async def test_no_route_changes_or_deletes_a_rating(client, world, rated):
    path = f"/api/v1/evaluations/{rated['a5']['id']}"
    for method in ("PUT", "PATCH", "DELETE"):
        r = await client.request(method, path, json={"level": 1}, headers=key_headers(world))
        assert_error(r, 405, "method_not_allowed")
    assert (await client.get(path, headers=key_headers(world))).json()["level"] == 5


async def test_org_filter_is_a_true_subtree(client, db, world):
    """`org_code=X_1` must not match `XY1` (LIKE would read "_" as any character)."""
    headers = key_headers(world)
    for code in ("X_1", "XY1"):
        await client.post(
            "/api/v1/orgs",
            headers=headers,
            json=OrgPayloadFactory(code=code, kind="hall", parent_code="OFFICE"),
        )
    got = {}
    for code in ("X_1", "XY1"):
        r = await client.post(
            "/api/v1/evaluations",
            headers=headers,
            json={"channel": "review", "org_code": code, "level": 5},
        )
        got[code] = r.json()["id"]
    assert ids(await listing(client, headers, org_code="X_1")) == [got["X_1"]]
    _, key = await account_service.create_client(
        db=db, name="x1", org_code="X_1", channels=["review"]
    )
    await db.commit()
    assert ids(await listing(client, {"X-Api-Key": key})) == [got["X_1"]]
