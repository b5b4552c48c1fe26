"""Deactivated organisations, windows, items and staff take no new cases or ratings: the single
route, each item of a batch, general comments, rating links (made, opened, used) and case
pushes answer 422 `org_inactive` / `item_inactive` / `staff_inactive`; what was rated before
stays readable and still counts."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from haochaping.orgs import service as org_service
from tests.factories import (
    ADMIN,
    CasePayloadFactory,
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    make_case,
    table_counts,
)

EVALUATIONS = "/api/v1/evaluations"


async def deactivate(db, what: str, code: str) -> None:
    """Deactivate through the directory's own service, as the console does."""
    fn = {
        "org": org_service.deactivate_org,
        "item": org_service.deactivate_item,
    }.get(what)
    if fn is not None:
        await fn(db=db, actor=ADMIN, code=code)
    else:
        await org_service.deactivate_staff(db=db, actor=ADMIN, staff_no=code)
    await db.commit()


# (what is deactivated, its code, the error code, the words the message must name)
CASES = [
    ("org", "HALL-A", "org_inactive", "机构 HALL-A 已停用"),
    ("org", "W-A1", "org_inactive", "机构 W-A1 已停用"),
    ("item", "ITEM-A1", "item_inactive", "服务事项 ITEM-A1 已停用"),
    ("staff", "S-A1", "staff_inactive", "工作人员 S-A1 已停用"),
]


@pytest.mark.parametrize(("what", "code", "error", "words"), CASES)
async def test_a_rating_against_a_deactivated_target_is_refused(
    client, db, world, what, code, error, words
):
    case = await make_case(db, world)
    await deactivate(db, what, code)
    before = await table_counts(db)
    r = await client.post(
        EVALUATIONS,
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
        headers=key_headers(world, "hall_a_pad"),
    )
    err = assert_error(r, 422, error)
    assert words in err["message"] and "不再接受评价" in err["message"]
    assert err["details"] == [{"field": "case_no", "value": code}]
    assert await table_counts(db) == before


async def test_batch_refuses_only_the_items_of_deactivated_targets(client, db, world):
    kept = await make_case(db, world, window_code="W-A2", staff_no=None)
    stopped = await make_case(db, world)  # at W-A1, served by S-A1
    await deactivate(db, "staff", "S-A1")
    r = await client.post(
        f"{EVALUATIONS}/batch",
        json={
            "items": [
                EvaluationPayloadFactory(case_no=stopped["case_no"]),
                EvaluationPayloadFactory(case_no=kept["case_no"]),
            ]
        },
        headers=key_headers(world, "hall_a_pad"),
    )
    assert r.status_code == 200, r.text
    refused, stored = r.json()["items"]
    assert refused["status"] == 422 and refused["error"]["code"] == "staff_inactive"
    assert "工作人员 S-A1 已停用" in refused["error"]["message"]
    assert stored["status"] == 201 and stored["evaluation"]["window_code"] == "W-A2"


@pytest.mark.parametrize(
    ("what", "code", "body", "error", "field"),
    [
        ("org", "DEPT-M", {"org_code": "DEPT-M"}, "org_inactive", "org_code"),
        ("item", "ITEM-B1", {"item_code": "ITEM-B1"}, "item_inactive", "item_code"),
        ("org", "HALL-B", {"item_code": "ITEM-B1"}, "org_inactive", "item_code"),
    ],
)
async def test_general_comments_about_deactivated_targets_are_refused(
    client, db, world, what, code, body, error, field
):
    await deactivate(db, what, code)
    headers = await bearer_headers(client, world.users["assessor"])
    payload = {"channel": "review", "level": 4, "reasons": ["406"], **body}
    err = assert_error(await client.post(EVALUATIONS, json=payload, headers=headers), 422, error)
    assert err["details"][0]["field"] == field


async def test_earlier_ratings_stay_and_still_count(client, db, world):
    case = await make_case(db, world)
    r = await client.post(
        EVALUATIONS,
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
        headers=key_headers(world, "hall_a_pad"),
    )
    assert r.status_code == 201, r.text
    rating_id = r.json()["id"]
    office = await bearer_headers(client, world.users["office"])

    async def summary():
        got = await client.get(
            "/api/v1/stats/summary", params={"org_code": "HALL-A"}, headers=office
        )
        assert got.status_code == 200, got.text
        return got.json()

    before = await summary()
    assert before["total"] >= 1
    await deactivate(db, "org", "HALL-A")
    assert await summary() == before
    got = await client.get(f"{EVALUATIONS}/{rating_id}", headers=office)
    assert got.status_code == 200 and got.json()["level"] == 5


@pytest.mark.parametrize(("what", "code", "error"), [(w, c, e) for w, c, e, _ in CASES])
async def test_case_pushes_against_deactivated_targets_are_refused(
    client, db, world, what, code, error
):
    await deactivate(db, what, code)
    before = await table_counts(db)
    r = await client.post(
        "/api/v1/cases", json=CasePayloadFactory(), headers=key_headers(world, "hall_a_pad")
    )
    err = assert_error(r, 422, error)
    assert "不再受理新办件" in err["message"]
    assert await table_counts(db) == before


async def test_a_case_filed_before_may_still_move_forward(client, db, world):
    case = await make_case(db, world, status="accepted", completed_at=None)
    await deactivate(db, "org", "HALL-A")
    r = await client.post(
        "/api/v1/cases",
        json={**case, "status": "completed", "completed_at": case["accepted_at"]},
        headers=key_headers(world, "all"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"


async def test_rating_links_are_not_made_for_a_deactivated_service_point(client, db, world):
    case = await make_case(db, world)
    await deactivate(db, "org", "W-A1")
    r = await client.post(
        f"/api/v1/cases/{case['case_no']}/invitations", headers=key_headers(world, "hall_a_pad")
    )
    assert_error(r, 422, "org_inactive")


async def test_a_link_made_before_tells_the_citizen_the_point_takes_no_ratings(client, db, world):
    case = await make_case(db, world)
    made = await client.post(
        f"/api/v1/cases/{case['case_no']}/invitations", headers=key_headers(world, "hall_a_pad")
    )
    assert made.status_code == 201, made.text
    link = urlsplit(made.json()["url"]).path
    assert (await client.get(link)).status_code == 200
    await deactivate(db, "item", "ITEM-A1")
    before = await table_counts(db)
    page = await client.get(link)
    assert page.status_code == 410
    assert "此服务点已停止接受评价" in page.text and 'name="level"' not in page.text
    posted = await client.post(link, data={"level": "5", "reasons": ["517"]})
    assert posted.status_code == 410 and "此服务点已停止接受评价" in posted.text
    assert await table_counts(db) == before
