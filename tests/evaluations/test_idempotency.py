"""`Idempotency-Key`: a retry returns the first answer and creates nothing; keys are private."""

from __future__ import annotations

from sqlalchemy import func, select

from haochaping.cases.models import Case
from haochaping.core.models import IdempotencyRecord
from haochaping.evaluations.models import Evaluation
from tests.factories import (
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    table_counts,
)


def rate(client, headers, body, key=None):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/api/v1/evaluations", json=body, headers={**headers, **extra})


async def count(db, *where) -> int:
    return (
        await db.execute(select(func.count()).select_from(Evaluation).where(*where))
    ).scalar_one()


async def test_a_retry_replays_the_first_answer(client, db, world, case):
    headers = key_headers(world, "hall_a_pad")
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    first = await rate(client, headers, body, key="pad-7-000123")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = await table_counts(db)
    for _ in range(3):
        again = await rate(client, headers, body, key="pad-7-000123")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
    assert await table_counts(db) == before
    assert await count(db, Evaluation.id == first.json()["id"]) == 1


async def test_a_retry_of_a_general_comment_creates_nothing(client, db, world):
    """Unlike case-bound ratings, a `review` has no natural key: only the header stops a copy."""
    body = {"channel": "review", "org_code": "HALL-A", "level": 5, "comment": "大厅很整洁"}
    first = await rate(client, key_headers(world), body, key="survey-2026-0001")
    assert first.status_code == 201
    again = await rate(client, key_headers(world), body, key="survey-2026-0001")
    assert (again.status_code, again.json()) == (201, first.json())
    assert await count(db, Evaluation.comment == "大厅很整洁") == 1
    # Without the header the same comment is a second comment.
    assert (await rate(client, key_headers(world), body)).status_code == 201
    assert await count(db, Evaluation.comment == "大厅很整洁") == 2


async def test_the_same_key_with_another_body_is_422(client, db, world, case):
    headers = key_headers(world)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    assert (await rate(client, headers, body, key="k-1")).status_code == 201
    before = await table_counts(db)
    err = assert_error(
        await rate(client, headers, {**body, "level": 4, "reasons": []}, key="k-1"),
        422,
        "idempotency_key_reused",
    )
    assert err["details"] == [{"field": "Idempotency-Key"}]
    assert await table_counts(db) == before


async def test_whitespace_alone_does_not_make_another_body(client, db, world, case):
    headers = key_headers(world)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    first = await rate(client, headers, body, key="k-2")
    again = await rate(client, headers, {**body, "comment": f"  {body['comment']} "}, key="k-2")
    assert (again.status_code, again.json()) == (201, first.json())


async def test_keys_belong_to_their_caller(client, db, world):
    body = {"channel": "review", "org_code": "HALL-B", "level": 4, "comment": "排队有序"}
    ids = set()
    for headers in (
        key_headers(world),
        key_headers(world, "hall_b"),
        await bearer_headers(client, world.users["assessor"]),
    ):
        r = await rate(client, headers, body, key="shared-key")
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
        ids.add(r.json()["id"])
    assert len(ids) == 3 and await count(db, Evaluation.comment == "排队有序") == 3
    owners = (
        await db.execute(
            select(IdempotencyRecord.owner).where(IdempotencyRecord.key == "shared-key")
        )
    ).scalars()
    assert len(set(owners)) == 3


async def test_a_refusal_is_not_replayed_as_success(client, db, world, case):
    headers = key_headers(world)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    assert (await rate(client, headers, body)).status_code == 201
    for _ in range(2):
        assert_error(
            await rate(client, headers, body, key="late-retry"), 409, "duplicate_evaluation"
        )
    # Only this case's ratings: the suite's database holds rows other tests committed.
    assert (
        await count(
            db,
            Evaluation.case_id
            == select(Case.id).where(Case.case_no == case["case_no"]).scalar_subquery(),
        )
        == 1
    )


async def test_invalid_keys_are_422(client, db, world, case):
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    before = await table_counts(db)
    for key in ("", "k" * 201, "tab\tkey"):
        assert_error(
            await rate(client, key_headers(world), body, key=key), 422, "invalid_idempotency_key"
        )
    assert await table_counts(db) == before
    assert (await rate(client, key_headers(world), body, key="k" * 200)).status_code == 201
