"""The bad-review closed loop through the API: open, verify, rectify, call back, supervise."""

from __future__ import annotations

from sqlalchemy import func, select

from haochaping.core.outbox_models import OutboxMessage
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.models import CallbackAttempt, WorkOrder, WorkOrderEvent
from tests.factories import EvaluationPayloadFactory, assert_error, make_case
from tests.workorders.conftest import EMAILS

WO = "/api/v1/work-orders"


async def act(client, headers, order_id, **body):
    return await client.post(f"{WO}/{order_id}/actions", json=body, headers=headers)


async def events(db, order_id):
    return list(
        (
            await db.execute(
                select(WorkOrderEvent.action, WorkOrderEvent.to_state)
                .where(WorkOrderEvent.work_order_id == order_id)
                .order_by(WorkOrderEvent.id)
            )
        ).all()
    )


async def test_bad_rating_opens_a_work_order_and_tells_the_unit(client, db, world, bad):
    ev, order = bad
    assert order.state == "verifying" and order.org_id is not None
    assert order.verify_due_at < order.rectify_due_at
    mails = (
        (
            await db.execute(
                select(OutboxMessage).where(
                    OutboxMessage.payload["work_order_id"].as_integer() == order.id
                )
            )
        )
        .scalars()
        .all()
    )
    by_channel = {(m.channel, m.recipient) for m in mails}
    assert ("email", EMAILS["unit_a"]) in by_channel
    assert any(c == "sms" for c, _ in by_channel)  # the rater gets a progress link
    sms = next(m for m in mails if m.channel == "sms")
    assert "/p/" in sms.body


async def test_good_rating_opens_nothing(client, db, world, handlers):
    case = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert r.status_code == 201
    assert (
        await db.execute(
            select(func.count())
            .select_from(WorkOrder)
            .where(WorkOrder.evaluation_id == r.json()["id"])
        )
    ).scalar_one() == 0


async def test_the_whole_loop_to_a_satisfied_callback(client, db, world, bad, handlers):
    _ev, order = bad
    unit = handlers["unit_a"]
    r = await client.get(f"{WO}/{order.id}", headers=unit)
    assert r.status_code == 200
    detail = r.json()
    assert detail["state"] == "verifying" and detail["state_label"] == "核实中"
    assert {d["kind"] for d in detail["deadlines"]} == {"verify", "rectify"}
    assert "verify" in detail["allowed_actions"] and "redispatch" not in detail["allowed_actions"]
    # Personal data typed into the comment never leaves masked.
    assert "13812345678" not in r.text

    r = await act(client, unit, order.id, action="verify", note="已电话联系评价人，情况属实")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rectifying"
    r = await act(
        client,
        unit,
        order.id,
        action="report_rectified",
        note="已对窗口人员开展业务培训，并一次性告知材料清单",
    )
    assert r.json()["state"] == "callback"
    assert [d["kind"] for d in r.json()["deadlines"]] == ["callback"]
    r = await act(
        client,
        unit,
        order.id,
        action="callback",
        method="phone",
        reached=True,
        verdict="satisfied",
        note="评价人表示满意",
    )
    body = r.json()
    assert body["state"] == "closed" and body["close_reason"] == "callback_satisfied"
    assert [e["action"] for e in body["events"]] == [
        "open",
        "verify",
        "report_rectified",
        "callback_satisfied",
    ]
    assert all(e["actor_name"] for e in body["events"])
    assert (
        await db.execute(
            select(func.count())
            .select_from(CallbackAttempt)
            .where(CallbackAttempt.work_order_id == order.id)
        )
    ).scalar_one() == 1


async def test_dissatisfied_callback_goes_to_supervision_and_back(client, db, world, bad, handlers):
    _ev, order = bad
    unit, office = handlers["unit_a"], handlers["office"]
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    r = await act(
        client,
        unit,
        order.id,
        action="callback",
        method="phone",
        reached=True,
        verdict="dissatisfied",
        note="仍不满意",
    )
    assert r.json()["state"] == "supervising"
    office_mail = (
        (
            await db.execute(
                select(OutboxMessage).where(
                    OutboxMessage.kind == "escalated",
                    OutboxMessage.payload["work_order_id"].as_integer() == order.id,
                )
            )
        )
        .scalars()
        .all()
    )
    assert [m.recipient for m in office_mail] == [EMAILS["office"]]
    # The unit cannot re-dispatch: that is the office's role.
    err = assert_error(
        await act(client, unit, order.id, action="redispatch", note="x"), 403, "role_forbidden"
    )
    assert err["details"][0]["action"] == "redispatch"
    r = await act(
        client, office, order.id, action="redispatch", note="限 5 个工作日整改", rectify_days=5
    )
    assert r.json()["state"] == "rectifying"
    r = await act(client, unit, order.id, action="escalate", note="x")
    assert r.status_code == 403
    r = await act(client, office, order.id, action="escalate", note="再次督办")
    assert r.json()["state"] == "supervising"
    r = await act(client, office, order.id, action="hold_accountable", note="不作为，启动问责")
    assert r.json()["state"] == "accountability"
    r = await act(client, office, order.id, action="close", note="问责完毕")
    assert r.json()["state"] == "closed"


async def test_illegal_moves_change_nothing(client, db, world, bad, handlers):
    _ev, order = bad
    unit = handlers["unit_a"]
    before = await events(db, order.id)
    assert_error(
        await act(client, unit, order.id, action="report_rectified", note="x"),
        409,
        "illegal_transition",
    )
    assert_error(await act(client, unit, order.id, action="verify"), 422, "invalid_input")
    assert_error(await act(client, unit, order.id, action="fly", note="x"), 422)
    assert_error(
        await act(client, handlers["unit_b"], order.id, action="verify", note="x"),
        403,
        "out_of_scope",
    )
    assert_error(await act(client, handlers["assessor"], order.id, action="verify", note="x"), 403)
    r = await client.post(
        f"{WO}/{order.id}/actions",
        json={"action": "verify", "note": "x"},
        headers={"X-Api-Key": world.keys["all"]},
    )
    assert_error(r, 403, "user_required")
    assert_error(
        await act(client, unit, 999999, action="verify", note="x"), 404, "work_order_not_found"
    )
    await db.refresh(order)
    assert order.state == "verifying" and order.version == 1
    assert await events(db, order.id) == before


async def test_stale_version_is_a_conflict(client, db, world, bad, handlers):
    _ev, order = bad
    unit = handlers["unit_a"]
    r = await act(client, unit, order.id, action="verify", note="属实", version=1)
    assert r.status_code == 200
    assert_error(
        await act(
            client,
            unit,
            order.id,
            action="transfer",
            note="转办",
            lead_org_code="HALL-B",
            version=1,
        ),
        409,
        "stale_version",
    )


async def test_transfer_moves_the_order_to_the_lead_unit(client, db, world, bad, handlers):
    _ev, order = bad
    r = await act(
        client,
        handlers["unit_a"],
        order.id,
        action="transfer",
        note="属不动产登记职责",
        lead_org_code="HALL-B",
        co_org_codes=["DEPT-M"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "transferred" and r.json()["org_code"] == "HALL-B"
    assert r.json()["co_org_codes"] == ["DEPT-M"]
    # The new lead unit sees it and acts; the old one no longer sees it.
    assert (await client.get(f"{WO}/{order.id}", headers=handlers["unit_b"])).status_code == 200
    assert (await client.get(f"{WO}/{order.id}", headers=handlers["unit_a"])).status_code == 403
    r = await act(client, handlers["unit_b"], order.id, action="verify", note="已核实")
    assert r.json()["state"] == "rectifying"
    assigned = (
        (await db.execute(select(OutboxMessage.recipient).where(OutboxMessage.kind == "assigned")))
        .scalars()
        .all()
    )
    assert EMAILS["unit_b"] in assigned


async def test_unreachable_rater_closes_after_the_configured_attempts(
    client, db, world, bad, handlers
):
    _ev, order = bad
    unit = handlers["unit_a"]
    await act(client, unit, order.id, action="explain", note="该诉求无法律依据，已解释")
    for attempt in range(1, 4):
        if attempt < 3:
            assert_error(
                await act(client, unit, order.id, action="close_unreachable", note="联系不上"),
                422,
                "too_few_attempts",
            ) if attempt > 1 else None
        r = await act(client, unit, order.id, action="callback", method="phone", reached=False)
        assert r.json()["state"] == "explained" and r.json()["callback_attempts"] == attempt
    assert_error(
        await act(
            client,
            unit,
            order.id,
            action="callback",
            method="sms",
            reached=False,
            verdict="satisfied",
        ),
        422,
        "verdict_without_contact",
    )
    r = await act(client, unit, order.id, action="close_unreachable", note="三次联系不上")
    assert r.json()["state"] == "closed" and r.json()["close_reason"] == "unreachable"


async def test_follow_up_rating_after_rectification(client, db, world, bad, handlers):
    ev, order = bad
    unit, key = handlers["unit_a"], {"X-Api-Key": world.keys["hall_a_pad"]}
    r = await client.post(
        f"{WO}/{order.id}/follow-up", json={"level": 4, "reasons": ["413"]}, headers=key
    )
    assert_error(r, 422, "followup_not_open")
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    r = await client.post(
        f"{WO}/{order.id}/follow-up", json={"level": 1, "comment": "整改后还是一样"}, headers=key
    )
    assert r.status_code == 201, r.text
    assert r.json()["eval_count"] == 2 and r.json()["work_order_state"] == "supervising"
    assert_error(
        await client.post(f"{WO}/{order.id}/follow-up", json={"level": 5}, headers=key), 409
    )
    rows = (
        (
            await db.execute(
                select(Evaluation)
                .where(Evaluation.case_id == (await db.get(Evaluation, ev["id"])).case_id)
                .order_by(Evaluation.id)
            )
        )
        .scalars()
        .all()
    )
    assert [(e.eval_count, e.level) for e in rows] == [(1, 2), (2, 1)]  # the first is kept


async def test_good_follow_up_closes_the_callback(client, db, world, bad, handlers):
    _ev, order = bad
    unit = handlers["unit_a"]
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    r = await client.post(
        f"{WO}/{order.id}/follow-up",
        json={"level": 5, "reasons": ["517"]},
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert r.json()["work_order_state"] == "closed"


async def test_queue_filters_and_scope(client, db, world, bad, handlers):
    _ev, order = bad
    r = await client.get(WO, params={"state": "verifying"}, headers=handlers["unit_a"])
    assert [o["id"] for o in r.json()["items"]] == [order.id]  # other worlds are out of scope
    r = await client.get(WO, params={"overdue": "true"}, headers=handlers["unit_a"])
    assert r.json()["items"] == []
    r = await client.get(WO, headers=handlers["unit_b"])
    assert r.json()["items"] == []
    r = await client.get(WO, params={"org_code": "HALL-A"}, headers=handlers["office"])
    assert [o["id"] for o in r.json()["items"]] == [order.id]
    assert_error(await client.get(WO, params={"state": "nope"}, headers=handlers["office"]), 422)
