"""Rating intake through POST /api/v1/evaluations: the happy path and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from haochaping.evaluations.models import Evaluation
from tests.factories import EvaluationPayloadFactory, iso, make_case, now


async def count_evaluations(db) -> int:
    return (await db.execute(select(func.count()).select_from(Evaluation))).scalar_one()


@pytest.fixture
async def case(db, world):
    return await make_case(db, world)


def post(client, key, body, **headers):
    return client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": key, **headers})


async def test_rating_is_stored_with_its_context(client, db, world, case):
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    r = await post(client, world.keys["hall_a_pad"], body,
                   **{"User-Agent": "pad-firmware/2.1"})
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["level"] == 5 and got["level_label"] == "非常满意" and got["is_bad"] is False
    assert got["org_code"] == "HALL-A" and got["window_code"] == "W-A1"
    assert got["staff_no"] == "S-A1" and got["item_code"] == "ITEM-A1"
    assert got["tagset_version"] == "national-2020" and got["eval_count"] == 1
    # The rater defaults to the case's applicant, and is masked in the answer.
    assert got["rater"]["name"] == "张*"
    assert "*" in got["rater"]["cert_no"] and "*" in got["rater"]["phone"]
    row = await db.get(Evaluation, got["id"])
    assert row.source_ip == "203.0.113.7" and row.user_agent == "pad-firmware/2.1"
    assert row.rater_cert_no == case["applicant"]["cert_no"]
    assert row.client_id is not None and row.region_code == "330102"


async def test_second_rating_of_same_case_and_stage_is_a_conflict(client, db, world, case):
    key = world.keys["hall_a_pad"]
    first = await post(client, key, EvaluationPayloadFactory(case_no=case["case_no"]))
    assert first.status_code == 201
    second = await post(client, key, EvaluationPayloadFactory(case_no=case["case_no"], level=1,
                                                              reasons=["113"] and [],
                                                              comment="太慢"))
    assert second.status_code == 409
    err = second.json()["error"]
    assert err["code"] == "duplicate_evaluation" and err["message"] == "该办件在此环节已评价"
    assert err["details"] == [{"id": first.json()["id"]}]
    # Another stage of the same case is its own rating.
    third = await post(client, key, EvaluationPayloadFactory(case_no=case["case_no"],
                                                             stage="accept"))
    assert third.status_code == 201
    assert await count_evaluations(db) == 2
    stored = await db.get(Evaluation, first.json()["id"])
    assert stored.level == 5  # the first rating was not overwritten
