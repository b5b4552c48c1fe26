"""Rating intake through POST /api/v1/evaluations: the happy path and every refusal."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from haochaping.app import create_app, startup
from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from tests.factories import (
    STAGES_ACCEPT_COMPLETE,
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    iso,
    key_headers,
    make_case,
    now,
    publish_policy,
    table_counts,
)


async def count_evaluations(db, case_no: str) -> int:
    """The ratings of one case (the suite's database holds rows other tests committed)."""
    return (
        await db.execute(
            select(func.count()).select_from(Evaluation).join(Case).where(Case.case_no == case_no)
        )
    ).scalar_one()


def post(client, key, body, **headers):
    return client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": key, **headers})


async def refused(client, db, key, body, status, code, field=None) -> dict:
    """Post, expect the refusal, and check that not a row changed anywhere."""
    before = await table_counts(db)
    err = assert_error(await post(client, key, body), status, code)
    if field is not None:
        assert err["details"][0]["field"] == field, err
    assert await table_counts(db) == before
    return err


async def test_rating_is_stored_with_its_context(client, db, world, case):
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    r = await post(client, world.keys["hall_a_pad"], body, **{"User-Agent": "pad-firmware/2.1"})
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["level"] == 5 and got["level_label"] == "非常满意" and got["is_bad"] is False
    assert got["org_code"] == "HALL-A" and got["window_code"] == "W-A1"
    assert got["staff_no"] == "S-A1" and got["item_code"] == "ITEM-A1"
    assert got["tagset_version"] == "national-2020" and got["eval_count"] == 1
    assert got["case_no"] == case["case_no"] and got["stage"] == "whole"
    assert got["reasons"] == ["517"] and got["comment"] == "办事很快"
    # The rater defaults to the case's applicant, and is masked in the answer.
    assert got["rater"]["name"] == "张*"
    assert "*" in got["rater"]["cert_no"] and "*" in got["rater"]["phone"]
    assert case["applicant"]["cert_no"] not in r.text and case["applicant"]["phone"] not in r.text
    row = await db.get(Evaluation, got["id"])
    assert row.source_ip == "203.0.113.7" and row.user_agent == "pad-firmware/2.1"
    assert row.rater_cert_no == case["applicant"]["cert_no"]
    assert row.client_id is not None and row.region_code == "330102"
    assert (row.level, row.channel, row.reasons) == (5, "pad", ["517"])


async def test_second_rating_of_same_case_and_stage_is_a_conflict(client, db, world, case):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    key = world.keys["hall_a_pad"]
    first = await post(client, key, EvaluationPayloadFactory(case_no=case["case_no"]))
    assert first.status_code == 201
    second = await post(
        client,
        key,
        EvaluationPayloadFactory(case_no=case["case_no"], level=1, reasons=[], comment="太慢"),
    )
    err = assert_error(second, 409, "duplicate_evaluation")
    assert err["message"] == "该办件在此环节已评价"
    assert err["details"] == [{"id": first.json()["id"]}]
    # Another stage of the same case is its own rating.
    third = await post(
        client, key, EvaluationPayloadFactory(case_no=case["case_no"], stage="accept")
    )
    assert third.status_code == 201
    assert await count_evaluations(db, case["case_no"]) == 2
    stored = await db.get(Evaluation, first.json()["id"])
    assert stored.level == 5  # the first rating was not overwritten


async def test_every_level_is_accepted_with_fitting_reasons(client, db, world):
    for level, reasons, comment in [
        (5, ["510", "517"], None),
        (4, ["410"], None),
        (3, [], None),
        (3, ["310"], ""),
        (2, ["213", "214"], "窗口人员不熟悉业务"),
        (2, [], "等了两个小时"),
        (1, ["113"], None),
    ]:
        case = await make_case(db, world)
        r = await post(
            client,
            world.keys["all"],
            {
                "case_no": case["case_no"],
                "channel": "pc",
                "level": level,
                "reasons": reasons,
                "comment": comment,
            },
        )
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["is_bad"] is (level <= 2) and got["reasons"] == reasons
        row = await db.get(Evaluation, got["id"])
        assert row.level == level and row.comment == (comment or None)


async def test_unknown_case_is_404(client, db, world):
    err = await refused(
        client,
        db,
        world.keys["all"],
        EvaluationPayloadFactory(case_no="HZ-NOPE"),
        404,
        "case_not_found",
    )
    assert err["details"] == [{"field": "case_no", "value": "HZ-NOPE"}]


async def test_a_case_not_yet_accepted_cannot_be_rated(client, db, world):
    for status in ("received", "rejected"):
        case = await make_case(db, world, status=status, accepted_at=None, completed_at=None)
        err = await refused(
            client,
            db,
            world.keys["all"],
            EvaluationPayloadFactory(case_no=case["case_no"]),
            422,
            "case_not_accepted",
            "case_no",
        )
        assert "尚未受理" in err["message"]


async def test_an_accepted_case_may_be_rated_before_completion(client, world, db):
    case = await make_case(db, world, status="accepted", completed_at=None)
    r = await post(client, world.keys["all"], EvaluationPayloadFactory(case_no=case["case_no"]))
    assert r.status_code == 201, r.text


async def test_the_evaluation_window_closes_after_completion(client, db, settings, world):
    days = settings.evaluation_window_days
    accepted = iso(now() - timedelta(days=days + 3))
    late = await make_case(
        db,
        world,
        received_at=accepted,
        accepted_at=accepted,
        completed_at=iso(now() - timedelta(days=days, minutes=1)),
    )
    err = await refused(
        client,
        db,
        world.keys["all"],
        EvaluationPayloadFactory(case_no=late["case_no"]),
        422,
        "evaluation_window_closed",
        "case_no",
    )
    assert f"{days} 天" in err["message"]
    in_time = await make_case(
        db,
        world,
        received_at=accepted,
        accepted_at=accepted,
        completed_at=iso(now() - timedelta(days=days, minutes=-5)),
    )
    r = await post(client, world.keys["all"], EvaluationPayloadFactory(case_no=in_time["case_no"]))
    assert r.status_code == 201, r.text


async def test_the_window_length_comes_from_the_settings(settings, engine, sessionmaker, db, world):
    app = create_app(settings.model_copy(update={"evaluation_window_days": 5}))
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app)
    start = iso(now() - timedelta(days=9))
    old = await make_case(
        db, world, received_at=start, accepted_at=start, completed_at=iso(now() - timedelta(days=6))
    )
    recent = await make_case(
        db, world, received_at=start, accepted_at=start, completed_at=iso(now() - timedelta(days=4))
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        err = assert_error(
            await post(c, world.keys["all"], EvaluationPayloadFactory(case_no=old["case_no"])),
            422,
            "evaluation_window_closed",
        )
        assert "5 天" in err["message"]
        r = await post(c, world.keys["all"], EvaluationPayloadFactory(case_no=recent["case_no"]))
        assert r.status_code == 201


async def test_a_regions_policy_sets_its_own_window(client, app, db, world):
    """A county's policy of 5 days closes its halls' window early; a city hall without one
    keeps the default; batches and rating links follow the same window."""
    from haochaping.policies import schemas as policy_schemas
    from haochaping.policies import service as policy_service
    from tests.factories import ADMIN

    start = iso(now() - timedelta(days=9))
    done = iso(now() - timedelta(days=6))
    county = [
        await make_case(db, world, received_at=start, accepted_at=start, completed_at=done)
        for _ in range(3)
    ]
    city = await make_case(
        db,
        world,
        received_at=start,
        accepted_at=start,
        completed_at=done,
        org_code="HALL-B",
        window_code="W-B1",
        item_code="ITEM-B1",
        staff_no="S-B1",
    )
    r = await post(
        client, world.keys["all"], EvaluationPayloadFactory(case_no=county[0]["case_no"])
    )
    assert r.status_code == 201, r.text  # the default 30 days, before the policy
    await policy_service.create_policy(
        db=db,
        actor=ADMIN,
        data=policy_schemas.PolicyCreate(
            region_code="330102", values=policy_schemas.PolicyValuesPatch(evaluation_window_days=5)
        ),
    )
    await db.commit()
    app.state.policy_cache.clear()  # as the policy routes and pages do after an edit
    err = await refused(
        client,
        db,
        world.keys["all"],
        EvaluationPayloadFactory(case_no=county[1]["case_no"]),
        422,
        "evaluation_window_closed",
        "case_no",
    )
    assert "办结后 5 天" in err["message"]
    r = await post(client, world.keys["all"], EvaluationPayloadFactory(case_no=city["case_no"]))
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/evaluations/batch",
        headers={"X-Api-Key": world.keys["all"]},
        json={"items": [EvaluationPayloadFactory(case_no=county[2]["case_no"])]},
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["status"] == 422 and item["error"]["code"] == "evaluation_window_closed"
    fresh = await make_case(
        db, world, received_at=start, accepted_at=start, completed_at=iso(now() - timedelta(days=2))
    )
    r = await client.post(
        f"/api/v1/cases/{fresh['case_no']}/invitations", headers={"X-Api-Key": world.keys["all"]}
    )
    assert r.status_code == 201, r.text
    expires = datetime.fromisoformat(r.json()["expires_at"])
    assert abs((expires - (now() + timedelta(days=3))).total_seconds()) < 120


REASON_REFUSALS = [
    (5, ["999"], None, "unknown_reason"),
    (5, ["abc"], None, "unknown_reason"),
    (5, ["113"], None, "reason_level_mismatch"),
    (1, ["517"], None, "reason_level_mismatch"),
    (2, ["213", "113"], None, "reason_level_mismatch"),
    (5, ["517", "517"], None, "duplicate_reason"),
    (2, [], None, "reason_required"),
    (1, [], "", "reason_required"),
    (1, [], "   ", "reason_required"),
]


async def test_reasons_must_exist_fit_the_level_and_bad_ratings_say_why(client, db, world, case):
    for level, reasons, comment, code in REASON_REFUSALS:
        body = {
            **EvaluationPayloadFactory(case_no=case["case_no"]),
            "level": level,
            "reasons": reasons,
            "comment": comment,
        }
        err = await refused(client, db, world.keys["all"], body, 422, code, "reasons")
        if code == "reason_level_mismatch":
            assert "不符" in err["message"]


async def test_unknown_or_missing_channels_are_422(client, db, world, case):
    for channel in ["fax", "PAD", "", "system", 4, None]:
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "channel": channel}
        await refused(client, db, world.keys["all"], body, 422, "invalid_input", "channel")
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    del body["channel"]
    await refused(client, db, world.keys["all"], body, 422, "invalid_input", "channel")


async def test_levels_outside_one_to_five_or_not_integers_are_422(client, db, world, case):
    for level in [0, 6, -1, 10**20, "5", "五", 5.0, 4.5, True, False, None, [5], {"value": 5}]:
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "level": level}
        await refused(client, db, world.keys["all"], body, 422, "invalid_input", "level")
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    del body["level"]
    await refused(client, db, world.keys["all"], body, 422, "invalid_input", "level")


async def test_comment_length_is_bounded(client, db, world, case):
    base = {**EvaluationPayloadFactory(case_no=case["case_no"]), "level": 2, "reasons": []}
    for size in (2001, 100_000):
        err = await refused(
            client,
            db,
            world.keys["all"],
            {**base, "comment": "慢" * size},
            422,
            "invalid_input",
            "comment",
        )
        assert err["details"][0]["type"] == "string_too_long"
    r = await post(client, world.keys["all"], {**base, "comment": "慢" * 2000})
    assert r.status_code == 201 and len(r.json()["comment"]) == 2000


FIELD_REFUSALS = [
    ({"score": 5}, "score"),
    ({"eval_count": 2}, "eval_count"),
    ({"id": 1}, "id"),
    ({"is_default": True}, "is_default"),
    ({"rater": {"name": "张三", "age": 3}}, "rater.age"),
    ({"stage": "Whole!"}, "stage"),
    ({"reasons": ["5 1 7"]}, "reasons.0"),
    ({"reasons": [str(i) for i in range(21)]}, "reasons"),
    ({"anonymous": "yes"}, "anonymous"),
    ({"evaluated_at": "2026-01-01 09:00"}, "evaluated_at"),
    ({"device_id": "d" * 101}, "device_id"),
    ({"rater": "张三"}, "rater"),
    ({"case_no": ["HZ-1"]}, "case_no"),
]


async def test_unknown_or_malformed_fields_are_422(client, db, world, case):
    for extra, field in FIELD_REFUSALS:
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), **extra}
        await refused(client, db, world.keys["all"], body, 422, "invalid_input", field)


async def test_channels_outside_the_keys_channels_are_403(client, db, world, case):
    # hall_a_pad may send pad and qrcode ratings only.
    for channel in ("sms", "pc", "review"):
        body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "channel": channel}
        err = await refused(client, db, world.keys["hall_a_pad"], body, 403, "channel_out_of_scope")
        assert err["details"] == [{"field": "channel", "value": channel}]


async def test_cases_outside_the_keys_subtree_are_403(client, db, world):
    theirs = await make_case(
        db, world, org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    await refused(
        client,
        db,
        world.keys["hall_a_pad"],
        EvaluationPayloadFactory(case_no=theirs["case_no"]),
        403,
        "out_of_scope",
    )
    r = await post(
        client, world.keys["hall_b"], EvaluationPayloadFactory(case_no=theirs["case_no"])
    )
    assert r.status_code == 201 and r.json()["window_code"] == "W-B1"


async def test_case_bound_channels_need_a_case_and_only_a_case(client, db, world, case):
    body = EvaluationPayloadFactory()
    await refused(client, db, world.keys["all"], body, 422, "case_no_required", "case_no")
    await refused(
        client,
        db,
        world.keys["all"],
        {**body, "case_no": case["case_no"], "org_code": "HALL-A"},
        422,
        "target_conflict",
    )


async def test_rater_must_be_the_applicant_unless_an_agent(client, db, world, case):
    other = {"name": "李四", "cert_type": "id_card", "cert_no": "110101199001011234"}
    body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "rater": other}
    await refused(client, db, world.keys["all"], body, 422, "rater_not_applicant", "rater.cert_no")
    r = await post(
        client,
        world.keys["all"],
        {**body, "rater": {**other, "is_agent": True, "phone": "13900001111"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rater"] == {
        "type": "person",
        "name": "李*",
        "cert_no": "1101**********1234",
        "phone": "139****1111",
    }
    row = await db.get(Evaluation, r.json()["id"])
    assert (row.rater_name, row.rater_cert_no) == ("李四", "110101199001011234")


async def test_the_applicant_may_name_themselves(client, db, world):
    case = await make_case(
        db,
        world,
        applicant={"name": "王五", "cert_type": "id_card", "cert_no": "11010119900101123X"},
    )
    r = await post(
        client,
        world.keys["all"],
        {
            **EvaluationPayloadFactory(case_no=case["case_no"]),
            "rater": {"name": "王五", "cert_no": "11010119900101123x"},
        },
    )
    assert r.status_code == 201, r.text


async def test_anonymous_ratings_hide_the_rater_but_keep_it_on_record(client, db, world, case):
    body = {**EvaluationPayloadFactory(case_no=case["case_no"]), "anonymous": True, "public": False}
    r = await post(client, world.keys["all"], body)
    assert r.status_code == 201
    got = r.json()
    assert got["rater"] is None and got["anonymous"] is True and got["public"] is False
    for answer in (
        await client.get(f"/api/v1/evaluations/{got['id']}", headers=key_headers(world)),
        await client.get(
            "/api/v1/evaluations", params={"case_no": case["case_no"]}, headers=key_headers(world)
        ),
    ):
        assert answer.status_code == 200
        assert "张" not in answer.text and case["applicant"]["cert_no"][-4:] not in answer.text
    row = await db.get(Evaluation, got["id"])
    assert row.anonymous and row.rater_cert_no == case["applicant"]["cert_no"]


async def test_a_rating_time_in_the_future_is_clamped_to_now(client, db, world, case):
    body = {
        **EvaluationPayloadFactory(case_no=case["case_no"]),
        "evaluated_at": iso(now() + timedelta(days=3)),
    }
    r = await post(client, world.keys["all"], body)
    assert r.status_code == 201
    evaluated = datetime.fromisoformat(r.json()["evaluated_at"])
    assert evaluated <= now()
    past = await make_case(db, world)
    at = now() - timedelta(hours=2)
    r = await post(
        client,
        world.keys["all"],
        {**EvaluationPayloadFactory(case_no=past["case_no"]), "evaluated_at": at.isoformat()},
    )
    assert abs(datetime.fromisoformat(r.json()["evaluated_at"]) - at) < timedelta(seconds=1)


# --- general comments (综合点评) and supervisory ratings (监督查评) --------------------------


async def test_review_and_inspection_rate_an_org_or_item_not_a_case(client, db, world):
    headers = key_headers(world)
    r = await client.post(
        "/api/v1/evaluations",
        headers=headers,
        json={"channel": "review", "org_code": "W-A1", "level": 4, "comment": "指引清楚"},
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["case_no"], got["org_code"], got["window_code"], got["item_code"]) == (
        None,
        "W-A1",
        "W-A1",
        None,
    )
    assert got["rater"] == {"type": "person", "name": None, "cert_no": None, "phone": None}
    r = await client.post(
        "/api/v1/evaluations",
        headers=headers,
        json={"channel": "inspection", "item_code": "ITEM-B1", "level": 2, "reasons": ["213"]},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["org_code"], r.json()["item_code"]) == ("HALL-B", "ITEM-B1")
    # No natural key: the same comment twice is two comments.
    again = await client.post(
        "/api/v1/evaluations",
        headers=headers,
        json={"channel": "review", "org_code": "W-A1", "level": 4, "comment": "指引清楚"},
    )
    assert again.status_code == 201 and again.json()["id"] != got["id"]


async def test_general_comments_need_a_known_target(client, db, world):
    for body, status, code in [
        ({"channel": "review", "level": 4}, 422, "target_required"),
        (
            {"channel": "review", "level": 4, "case_no": "HZ-1", "org_code": "HALL-A"},
            422,
            "case_not_allowed",
        ),
        (
            {"channel": "inspection", "level": 4, "org_code": "HALL-A", "item_code": "ITEM-B1"},
            422,
            "item_org_mismatch",
        ),
        ({"channel": "review", "level": 4, "org_code": "NOPE"}, 404, "org_not_found"),
        ({"channel": "review", "level": 4, "item_code": "NOPE"}, 404, "item_not_found"),
        ({"channel": "review", "level": 1}, 422, "reason_required"),
    ]:
        await refused(client, db, world.keys["all"], body, status, code)


async def test_general_comments_outside_the_subtree_are_403(client, db, world):
    await refused(
        client,
        db,
        world.keys["hall_b"],
        {"channel": "review", "level": 4, "org_code": "W-A1"},
        403,
        "out_of_scope",
    )
    await refused(
        client,
        db,
        world.keys["hall_b"],
        {"channel": "review", "level": 4, "item_code": "ITEM-A1"},
        403,
        "out_of_scope",
    )


async def test_people_file_only_the_channels_of_their_role(client, db, world, case):
    assessor = await bearer_headers(client, world.users["assessor"])
    r = await client.post(
        "/api/v1/evaluations",
        headers=assessor,
        json={"channel": "inspection", "org_code": "HALL-A", "level": 3},
    )
    assert r.status_code == 201, r.text
    assert (await db.get(Evaluation, r.json()["id"])).user_id is not None
    before = await table_counts(db)
    unit = await bearer_headers(client, world.users["unit_a"])
    assert_error(
        await client.post(
            "/api/v1/evaluations",
            headers=unit,
            json={"channel": "review", "org_code": "HALL-A", "level": 5},
        ),
        403,
        "channel_out_of_scope",
    )
    # Nobody signs in to press the window pad for a citizen.
    admin = await bearer_headers(client, world.users["admin"])
    assert_error(
        await client.post(
            "/api/v1/evaluations",
            headers=admin,
            json=EvaluationPayloadFactory(case_no=case["case_no"]),
        ),
        403,
        "channel_out_of_scope",
    )
    assert await table_counts(db) == before
