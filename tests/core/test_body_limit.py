"""Bodies over `settings.max_body_bytes` are refused with 413 before anything is stored."""

from __future__ import annotations

import json

import httpx
import pytest

from haochaping.app import create_app, startup
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


def padded_rating(case_no: str, size: int) -> bytes:
    """A well-formed rating whose JSON is exactly `size` bytes (whitespace padding)."""
    raw = json.dumps(EvaluationPayloadFactory(case_no=case_no)).encode()
    assert len(raw) < size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_declared_length_over_the_limit_is_413(client, db, settings, world, case):
    before = await table_counts(db)
    body = padded_rating(case["case_no"], settings.max_body_bytes + 1)
    r = await client.post(
        "/api/v1/evaluations", content=body, headers={**key_headers(world), **JSON}
    )
    err = assert_error(r, 413, "payload_too_large")
    assert err["details"] == [{"limit_bytes": settings.max_body_bytes}]
    r = await client.post(
        "/api/v1/evaluations/batch", content=body, headers={**key_headers(world), **JSON}
    )
    assert_error(r, 413, "payload_too_large")
    assert await table_counts(db) == before


async def test_streamed_body_over_the_limit_is_413(client, db, settings, world, case):
    before = await table_counts(db)
    body = padded_rating(case["case_no"], settings.max_body_bytes + 10)
    r = await client.post(
        "/api/v1/evaluations", content=chunks(body), headers={**key_headers(world), **JSON}
    )
    assert "content-length" not in r.request.headers  # really sent chunked
    assert_error(r, 413, "payload_too_large")
    assert await table_counts(db) == before


async def test_a_lying_content_length_is_refused(client, db, world):
    r = await client.post(
        "/api/v1/evaluations",
        content=b"{}",
        headers={**key_headers(world), **JSON, "content-length": "abc"},
    )
    assert_error(r, 413, "payload_too_large")


async def test_a_body_at_the_limit_is_read(client, db, settings, world, case):
    body = padded_rating(case["case_no"], settings.max_body_bytes)
    r = await client.post(
        "/api/v1/evaluations", content=chunks(body), headers={**key_headers(world), **JSON}
    )
    assert r.status_code == 201, r.text


@pytest.fixture
async def small_client(settings, engine, sessionmaker):
    small = settings.model_copy(update={"max_body_bytes": 2048})
    app = create_app(small)
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_the_limit_comes_from_the_settings(small_client, db, world, case):
    before = await table_counts(db)
    r = await small_client.post(
        "/api/v1/evaluations",
        content=padded_rating(case["case_no"], 2049),
        headers={**key_headers(world), **JSON},
    )
    assert_error(r, 413, "payload_too_large")
    assert await table_counts(db) == before
    r = await small_client.post(
        "/api/v1/evaluations",
        content=padded_rating(case["case_no"], 2048),
        headers={**key_headers(world), **JSON},
    )
    assert r.status_code == 201, r.text
