"""Group commit: single ratings sent together share a transaction, each with its own answer.

On the `live` app (its own committing engine), so that the requests really wait on one
writer and its COMMIT, on SQLite's single writer and on PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
from sqlalchemy import select

from haochaping.app import create_app, shutdown, startup
from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.models import WorkOrder
from tests.factories import EvaluationPayloadFactory, make_case


async def new_case(live) -> dict:
    async with live.sessionmaker() as db:
        return await make_case(db, live.world)


async def stored(live, case_no: str) -> list[Evaluation]:
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


async def test_ratings_sent_together_are_grouped_and_each_gets_its_own_answer(live):
    writer = live.app.state.intake_group
    assert writer is not None  # on by default
    good = [await new_case(live) for _ in range(5)]
    bad, twice = await new_case(live), await new_case(live)
    pad, hall_b = live.world.keys["hall_a_pad"], live.world.keys["hall_b"]
    sends = [
        *[(EvaluationPayloadFactory(case_no=c["case_no"]), pad) for c in good],
        (
            EvaluationPayloadFactory(
                case_no=bad["case_no"], level=2, reasons=["213"], comment="材料要求不清楚"
            ),
            pad,
        ),
        (EvaluationPayloadFactory(case_no=twice["case_no"], comment="第一次"), pad),
        (EvaluationPayloadFactory(case_no=twice["case_no"], comment="第二次"), pad),
        (EvaluationPayloadFactory(case_no="NO-SUCH-CASE"), pad),
        (EvaluationPayloadFactory(case_no=good[0]["case_no"], stage="whole"), hall_b),
        (EvaluationPayloadFactory(case_no=bad["case_no"], level=1, reasons=[], comment=None), pad),
    ]
    for key in (pad, hall_b):  # keys known to the client cache: no request reads the database
        warm = await live.client.get("/api/v1/evaluations?limit=1", headers={"X-Api-Key": key})
        assert warm.status_code == 200, warm.text
    groups_before = writer.groups
    answers = await asyncio.gather(
        *[
            live.client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": key})
            for body, key in sends
        ]
    )
    statuses = [a.status_code for a in answers]
    # The two ratings of one case: whichever the writer met first is stored, the other 409.
    assert statuses[:6] + sorted(statuses[6:8]) + statuses[8:] == [201] * 7 + [
        409,
        404,
        403,
        422,
    ], [a.text for a in answers]
    # Fewer transactions than requests: they were written together.
    assert writer.groups - groups_before < len(sends)
    errors = [a.json()["error"]["code"] for a in answers[8:]]
    assert errors == ["case_not_found", "out_of_scope", "reason_required"]
    first, second = sorted(answers[6:8], key=lambda a: a.status_code)
    assert second.json()["error"]["code"] == "duplicate_evaluation"
    assert second.json()["error"]["details"] == [{"id": first.json()["id"]}]
    assert first.json()["case_no"] == twice["case_no"]
    assert [r.id for r in await stored(live, twice["case_no"])] == [first.json()["id"]]
    for case, answer in zip(good, answers[:5], strict=True):
        assert [r.id for r in await stored(live, case["case_no"])] == [answer.json()["id"]]
    # The bad rating opened its work order in the group's transaction.
    bad_id = answers[5].json()["id"]
    async with live.sessionmaker() as db:
        orders = (
            await db.execute(select(WorkOrder.id).where(WorkOrder.evaluation_id == bad_id))
        ).all()
    assert len(orders) == 1


async def test_a_rating_that_breaks_the_group_fails_alone(live):
    """A hook failing on one rating rolls the group back; the others are stored one by one."""
    state = live.app.state
    hooks = state.rules.on_stored

    async def failing_on_one(db, rows):
        if any(row["comment"] == "钩子出错" for row in rows):
            raise RuntimeError("hook failed")
        await hooks(db, rows)

    state.rules = dataclasses.replace(state.rules, on_stored=failing_on_one)
    cases = [await new_case(live) for _ in range(4)]
    comments = ["好", "钩子出错", "很好", "不错"]
    answers = await asyncio.gather(
        *[
            live.client.post(
                "/api/v1/evaluations",
                json=EvaluationPayloadFactory(case_no=c["case_no"], comment=text),
                headers={"X-Api-Key": live.world.keys["hall_a_pad"]},
            )
            for c, text in zip(cases, comments, strict=True)
        ],
        return_exceptions=True,
    )
    failed = answers[1]
    assert isinstance(failed, RuntimeError) or failed.status_code == 500
    for i in (0, 2, 3):
        assert answers[i].status_code == 201, answers[i]
        assert [r.id for r in await stored(live, cases[i]["case_no"])] == [answers[i].json()["id"]]
    assert await stored(live, cases[1]["case_no"]) == []


async def test_switched_off_each_request_commits_its_own_rating(live, live_settings):
    settings = live_settings.model_copy(update={"intake_group_commit": False})
    app = create_app(settings)
    await startup(app)
    case = await new_case(live)
    try:
        assert app.state.intake_group is None
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4444))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answer = await c.post(
                "/api/v1/evaluations",
                json=EvaluationPayloadFactory(case_no=case["case_no"]),
                headers={"X-Api-Key": live.world.keys["hall_a_pad"]},
            )
    finally:
        await shutdown(app)
    assert answer.status_code == 201, answer.text
    assert [r.id for r in await stored(live, case["case_no"])] == [answer.json()["id"]]
