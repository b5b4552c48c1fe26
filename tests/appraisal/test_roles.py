"""Who may call each appraisal route: assessors write and read, offices read, every other
role (and an API key) gets 403, nobody signed in 401."""

from __future__ import annotations

import pytest

from tests.appraisal.conftest import PDF
from tests.factories import assert_error, bearer_headers, key_headers

A = "/api/v1/appraisal"
WRITES = {"POST schemes", "POST adjustments"}
ROUTES = [
    "GET metrics",
    "POST schemes",
    "GET schemes",
    "GET scheme",
    "POST adjustments",
    "GET adjustments",
    "GET adjustment file",
    "GET scores",
    "GET scores download",
]
SCHEME = {
    "region_code": "330000",
    "year": 2026,
    "indicators": [
        {"code": "Q", "metric": "good_rate", "weight_label": "好评率"},
        {"code": "R", "metric": "bad_rate", "weight_label": "差评率"},
    ],
    "judgements": [[1, 2], ["1/2", 1]],
}
SCORES = {"region_code": "330000", "period": "2026-11", "tier": "hall"}


async def _call(client, route: str, headers: dict, ids: dict):
    if route == "GET metrics":
        return await client.get(f"{A}/metrics", headers=headers)
    if route == "POST schemes":
        return await client.post(f"{A}/schemes", json=SCHEME, headers=headers)
    if route == "GET schemes":
        return await client.get(f"{A}/schemes", headers=headers)
    if route == "GET scheme":
        return await client.get(f"{A}/schemes/{ids['scheme']}", headers=headers)
    if route == "POST adjustments":
        return await client.post(
            f"{A}/adjustments",
            data={"org_code": "HALL-A", "month": "2026-11", "points": "2", "note": "表彰"},
            files={"file": ("a.pdf", PDF, "application/pdf")},
            headers=headers,
        )
    if route == "GET adjustments":
        return await client.get(
            f"{A}/adjustments", params={"region_code": "330000"}, headers=headers
        )
    if route == "GET adjustment file":
        return await client.get(f"{A}/adjustments/{ids['adjustment']}/file", headers=headers)
    if route == "GET scores":
        return await client.get(f"{A}/scores", params=SCORES, headers=headers)
    return await client.get(f"{A}/scores/download", params=SCORES, headers=headers)


@pytest.fixture
async def ids(client, halls, assessor):
    scheme = await client.post(f"{A}/schemes", json=SCHEME, headers=assessor)
    item = await _call(client, "POST adjustments", assessor, {})
    assert scheme.status_code == 201 and item.status_code == 201, (scheme.text, item.text)
    return {"scheme": scheme.json()["id"], "adjustment": item.json()["id"]}


@pytest.mark.parametrize("route", ROUTES)
async def test_role_matrix(client, halls, ids, route):
    callers = {
        "assessor": await bearer_headers(client, halls.users["assessor"]),
        "office": await bearer_headers(client, halls.users["office"]),
        "admin": await bearer_headers(client, halls.users["admin"]),
        "unit": await bearer_headers(client, halls.users["unit_a"]),
        "staff": await bearer_headers(client, "staff_x"),
        "key": key_headers(halls),
        "nobody": {},
    }
    for who, headers in callers.items():
        r = await _call(client, route, headers, ids)
        if who == "assessor" or (who == "office" and route not in WRITES):
            assert r.status_code in (200, 201), (who, route, r.text)
        elif who == "nobody":
            assert_error(r, 401)
        else:
            err = assert_error(r, 403)
            assert err["code"] in ("role_forbidden", "user_required"), (who, route, err)


async def test_a_county_assessor_reads_only_its_own_region(client, halls, ids):
    r = await client.get(
        f"{A}/scores",
        params={**SCORES, "region_code": "330102"},
        headers=await bearer_headers(client, "assessor_a"),
    )
    assert_error(r, 404, "scheme_not_found")  # its own county: no scheme yet
    r = await client.get(
        f"{A}/scores", params=SCORES, headers=await bearer_headers(client, "assessor_a")
    )
    assert_error(r, 403, "out_of_scope")  # the province above it
    r = await client.get(
        f"{A}/schemes/{ids['scheme']}", headers=await bearer_headers(client, "assessor_a")
    )
    assert_error(r, 403, "out_of_scope")
    r = await client.get(
        f"{A}/adjustments/{ids['adjustment']}/file",
        headers=await bearer_headers(client, "assessor_a"),
    )
    assert r.status_code == 200  # HALL-A is its own organisation
