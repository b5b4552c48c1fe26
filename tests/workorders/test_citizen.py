"""The rater's side of the loop (workorders/citizen.py): what the progress link shows, the
verdict through the link, and the follow-up rating."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from haochaping.core.errors import Conflict, NotFound
from haochaping.workorders import citizen
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.loop import context_for
from haochaping.workorders.models import CallbackAttempt, WorkOrderEvent
from tests.factories import EvaluationPayloadFactory, make_case
from tests.workorders.conftest import rate_badly

WO = "/api/v1/work-orders"


async def act(client, headers, order_id, **body):
    r = await client.post(f"{WO}/{order_id}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def fresh(db, order):
    await db.refresh(order)
    return order


async def test_a_progress_token_leads_to_its_work_order_and_a_forged_one_nowhere(
    app, db, world, bad
):
    ev, order = bad
    ctx = await context_for(app.state, db)
    token = ctx.progress_token(ev["id"])
    found = await citizen.order_for_token(db=db, settings=app.state.settings, token=token)
    assert found.id == order.id
    with pytest.raises(NotFound) as caught:
        await citizen.order_for_token(db=db, settings=app.state.settings, token=token + "x")
    assert caught.value.code == "progress_link_invalid" and "12345" in caught.value.message
    with pytest.raises(NotFound):
        await citizen.order_for_token(
            db=db, settings=app.state.settings, token=ctx.progress_token(987654)
        )


async def test_progress_path_only_for_a_rating_with_a_work_order(app, client, db, world, bad):
    ev, _order = bad
    ctx = await context_for(app.state, db)
    path = await citizen.progress_path(db=db, ctx=ctx, evaluation_id=ev["id"])
    assert path == f"/p/{ctx.progress_token(ev['id'])}"
    case = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert await citizen.progress_path(db=db, ctx=ctx, evaluation_id=r.json()["id"]) is None
    assert await citizen.progress_path(db=db, ctx=ctx, evaluation_id=None) is None


async def test_progress_shows_public_steps_and_masked_answers_only(
    client, db, world, bad, handlers
):
    _ev, order = bad
    await act(
        client,
        handlers["unit_a"],
        order.id,
        action="transfer",
        note="内部：属不动产登记职责",
        lead_org_code="HALL-B",
    )
    await act(client, handlers["unit_b"], order.id, action="verify", note="内部：王强已核实")
    await act(
        client,
        handlers["unit_b"],
        order.id,
        action="report_rectified",
        note="已开设绿色通道，咨询电话 13900001111，身份证 330102199001011234 勿外传",
    )
    await act(
        client, handlers["unit_b"], order.id, action="callback", method="phone", reached=False
    )
    view = await citizen.progress(db=db, order=await fresh(db, order))
    assert [s.label for s in view.steps] == [
        "已受理，正在核实",
        "已转交主责单位核实",
        "正在整改",
        "整改完成，待回访",
    ]
    assert view.state == "callback" and view.state_label == "整改完成，待回访"
    assert len(view.answers) == 1 and view.answers[0].kind == "整改情况"
    text = view.answers[0].text
    assert "139****1111" in text and "330102********1234" in text and "13900001111" not in text
    everything = repr(view)
    assert "内部" not in everything and "王强" not in everything
    assert world.users["unit_b"] not in everything
    assert view.verdict_open and view.followup_open and not view.followup_used


async def test_supervision_steps_are_not_repeated(client, db, world, bad, handlers):
    _ev, order = bad
    office = handlers["office"]
    await act(client, office, order.id, action="escalate", note="超期")
    await act(client, office, order.id, action="hold_accountable", note="问责")
    view = await citizen.progress(db=db, order=await fresh(db, order))
    assert [s.label for s in view.steps] == ["已受理，正在核实", "管理机构督办中"]
    assert not view.verdict_open and not view.followup_open and not view.answers


async def test_the_citizens_verdict_is_a_callback_through_the_link(
    client, db, world, bad, handlers
):
    _ev, order = bad
    verdict = wo_schemas.CitizenVerdictIn(verdict="dissatisfied", note="  ")
    with pytest.raises(Conflict) as caught:
        await citizen.give_verdict(db=db, order=order, data=verdict, version=None)
    assert caught.value.code == "verdict_not_open"
    await act(client, handlers["unit_a"], order.id, action="explain", note="已解释")
    order = await fresh(db, order)
    with pytest.raises(Conflict) as stale:
        await citizen.give_verdict(db=db, order=order, data=verdict, version=order.version - 1)
    assert stale.value.code == "stale_version"
    event = await citizen.give_verdict(db=db, order=order, data=verdict, version=order.version)
    await db.commit()
    assert event.actor_kind == "citizen" and event.action == "callback_dissatisfied"
    assert event.note is None and order.state == "supervising"
    attempt = (
        await db.execute(select(CallbackAttempt).where(CallbackAttempt.work_order_id == order.id))
    ).scalar_one()
    assert (attempt.method, attempt.reached, attempt.verdict) == ("link", True, "dissatisfied")
    view = await citizen.progress(db=db, order=order)
    assert [s.label for s in view.steps][-2:] == ["您的回访意见：不满意", "管理机构督办中"]


async def test_satisfied_verdict_closes_and_the_follow_up_is_used_once(
    app, client, db, world, bad, handlers
):
    _ev, order = bad
    unit = handlers["unit_a"]
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    order = await fresh(db, order)
    await citizen.give_verdict(
        db=db,
        order=order,
        data=wo_schemas.CitizenVerdictIn(verdict="satisfied"),
        version=order.version,
    )
    await db.commit()
    assert order.state == "closed" and order.close_reason == "callback_satisfied"
    view = await citizen.progress(db=db, order=order)
    assert view.followup_open and not view.verdict_open
    ctx = await context_for(app.state, db)
    body = await citizen.add_follow_up(
        db=db,
        order=order,
        data=wo_schemas.FollowUpIn(level=4, reasons=["413"]),
        rules=app.state.rules,
        ctx=ctx,
        source_ip="203.0.113.9",
    )
    await db.commit()
    assert body["eval_count"] == 2 and body["work_order_state"] == "closed"
    view = await citizen.progress(db=db, order=order)
    assert view.followup_used and not view.followup_open and view.followup_level == 4
    assert view.steps[-1].label == "您追加了一次评价"
    with pytest.raises(Conflict):
        await citizen.add_follow_up(
            db=db, order=order, data=wo_schemas.FollowUpIn(level=5), rules=app.state.rules, ctx=ctx
        )
    followup = (
        await db.execute(
            select(WorkOrderEvent).where(
                WorkOrderEvent.work_order_id == order.id, WorkOrderEvent.action == "followup"
            )
        )
    ).scalar_one()
    assert followup.actor_kind == "citizen"


async def test_no_follow_up_where_the_policy_allows_none(db, world, client):
    _ev, order = await rate_badly(client, db, world)
    order.policy = {**order.policy, "followup_allowance": 0}
    order.rectified_at = order.opened_at
    order.state = "callback"
    view = await citizen.progress(db=db, order=order)
    assert not view.followup_open and not view.followup_used
