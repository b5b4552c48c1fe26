"""A held bad rating judged invalid on review ends its work order (nothing left to rectify);
while an appeal is pending, the appeal's decision settles it instead."""

from __future__ import annotations

from sqlalchemy import select

from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import Standing, set_standing, standing_of
from haochaping.integrity import detectors
from haochaping.integrity import service as integrity_service
from haochaping.integrity.models import IntegrityFlag
from haochaping.workorders.models import WorkOrderEvent
from tests.appeals.test_appeals import appeal, decide
from tests.factories import assert_error


async def flag(db, ev) -> int:
    (flag_id,) = await integrity_service.raise_flags(
        db=db,
        findings=[
            detectors.Finding(
                evaluation_id=ev["id"],
                org_id=(await db.get(Evaluation, ev["id"])).org_id,
                check="coordinated_bad",
                subject="窗口",
                reason="关联评价人集中差评",
                evidence={"raters": 3},
            )
        ],
        stage="batch",
    )
    await db.commit()
    return flag_id


async def events(db, order) -> list[WorkOrderEvent]:
    return list(
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id)
            )
        ).scalars()
    )


async def test_invalidated_flag_ends_the_work_order_on_record(client, db, bad, handlers):
    ev, order = bad
    flag_id = await flag(db, ev)
    r = await client.post(
        f"/api/v1/integrity/flags/{flag_id}/review",
        headers=handlers["office"],
        json={"decision": "invalidate", "note": "关联人员集中恶意差评，已核实"},
    )
    assert r.status_code == 200, r.text
    await db.refresh(order)
    assert order.state == "invalidated" and order.close_reason == "integrity_invalidated"
    assert order.closed_at is not None
    last = (await events(db, order))[-1]
    assert (last.action, last.from_state, last.to_state) == (
        "invalidate",
        "verifying",
        "invalidated",
    )
    assert last.actor_name == "office" and last.note == "关联人员集中恶意差评，已核实"
    # Nothing more can be done on it, by anyone.
    r = await client.get(f"/api/v1/work-orders/{order.id}", headers=handlers["office"])
    assert r.status_code == 200 and r.json()["allowed_actions"] == []


async def test_cleared_flag_leaves_the_work_order_running(client, db, bad, handlers):
    ev, order = bad
    flag_id = await flag(db, ev)
    r = await client.post(
        f"/api/v1/integrity/flags/{flag_id}/review",
        headers=handlers["office"],
        json={"decision": "clear"},
    )
    assert r.status_code == 200
    await db.refresh(order)
    assert order.state == "verifying" and order.closed_at is None


async def test_pending_appeal_is_decided_by_the_appeal_not_the_review(client, db, bad, handlers):
    ev, order = bad
    flag_id = await flag(db, ev)
    filed = await appeal(client, handlers["unit_a"], ev["id"], category="malicious")
    assert filed.status_code == 201, filed.text
    assert_error(
        await client.post(
            f"/api/v1/integrity/flags/{flag_id}/review",
            headers=handlers["office"],
            json={"decision": "invalidate", "note": "刷评"},
        ),
        409,
        "appeal_pending",
    )
    # Nothing changed: the flag is open, the rating held, the order under appeal.
    assert (await db.get(IntegrityFlag, flag_id, populate_existing=True)).state == "open"
    assert await standing_of(db, ev["id"]) == Standing.HELD
    await db.refresh(order)
    assert order.state == "appealing"
    r = await decide(client, handlers["office"], filed.json()["id"], "uphold")
    assert r.status_code == 200
    await db.refresh(order)
    assert order.state == "invalidated" and order.close_reason == "appeal_upheld"


async def test_held_rating_judged_invalid_ends_its_order(client, db, bad, handlers):
    ev, order = bad
    await set_standing(
        db=db,
        evaluation_id=ev["id"],
        standing=Standing.HELD,
        reason="malicious_rater",
        actor="系统",
    )
    await db.commit()
    r = await client.post(
        f"/api/v1/evaluations/{ev['id']}/standing",
        headers=handlers["office"],
        json={"standing": "invalid", "note": "恶意评价人员再次差评，经核实无效"},
    )
    assert r.status_code == 200, r.text
    await db.refresh(order)
    assert order.state == "invalidated" and order.close_reason == "review_invalidated"
    assert await standing_of(db, ev["id"]) == Standing.INVALID


async def test_closed_order_stays_closed_when_its_rating_is_invalidated(client, db, bad, handlers):
    ev, order = bad
    from haochaping.workorders.states import State

    order.state, order.close_reason = State.CLOSED.value, "callback_satisfied"
    await db.commit()
    flag_id = await flag(db, ev)
    r = await client.post(
        f"/api/v1/integrity/flags/{flag_id}/review",
        headers=handlers["office"],
        json={"decision": "invalidate", "note": "核实为刷评"},
    )
    assert r.status_code == 200
    await db.refresh(order)
    assert order.state == "closed" and order.close_reason == "callback_satisfied"
    assert await standing_of(db, ev["id"]) == Standing.INVALID


async def test_ids_beyond_a_bigint_are_refused_not_crashed(client, handlers):
    for method, path, body in (
        (
            "post",
            f"/api/v1/evaluations/{2**63}/standing",
            {"standing": "valid", "note": "核实有效"},
        ),
        ("get", f"/api/v1/appeals/{2**63}", None),
        ("post", f"/api/v1/appeals/{2**63}/decision", {"decision": "reject", "note": "经核查属实"}),
    ):
        r = await client.request(method, path, json=body, headers=handlers["office"])
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] and r.json()["error"]["message"]
