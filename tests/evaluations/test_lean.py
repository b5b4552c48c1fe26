"""The lean intake path (core/lean.py) answers exactly as the framework's routes do.

Two apps on the same database: `client` (the lean path on, as shipped) and `framework` (the
setting off, so FastAPI serves every request). The same requests must get the same status,
headers and body from both; and the lean path must really be the one answering (its counters).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from haochaping.app import create_app, startup
from haochaping.core.lean import LeanRoutes
from haochaping.evaluations.models import Evaluation
from tests.factories import (
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    make_case,
)

# What differs between two ratings of two cases given the same body (each case has its own
# applicant, whose masked identifiers the answer shows).
VOLATILE = {"id", "case_no", "evaluated_at", "received_at", "rater"}


@pytest.fixture
async def framework(settings, engine, sessionmaker) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.model_copy(update={"intake_lean": False}))
    await startup(application, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def lean_of(app) -> LeanRoutes:
    """The app's LeanRoutes middleware (the stack is built by the first request)."""
    node: Any = app.middleware_stack
    while node is not None and not isinstance(node, LeanRoutes):
        node = getattr(node, "app", None)
    assert node is not None, "LeanRoutes is not in the middleware stack"
    return node


async def warm(client, world, name: str = "all") -> None:
    """A first request caches the key in this process (until then the lean path declines)."""
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world, name),
        json=EvaluationPayloadFactory(case_no=f"NOPE-{uuid.uuid4().hex[:8]}"),
    )
    assert_error(r, 404, "case_not_found")


def without_volatile(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in VOLATILE}


async def test_a_rating_with_a_cached_key_is_served_lean_with_the_same_answer(
    client, framework, app, db, world
):
    await warm(client, world)
    lean = lean_of(app)
    a, b = await make_case(db, world), await make_case(db, world)
    headers = {**key_headers(world), "User-Agent": "pad-firmware/2.1"}
    served = lean.served
    got = await client.post(
        "/api/v1/evaluations", headers=headers, json=EvaluationPayloadFactory(case_no=a["case_no"])
    )
    assert got.status_code == 201, got.text
    assert lean.served == served + 1
    want = await framework.post(
        "/api/v1/evaluations", headers=headers, json=EvaluationPayloadFactory(case_no=b["case_no"])
    )
    assert want.status_code == 201, want.text
    assert without_volatile(got.json()) == without_volatile(want.json())
    assert got.json()["case_no"] == a["case_no"]
    assert (
        set(got.json()["rater"])
        == set(want.json()["rater"])
        == {"type", "name", "cert_no", "phone"}
    )
    for name in ("content-type", "preference-applied", "set-cookie"):
        assert got.headers.get(name) == want.headers.get(name), name
    assert int(got.headers["content-length"]) == len(got.content)
    row = (
        await db.execute(select(Evaluation).where(Evaluation.id == got.json()["id"]))
    ).scalar_one()
    assert row.user_agent == "pad-firmware/2.1" and row.source_ip == "203.0.113.7"
    assert row.client_id is not None and row.level == 5


def _bodies(case_no: str, stored_no: str) -> list[tuple[str, Any]]:
    """Refused requests (name, JSON body or raw bytes): validation, domain and key errors."""
    good = EvaluationPayloadFactory(case_no=case_no)
    return [
        ("malformed JSON", b'{"case_no": '),
        ("not UTF-8", b'{"case_no": "\xff"}'),
        ("empty body", b""),
        ("a list", []),
        ("missing channel", {k: v for k, v in good.items() if k != "channel"}),
        ("unknown field", {**good, "colour": "red"}),
        ("level out of range", {**good, "level": 9}),
        ("level as a string", {**good, "level": "5"}),
        ("level as a float", {**good, "level": 5.0}),
        ("bool as a number", {**good, "anonymous": 1}),
        ("a NUL in the comment", {**good, "comment": "a\x00b"}),
        ("time without zone", {**good, "evaluated_at": "2026-01-01T09:00:00"}),
        ("time as a number", {**good, "evaluated_at": 1700000000}),
        ("unknown case", {**good, "case_no": "NO-SUCH-CASE"}),
        ("unknown reason", {**good, "reasons": ["999"]}),
        ("reason of another level", {**good, "level": 1, "reasons": ["517"]}),
        ("bad without reason", {**good, "level": 1, "reasons": [], "comment": None}),
        ("unknown stage", {**good, "stage": "nowhere"}),
        ("case with an org code", {**good, "org_code": "HALL-A"}),
        ("call id off the phone", {**good, "call_id": "C-1"}),
        ("already rated", EvaluationPayloadFactory(case_no=stored_no)),
    ]


async def test_refusals_are_the_same_on_both_paths(client, framework, app, db, world):
    await warm(client, world)
    await warm(client, world, "hall_a_pad")
    lean = lean_of(app)
    case, stored = await make_case(db, world), await make_case(db, world)
    first = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json=EvaluationPayloadFactory(case_no=stored["case_no"]),
    )
    assert first.status_code == 201, first.text
    served, fell_back = lean.served, lean.fell_back
    requests = [
        (name, body, key_headers(world))
        for name, body in _bodies(case["case_no"], stored["case_no"])
    ]
    requests += [
        (
            "channel outside the key's",
            {**EvaluationPayloadFactory(case_no=case["case_no"]), "channel": "sms"},
            key_headers(world, "hall_a_pad"),
        ),
        (
            "unknown key",
            EvaluationPayloadFactory(case_no=case["case_no"]),
            {"X-Api-Key": "not-a-key"},
        ),
    ]
    for name, body, headers in requests:
        answers = []
        for c in (client, framework):
            if isinstance(body, bytes):
                r = await c.post(
                    "/api/v1/evaluations",
                    content=body,
                    headers={**headers, "Content-Type": "application/json"},
                )
            else:
                r = await c.post("/api/v1/evaluations", json=body, headers=headers)
            answers.append((r.status_code, r.content, r.headers.get("content-type")))
        assert answers[0] == answers[1], name
        assert answers[0][0] >= 400, (name, answers[0])
    # The domain refusals were answered on the lean path; what did not validate (and the
    # unknown key) was handed to the framework.
    assert lean.served - served == 9
    assert lean.fell_back - fell_back == 14
    dup = await client.post("/api/v1/evaluations", json=requests[-3][1], headers=requests[-3][2])
    assert assert_error(dup, 409, "duplicate_evaluation")["details"] == [{"id": first.json()["id"]}]


async def test_requests_the_lean_path_leaves_to_the_framework(client, app, db, world):
    await warm(client, world)
    lean = lean_of(app)
    served, fell_back = lean.served, lean.fell_back
    # An Idempotency-Key: the claim row is committed with the rating, by the framework's route.
    case = await make_case(db, world)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    headers = {**key_headers(world), "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    once = await client.post("/api/v1/evaluations", json=body, headers=headers)
    again = await client.post("/api/v1/evaluations", json=body, headers=headers)
    assert once.status_code == again.status_code == 201, once.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == once.json()
    # A bearer token (a person), a cookie, another content type: not the lean path's callers.
    user = await bearer_headers(client, world.users["office"])
    review = {
        "channel": "review",
        "org_code": world.code("HALL-A"),
        "level": 5,
        "reasons": ["517"],
    }
    r = await client.post("/api/v1/evaluations", json=review, headers=user)
    assert r.status_code == 201, r.text
    other = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(case_no=other["case_no"]),
        headers={**key_headers(world), "Cookie": "theme=dark"},
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/evaluations",
        content=b"{}",
        headers={**key_headers(world), "Content-Type": "text/plain"},
    )
    assert r.status_code == 422, r.text
    assert (lean.served, lean.fell_back) == (served, fell_back)


async def test_a_batch_is_served_lean_with_the_same_answer(client, framework, app, db, world):
    await warm(client, world)
    lean = lean_of(app)
    for prefer in ({}, {"Prefer": "return=minimal"}):
        answers = []
        for c in (client, framework):
            a, b = await make_case(db, world), await make_case(db, world)
            items = [
                EvaluationPayloadFactory(case_no=a["case_no"]),
                EvaluationPayloadFactory(case_no="NO-SUCH-CASE"),
                {**EvaluationPayloadFactory(case_no=b["case_no"]), "level": 9},
                EvaluationPayloadFactory(case_no=a["case_no"]),
            ]
            served = lean.served
            r = await c.post(
                "/api/v1/evaluations/batch",
                json={"items": items},
                headers={**key_headers(world), **prefer},
            )
            assert r.status_code == 200, r.text
            assert lean.served == served + (c is client)
            results = r.json()["items"]
            stored = results[0]
            assert stored["status"] == 201 and results[3]["error"]["details"] == [
                {"id": stored["id"]}
            ]
            for result in results:
                result.pop("id", None)
                if "evaluation" in result:
                    result["evaluation"] = without_volatile(result["evaluation"])
                if result.get("status") == 409:
                    result["error"]["details"] = "the first item's id"
            answers.append(
                (results, r.headers.get("content-type"), r.headers.get("preference-applied"))
            )
        assert answers[0] == answers[1], prefer
