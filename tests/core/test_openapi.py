"""The OpenAPI document declares the error answers routes give (issue 8), and times in query
strings are ISO 8601 with an offset."""

from __future__ import annotations

import pytest

from tests import factories


def _op(app, method: str, path: str) -> dict:
    return app.openapi()["paths"][path][method]


def _codes(op: dict, status: int) -> list[str]:
    return op["responses"][str(status)]["x-error-codes"]


async def test_a_refused_cursor_is_an_answer_the_document_declares(app, client, world):
    response = await client.get(
        "/api/v1/evaluations", params={"cursor": "not-ours"}, headers=factories.key_headers(world)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
    op = _op(app, "get", "/api/v1/evaluations")
    assert "invalid_cursor" in _codes(op, 400)
    assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


async def test_a_business_answer_named_on_the_route_is_declared_with_its_code(app, client, world):
    response = await client.post(
        "/api/v1/staff",
        headers=factories.key_headers(world),
        json={"staff_no": "S-X", "name": "张三", "org_code": "NOPE"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"
    assert "org_not_found" in _codes(_op(app, "post", "/api/v1/staff"), 404)


async def test_answers_follow_from_the_route_shape(app):
    post = _op(app, "post", "/api/v1/evaluations")
    assert {"400", "401", "403", "409", "413", "422", "503"} <= set(post["responses"])
    assert "invalid_api_key" in _codes(post, 401)
    assert "payload_too_large" in _codes(post, 413)
    token = _op(app, "post", "/api/v1/auth/token")
    assert "rate_limited" in _codes(token, 429)  # a rate-limit dependency
    assert "invalid_credentials" in _codes(token, 401)  # named on the route
    public = _op(app, "get", "/api/v1/ledger/blocks/{height}")
    assert "401" not in public["responses"]  # no sign-in, no 401
    assert {"404", "422", "503"} <= set(public["responses"])


async def test_every_error_answer_has_the_error_body_and_fastapis_shape_is_gone(app):
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            errors = {k: v for k, v in op["responses"].items() if k[0] in "45"}
            assert errors, f"{method} {path} declares no error answer"
            for status, answer in errors.items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


@pytest.mark.parametrize(
    "path,param",
    [
        ("/api/v1/evaluations", "until"),
        ("/api/v1/evaluations", "since"),
        ("/api/v1/stats/summary", "until"),
        ("/api/v1/work-orders", "due_before"),
    ],
)
@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-01-01T09:00:00"])
async def test_a_time_in_a_query_is_iso_8601_with_an_offset(client, world, path, param, value):
    headers = await factories.bearer_headers(client, world.users["admin"])
    response = await client.get(path, params={param: value}, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid_input"
    assert body["details"][0]["field"] == param
    ok = await client.get(path, params={param: "2026-01-01T09:00:00+08:00"}, headers=headers)
    assert ok.status_code == 200, ok.text


async def test_a_number_is_not_a_time_in_a_body_either(client, world):
    payload = factories.CasePayloadFactory(accepted_at=1_700_000_000)
    response = await client.post(
        "/api/v1/cases", json=payload, headers=factories.key_headers(world)
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "accepted_at"


async def test_the_served_document_is_the_declared_one(client):
    document = (await client.get("/openapi.json")).json()
    assert "ErrorBody" in document["components"]["schemas"]
    assert "invalid_cursor" in _codes(document["paths"]["/api/v1/work-orders"]["get"], 400)
