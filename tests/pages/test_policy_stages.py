"""The stage list (评价环节) on the console's policy page: shown with its source, published as
typed lines, refused in Chinese when malformed, and then enforced at intake."""

from __future__ import annotations

from sqlalchemy import func, select

from haochaping.policies.models import PolicySet
from tests.factories import EvaluationPayloadFactory, assert_error, key_headers, make_case
from tests.pages.helpers import alert, sign_in
from tests.pages.test_settings_pages import effective, publish


async def test_the_stage_list_is_published_from_the_policy_page(client, db, world):
    await sign_in(client, world.users["admin"])
    page = await client.get("/console/policies", params={"region": "330102"})
    assert effective(page.text, "stages") == ("整体评价", "全国默认")
    assert 'name="stages"' in page.text and 'placeholder="whole"' in page.text
    r = await publish(
        client,
        region_code="330102",
        stages="受理\r\ncomplete\r\nwhole 办结后\r\nlicence 营业执照办理\r\n",
    )
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert effective(page.text, "stages") == (
        "受理、办结、整体评价（办结后）、营业执照办理",
        "上城区",
    )
    stored = (
        await db.execute(
            select(PolicySet.values)
            .where(PolicySet.region_code == "330102")
            .order_by(PolicySet.version.desc())
            .limit(1)
        )
    ).scalar_one()
    assert stored["stages"] == [
        {"code": "accept", "label": "受理", "reached": "accepted"},
        {"code": "complete", "label": "办结", "reached": "completed"},
        {"code": "whole", "label": "整体评价", "reached": "completed"},
        {"code": "licence", "label": "营业执照办理", "reached": "accepted"},
    ]
    # Intake follows at once (the cache was cleared by the publication).
    running = await make_case(db, world, status="accepted", completed_at=None)
    assert_error(
        await client.post(
            "/api/v1/evaluations",
            headers=key_headers(world),
            json=EvaluationPayloadFactory(case_no=running["case_no"]),
        ),
        422,
        "stage_not_reached",
    )
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json=EvaluationPayloadFactory(case_no=running["case_no"], stage="licence"),
    )
    assert r.status_code == 201, r.text


async def test_malformed_stage_lines_are_refused_in_chinese(client, db, world):
    await sign_in(client, world.users["office"])
    before = (await db.execute(select(func.count()).select_from(PolicySet))).scalar_one()
    r = await publish(client, region_code="330102", stages="whole\nlicence")
    assert r.status_code == 422
    assert alert(r.text) == "评价环节 licence 须在代码后填写名称"
    assert "whole\nlicence</textarea>" in r.text  # kept for correction
    r = await publish(client, region_code="330102", stages="whole\n受理\naccept")
    assert r.status_code == 422 and "评价环节代码有重复" in alert(r.text)
    r = await publish(client, region_code="330102", stages="整改 整改环节")
    assert r.status_code == 422
    assert alert(r.text).startswith("评价环节代码“整改”须为 1 到 30 位小写字母、数字或下划线")
    assert (await db.execute(select(func.count()).select_from(PolicySet))).scalar_one() == before
