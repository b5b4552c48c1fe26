"""The rating page of a link made for one stage: its label, and the region's policy changing
under an unused link (the stage dropped, or now rated only after completion)."""

from __future__ import annotations

from sqlalchemy import select

from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from tests.factories import STAGES_ACCEPT_COMPLETE, make_case, publish_policy
from tests.portal.conftest import invite


async def stored(db, case: dict) -> list[str]:
    """The stages at which the case was rated."""
    return list(
        (
            await db.execute(
                select(Evaluation.stage)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case["case_no"])
            )
        ).scalars()
    )


async def test_a_link_names_its_stage_and_rates_it(client, db, world):
    steps = [{"code": "whole"}, {"code": "licence", "label": "营业执照办理"}]
    await publish_policy(client, world, {"stages": steps})
    case = await make_case(db, world)
    link = await invite(client, world, case["case_no"], stage="licence")
    r = await client.get(link)
    assert r.status_code == 200
    assert "<dt>评价环节</dt><dd>营业执照办理</dd>" in r.text
    r = await client.post(link, data={"level": "5"})
    assert r.status_code == 303, r.text
    assert await stored(db, case) == ["licence"]
    # A link for the whole case says nothing about stages.
    whole = await invite(client, world, (await make_case(db, world))["case_no"])
    assert "评价环节" not in (await client.get(whole)).text


async def test_a_stage_dropped_from_the_policy_closes_its_links(client, db, world):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    case = await make_case(db, world, status="accepted", completed_at=None)
    link = await invite(client, world, case["case_no"], stage="accept")
    await publish_policy(client, world, {"stages": [{"code": "whole"}]})
    for r in (await client.get(link), await client.post(link, data={"level": "4"})):
        assert r.status_code == 410
        assert "此评价链接已失效" in r.text and "请您为本次服务评价" not in r.text
    assert await stored(db, case) == []


async def test_a_stage_not_reached_yet_is_not_rated(client, db, world):
    case = await make_case(db, world, status="accepted", completed_at=None)
    link = await invite(client, world, case["case_no"])
    # The region now rates the whole case only once it is completed.
    await publish_policy(client, world, {"stages": [{"code": "whole", "reached": "completed"}]})
    for r in (await client.get(link), await client.post(link, data={"level": "4"})):
        assert r.status_code == 422
        assert "暂时还不能评价" in r.text and "办结后" in r.text
    assert await stored(db, case) == []
