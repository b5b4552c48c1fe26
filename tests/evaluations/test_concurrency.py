"""Races with real commits: concurrent retries and duplicates store exactly one rating.

These tests use the `live` app (its own committing engine and a world with unique codes), so
twenty requests really run side by side against SQLite's single writer or PostgreSQL's rows.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from haochaping.cases.models import Case
from haochaping.core.errors import Conflict
from haochaping.core.models import IdempotencyRecord
from haochaping.evaluations import invitations
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.models import Evaluation, Invitation
from tests.conftest import TEST_SECRET
from tests.factories import CasePayloadFactory, EvaluationPayloadFactory, make_case

RACERS = 20


async def stored_for_case(live, case_no: str) -> list[Evaluation]:
    async with live.sessionmaker() as db:
        return list(
            (
                await db.execute(
                    select(Evaluation)
                    .join(Case, Case.id == Evaluation.case_id)
                    .where(Case.case_no == case_no)
                )
            ).scalars()
        )


async def new_case(live) -> dict:
    async with live.sessionmaker() as db:
        return await make_case(db, live.world)


async def test_the_service_answers_health_checks(live):
    r = await live.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_concurrent_retries_with_one_key_store_one_rating(live):
    case = await new_case(live)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    headers = {"X-Api-Key": live.world.keys["hall_a_pad"], "Idempotency-Key": "retry-storm-1"}
    answers = await asyncio.gather(
        *[
            live.client.post("/api/v1/evaluations", json=body, headers=headers)
            for _ in range(RACERS)
        ]
    )
    assert [a.status_code for a in answers] == [201] * RACERS, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert all(b == bodies[0] for b in bodies)
    replayed = [a for a in answers if a.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == RACERS - 1
    rows = await stored_for_case(live, case["case_no"])
    assert [r.id for r in rows] == [bodies[0]["id"]]
    async with live.sessionmaker() as db:
        records = (
            await db.execute(
                select(func.count())
                .select_from(IdempotencyRecord)
                .where(IdempotencyRecord.key == "retry-storm-1")
            )
        ).scalar_one()
    assert records == 1


async def test_concurrent_retries_of_a_general_comment_store_one(live):
    """`review` ratings have no natural key: only the Idempotency-Key keeps them single."""
    body = {
        "channel": "review",
        "org_code": live.code("HALL-A"),
        "level": 4,
        "reasons": [],
        "comment": "大厅环境整洁",
    }
    headers = {"X-Api-Key": live.world.keys["all"], "Idempotency-Key": "review-storm"}
    answers = await asyncio.gather(
        *[
            live.client.post("/api/v1/evaluations", json=body, headers=headers)
            for _ in range(RACERS)
        ]
    )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    async with live.sessionmaker() as db:
        count = (
            await db.execute(
                select(func.count())
                .select_from(Evaluation)
                .where(Evaluation.comment == "大厅环境整洁", Evaluation.id.in_(ids))
            )
        ).scalar_one()
        others = (
            await db.execute(
                select(func.count())
                .select_from(Evaluation)
                .where(Evaluation.comment == "大厅环境整洁", Evaluation.id.not_in(ids))
            )
        ).scalar_one()
    assert (count, others) == (1, 0)


async def test_concurrent_duplicates_without_a_key_are_one_201_and_409s(live):
    case = await new_case(live)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    answers = await asyncio.gather(
        *[
            live.client.post(
                "/api/v1/evaluations",
                json={**body, "comment": f"第{i}次提交"},
                headers={"X-Api-Key": live.world.keys["hall_a_pad"]},
            )
            for i in range(RACERS)
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * (RACERS - 1), [a.text for a in answers]
    winner = next(a.json() for a in answers if a.status_code == 201)
    for a in answers:
        if a.status_code == 409:
            err = a.json()["error"]
            assert err["code"] == "duplicate_evaluation"
            assert err["details"] == [{"id": winner["id"]}]
    assert [r.id for r in await stored_for_case(live, case["case_no"])] == [winner["id"]]


async def test_concurrent_batches_rating_the_same_cases_store_each_once(live):
    cases = [await new_case(live) for _ in range(5)]
    items = [EvaluationPayloadFactory(case_no=c["case_no"]) for c in cases]
    answers = await asyncio.gather(
        *[
            live.client.post(
                "/api/v1/evaluations/batch",
                json={"items": items},
                headers={"X-Api-Key": live.world.keys["hall_a_pad"]},
            )
            for _ in range(4)
        ]
    )
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    for i, case in enumerate(cases):
        results = [a.json()["items"][i] for a in answers]
        assert sorted(r["status"] for r in results) == [201, 409, 409, 409]
        stored = await stored_for_case(live, case["case_no"])
        assert len(stored) == 1
        assert all(r.get("id", stored[0].id) == stored[0].id for r in results)
        assert all(
            r["error"]["details"] == [{"id": stored[0].id}] for r in results if r["status"] == 409
        )


async def test_concurrent_pushes_of_a_new_case_create_it_once(live):
    payload = CasePayloadFactory(
        item_code=live.code("ITEM-A1"),
        org_code=live.code("HALL-A"),
        window_code=live.code("W-A1"),
        staff_no=live.code("S-A1"),
    )
    answers = await asyncio.gather(
        *[
            live.client.post(
                "/api/v1/cases", json=payload, headers={"X-Api-Key": live.world.keys["all"]}
            )
            for _ in range(10)
        ]
    )
    codes = [a.status_code for a in answers]
    # One creates it; the others update it (200) or lost the race and may retry (409).
    assert codes.count(201) == 1 and set(codes) <= {200, 201, 409}, [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert a.json()["error"]["code"] == "conflict"
    async with live.sessionmaker() as db:
        count = (
            await db.execute(
                select(func.count()).select_from(Case).where(Case.case_no == payload["case_no"])
            )
        ).scalar_one()
    assert count == 1


async def test_a_rating_link_used_twice_at_once_rates_once(live):
    case = await new_case(live)
    r = await live.client.post(
        f"/api/v1/cases/{case['case_no']}/invitations",
        headers={"X-Api-Key": live.world.keys["all"]},
    )
    token = r.json()["url"].rsplit("/r/", 1)[1]

    async def use(level: int):
        async with live.sessionmaker() as db:
            try:
                body = await invitations.submit_via_invitation(
                    db=db,
                    secret=TEST_SECRET,
                    token=token,
                    level=level,
                    reasons=[],
                    comment=None,
                    rules=live.app.state.rules,
                    source=evaluation_service.Source(ip="198.51.100.2"),
                )
                await db.commit()
                return body["id"]
            except Conflict as exc:
                return exc.code

    outcomes = await asyncio.gather(*[use(5 - i % 2) for i in range(6)])
    ids = [o for o in outcomes if isinstance(o, int)]
    assert len(ids) == 1, outcomes
    assert set(outcomes) - set(ids) <= {"invitation_used", "duplicate_evaluation"}
    assert [e.id for e in await stored_for_case(live, case["case_no"])] == ids
    async with live.sessionmaker() as db:
        inv = (
            await db.execute(
                select(Invitation)
                .join(Case, Case.id == Invitation.case_id)
                .where(Case.case_no == case["case_no"])
            )
        ).scalar_one()
    assert inv.used_at is not None and inv.evaluation_id == ids[0]
