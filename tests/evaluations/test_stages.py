"""Rating stages (评价环节): a closed list from the region's policy, each rated once the case
has reached it: on the single route, the batch route and rating links alike."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from haochaping.accounts import service as account_service
from haochaping.evaluations.models import Evaluation
from tests.factories import (
    PASSWORD,
    STAGES_ACCEPT_COMPLETE,
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    make_case,
    publish_policy,
    table_counts,
)


def post(client, world, body, key="all"):
    return client.post("/api/v1/evaluations", json=body, headers=key_headers(world, key))


def invite(client, headers, case_no, body=None):
    return client.post(
        f"/api/v1/cases/{case_no}/invitations",
        headers=headers,
        **({"json": body} if body is not None else {}),
    )


async def stages_of(db, case_no: str) -> list[str]:
    from haochaping.cases.models import Case

    rows = await db.execute(
        select(Evaluation.stage)
        .join(Case, Case.id == Evaluation.case_id)
        .where(Case.case_no == case_no)
        .order_by(Evaluation.id)
    )
    return list(rows.scalars())


async def test_invented_stages_do_not_multiply_the_ratings_of_a_case(client, db, world):
    """The probe of issue 8: foo, bar and baz were three 201s for one case."""
    case = await make_case(db, world)
    before = await table_counts(db)
    for stage in ("foo", "bar", "baz"):
        err = assert_error(
            await post(
                client, world, EvaluationPayloadFactory(case_no=case["case_no"], stage=stage)
            ),
            422,
            "unknown_stage",
        )
        assert err["details"] == [{"field": "stage", "value": stage}]
        assert err["message"] == f"评价环节 {stage} 不在本地区可评价的环节之列：整体评价（whole）"
    assert await table_counts(db) == before
    # The national default is the whole case, once.
    r = await post(client, world, EvaluationPayloadFactory(case_no=case["case_no"]))
    assert r.status_code == 201 and r.json()["stage"] == "whole"
    assert_error(
        await post(
            client, world, EvaluationPayloadFactory(case_no=case["case_no"], stage="accept")
        ),
        422,
        "unknown_stage",
    )
    assert await stages_of(db, case["case_no"]) == ["whole"]


async def test_accept_and_complete_need_the_policy_and_a_case_that_reached_them(client, db, world):
    # Set above the county, inherited by it.
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE}, region_code="330100")
    await publish_policy(client, world, {"verify_days": 2})  # the county sets something else
    running = await make_case(db, world, status="accepted", completed_at=None)
    err = assert_error(
        await post(
            client, world, EvaluationPayloadFactory(case_no=running["case_no"], stage="complete")
        ),
        422,
        "stage_not_reached",
    )
    assert err["message"] == "办件尚未办结，暂不能评价“办结”环节"
    assert err["details"] == [{"field": "stage", "value": "complete"}]
    for stage in ("accept", "whole"):
        r = await post(
            client, world, EvaluationPayloadFactory(case_no=running["case_no"], stage=stage)
        )
        assert r.status_code == 201, r.text
    done = await make_case(db, world)
    for stage in ("accept", "complete", "whole"):
        r = await post(
            client, world, EvaluationPayloadFactory(case_no=done["case_no"], stage=stage)
        )
        assert r.status_code == 201, r.text
    assert_error(
        await post(client, world, EvaluationPayloadFactory(case_no=done["case_no"], stage="step1")),
        422,
        "unknown_stage",
    )
    assert await stages_of(db, running["case_no"]) == ["accept", "whole"]
    assert await stages_of(db, done["case_no"]) == ["accept", "complete", "whole"]


async def test_a_region_may_rate_the_whole_case_only_once_completed(client, db, world):
    await publish_policy(client, world, {"stages": [{"code": "whole", "reached": "completed"}]})
    running = await make_case(db, world, status="accepted", completed_at=None)
    err = assert_error(
        await post(client, world, EvaluationPayloadFactory(case_no=running["case_no"])),
        422,
        "stage_not_reached",
    )
    assert "整体评价" in err["message"]


async def test_the_steps_of_a_bundled_matter_are_rated_each_once(client, db, world):
    steps = [{"code": "licence", "label": "营业执照"}, {"code": "seal", "label": "公章刻制"}]
    policy = await publish_policy(client, world, {"stages": steps})
    assert [s["label"] for s in policy["effective"]["stages"]] == ["营业执照", "公章刻制"]
    case = await make_case(db, world)
    for step in ("licence", "seal"):
        r = await post(client, world, EvaluationPayloadFactory(case_no=case["case_no"], stage=step))
        assert r.status_code == 201, r.text
    assert_error(
        await post(
            client,
            world,
            EvaluationPayloadFactory(case_no=case["case_no"], stage="seal", level=4, reasons=[]),
        ),
        409,
        "duplicate_evaluation",
    )
    # The list replaces the default: `whole` is no longer one of this region's stages.
    assert_error(
        await post(client, world, EvaluationPayloadFactory(case_no=case["case_no"])),
        422,
        "unknown_stage",
    )


async def test_batch_items_are_checked_each_against_their_region(client, db, world):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    running = await make_case(db, world, status="accepted", completed_at=None)
    # A case of hall B (city 330100) keeps the national default.
    city = await make_case(
        db, world, org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    items = [
        EvaluationPayloadFactory(case_no=running["case_no"], stage="accept"),
        EvaluationPayloadFactory(case_no=running["case_no"], stage="complete"),
        EvaluationPayloadFactory(case_no=running["case_no"], stage="foo"),
        EvaluationPayloadFactory(case_no=city["case_no"], stage="accept"),
        EvaluationPayloadFactory(case_no=city["case_no"]),
        {"channel": "review", "org_code": "W-A2", "level": 4, "stage": "accept"},
    ]
    r = await client.post(
        "/api/v1/evaluations/batch", json={"items": items}, headers=key_headers(world)
    )
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    assert [i["status"] for i in got] == [201, 422, 422, 422, 201, 422]
    assert [i.get("error", {}).get("code") for i in got] == [
        None,
        "stage_not_reached",
        "unknown_stage",
        "unknown_stage",
        None,
        "unknown_stage",
    ]
    assert await stages_of(db, running["case_no"]) == ["accept"]
    assert await stages_of(db, city["case_no"]) == ["whole"]


async def test_general_comments_have_no_stage_but_the_whole(client, db, world):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    before = await table_counts(db)
    assert_error(
        await post(
            client,
            world,
            {"channel": "inspection", "org_code": "W-A1", "level": 4, "stage": "complete"},
        ),
        422,
        "unknown_stage",
    )
    assert await table_counts(db) == before
    r = await post(client, world, {"channel": "inspection", "org_code": "W-A1", "level": 4})
    assert r.status_code == 201, r.text


async def test_rating_links_take_only_stages_the_case_has_reached(client, db, world):
    running = await make_case(db, world, status="accepted", completed_at=None)
    before = await table_counts(db)
    err = assert_error(
        await invite(client, key_headers(world), running["case_no"], {"stage": "foo"}),
        422,
        "unknown_stage",
    )
    assert err["details"] == [{"field": "stage", "value": "foo"}]
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    before = await table_counts(db)
    assert_error(
        await invite(client, key_headers(world), running["case_no"], {"stage": "complete"}),
        422,
        "stage_not_reached",
    )
    assert await table_counts(db) == before
    r = await invite(client, key_headers(world), running["case_no"], {"stage": "accept"})
    assert r.status_code == 201, r.text


async def test_policy_stage_lists_are_validated(client, world):
    headers = await bearer_headers(client, world.users["admin"])
    for stages in (
        [],
        [{"code": "step1"}],
        [{"code": "whole"}, {"code": "whole"}],
        [{"code": "Whole!"}],
        [{"code": "whole", "reached": "rated"}],
        [{"code": f"s{i}", "label": "步"} for i in range(21)],
    ):
        assert_error(
            await client.post(
                "/api/v1/policies",
                headers=headers,
                json={"region_code": "330102", "values": {"stages": stages}},
            ),
            422,
            "invalid_input",
        )
    # Known stages carry their fixed Chinese labels, whatever is sent.
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": "330102", "values": {"stages": [{"code": "accept", "label": "x"}]}},
    )
    assert r.json()["effective"]["stages"] == [
        {"code": "accept", "label": "受理", "reached": "accepted"}
    ]


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("admin", 201),
        ("office", 201),
        ("unit_a", 201),
        ("staff", 201),
        ("assessor", 403),
        ("key_with_channel", 201),
        ("key_without_channel", 403),
    ],
)
async def test_who_may_create_a_rating_link(client, db, world, who, status):
    """Assessors rate services themselves and may not solicit citizens' ratings (issue 8)."""
    case = await make_case(db, world)
    if who == "staff":
        await account_service.create_user(
            db=db,
            username=f"staff{world.suffix}",
            password=PASSWORD,
            role="staff",
            org_code=f"HALL-A{world.suffix}",
        )
        await db.commit()
        headers = await bearer_headers(client, f"staff{world.suffix}")
    elif who.startswith("key_"):
        headers = key_headers(world, "hall_a_pad")  # its channels: pad and qrcode
    else:
        headers = await bearer_headers(client, world.users[who])
    channel = "sms" if who == "key_without_channel" else "qrcode"
    before = await table_counts(db)
    r = await invite(client, headers, case["case_no"], {"channel": channel})
    if status == 201:
        assert r.status_code == 201, r.text
        assert r.json()["url"].startswith("http://testserver/r/")
    else:
        code = "role_forbidden" if who == "assessor" else "channel_out_of_scope"
        assert_error(r, 403, code)
        assert await table_counts(db) == before
