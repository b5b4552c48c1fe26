"""Calling citizens from the console over HTTP (issue 11): the spot-check queue (抽查回访)
with its verdict form — a dissatisfied answer opens a work order as the API does — and the
查看号码 form of the work-order page, which reveals the rater's number once, with its reason
on record in the audit trail, and never in a list, a reloaded page or a log."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from haochaping.core.models import AuditEvent
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.models import SpotCheck, WorkOrder
from tests.factories import EvaluationPayloadFactory, bearer_headers, make_case
from tests.pages.helpers import csrf_of, sign_in
from tests.workorders.conftest import rate_badly

SPOT = "/console/spot-checks"


async def sampled(client, db, world, **case) -> SpotCheck:
    """A good rating at HALL-A through the API, sampled for a callback (as the deadline job's
    sampling would store it)."""
    c = await make_case(db, world, **case)
    r = await client.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(case_no=c["case_no"]),
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert r.status_code == 201, r.text
    ev = await db.get(Evaluation, r.json()["id"])
    check = SpotCheck(evaluation_id=ev.id, org_id=ev.org_id)
    db.add(check)
    await db.commit()
    return check


def spot_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="card held spot" data-id="(\d+)"', html)]


async def post_call(client, check_id: int, **fields):
    page = await client.get(SPOT)
    assert page.status_code == 200, page.text[-2000:]
    return await client.post(
        f"{SPOT}/{check_id}/callback",
        data={"csrf_token": csrf_of(page.text), "back": SPOT, **fields},
    )


async def test_queue_pending_first_in_scope_and_a_dissatisfied_answer_opens_an_order(
    client, db, world
):
    first = await sampled(client, db, world)
    second = await sampled(client, db, world)
    await sign_in(client, world.users["unit_a"])
    page = await client.get(SPOT)
    assert page.status_code == 200
    assert spot_ids(page.text)[:2] == [first.id, second.id]  # oldest sample first
    ev = await db.get(Evaluation, first.evaluation_id)
    assert ev.rater_phone and ev.rater_phone not in page.text  # never the number in a list

    # A refused form keeps what was typed and says what is missing.
    r = await post_call(client, first.id, method="phone", reached="yes", note="已联系")
    assert r.status_code == 422
    assert "联系上评价人时，请选择评价人的意见" in r.text
    await db.refresh(first)
    assert first.state == "pending"

    r = await post_call(
        client, first.id, method="phone", reached="yes", verdict="dissatisfied", note="其实很慢"
    )
    assert r.status_code == 303, r.text[-2000:]
    await db.refresh(first)
    assert (first.state, first.verdict) == ("done", "dissatisfied")
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.id == first.work_order_id))
    ).scalar_one()
    assert (order.origin, order.state, order.evaluation_id) == (
        "spot_check",
        "verifying",
        first.evaluation_id,
    )
    after = await client.get(SPOT)
    assert f"已生成差评工单 #{order.id}" in after.text
    assert first.id not in spot_ids(after.text)
    done = await client.get(SPOT, params={"state": "done"})
    assert first.id in spot_ids(done.text)
    assert f'href="/console/work-orders/{order.id}"' in done.text

    # Not reached: recorded, still pending. Then satisfied: done, no order.
    r = await post_call(client, second.id, method="phone", reached="no")
    assert r.status_code == 303
    await db.refresh(second)
    assert second.state == "pending"
    r = await post_call(client, second.id, method="visit", reached="yes", verdict="satisfied")
    assert r.status_code == 303
    await db.refresh(second)
    assert (second.state, second.work_order_id) == ("done", None)
    # A second answer to a done check is refused with its message.
    r = await post_call(client, second.id, method="phone", reached="yes", verdict="satisfied")
    assert r.status_code == 409
    assert "该抽查任务已完成" in r.text


async def test_queue_is_scoped_and_gated(client, db, world):
    check = await sampled(client, db, world)
    await sign_in(client, world.users["unit_b"])  # HALL-B: not HALL-A's checks
    page = await client.get(SPOT)
    assert page.status_code == 200
    assert check.id not in spot_ids(page.text)
    r = await post_call(client, check.id, method="phone", reached="yes", verdict="satisfied")
    assert r.status_code == 403
    await db.refresh(check)
    assert check.state == "pending"
    refused = await client.get(SPOT, params={"state": "nonsense"})
    assert refused.status_code == 422
    assert "回访状态取值无效" in refused.text
    await sign_in(client, world.users["assessor"])
    r = await client.get(SPOT)
    assert r.status_code == 403
    assert "抽查回访仅供" in r.text


async def audit_rows(db, order_id: int) -> list[AuditEvent]:
    return list(
        (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "reveal_phone",
                    AuditEvent.target_id == order_id,
                )
            )
        ).scalars()
    )


async def test_reveal_shows_the_number_once_on_record_and_never_in_lists_or_logs(
    client, db, world, caplog
):
    ev, order = await rate_badly(client, db, world)
    phone = (await db.get(Evaluation, ev["id"])).rater_phone
    assert phone
    await sign_in(client, world.users["unit_a"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert page.status_code == 200
    assert "查看号码" in page.text
    assert phone not in page.text
    assert phone[:3] + "****" + phone[-4:] in page.text

    # No reason, no number (and no audit row).
    r = await client.post(
        f"/console/work-orders/{order.id}/phone", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 422
    assert "请填写查看号码的事由" in r.text
    assert phone not in r.text
    assert await audit_rows(db, order.id) == []

    caplog.set_level(logging.DEBUG)
    r = await client.post(
        f"/console/work-orders/{order.id}/phone",
        data={"csrf_token": csrf_of(page.text), "reason": "回访评价人，号码 13900001111"},
    )
    assert r.status_code == 200, r.text[-2000:]
    assert phone in r.text
    assert "自动隐藏" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert not [rec for rec in caplog.records if phone in rec.getMessage()]
    rows = await audit_rows(db, order.id)
    assert len(rows) == 1
    assert rows[0].actor == world.users["unit_a"]
    assert rows[0].detail["reason"] == "回访评价人，号码 139****1111"  # numbers masked
    assert phone not in str(rows[0].detail)

    # The page after reload, and every list, show it masked again.
    for path in (
        f"/console/work-orders/{order.id}",
        "/console/work-orders",
        "/console/evaluations",
        SPOT,
        f"/console/work-orders/{order.id}/phone",
    ):
        again = await client.get(path)
        assert again.status_code == 200, path
        assert phone not in again.text, path

    # The JSON route writes the same audit row through the same service.
    r = await client.post(
        f"/api/v1/work-orders/{order.id}/reveal-phone",
        headers=await bearer_headers(client, world.users["office"]),
    )
    assert r.status_code == 200
    assert len(await audit_rows(db, order.id)) == 2

    # The office reads who looked, and why, on the audit page; never the number.
    await sign_in(client, world.users["office"])
    trail = await client.get("/console/audit", params={"action": "reveal_phone"})
    assert trail.status_code == 200
    assert "reason：回访评价人，号码 139****1111" in trail.text
    assert phone not in trail.text


async def test_reveal_is_refused_outside_scope_and_for_assessors(client, db, world):
    ev, order = await rate_badly(client, db, world)
    phone = (await db.get(Evaluation, ev["id"])).rater_phone
    await sign_in(client, world.users["assessor"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert page.status_code == 200
    assert "查看号码" not in page.text
    r = await client.post(
        f"/console/work-orders/{order.id}/phone",
        data={"csrf_token": csrf_of(page.text), "reason": "好奇"},
    )
    assert r.status_code == 403
    assert phone not in r.text
    await sign_in(client, world.users["unit_b"])
    own = await client.get(SPOT)
    r = await client.post(
        f"/console/work-orders/{order.id}/phone",
        data={"csrf_token": csrf_of(own.text), "reason": "回访"},
    )
    assert r.status_code == 403
    assert await audit_rows(db, order.id) == []


async def test_a_spot_checks_number_is_revealed_with_a_reason_in_scope(client, db, world):
    check = await sampled(client, db, world)
    phone = (await db.get(Evaluation, check.evaluation_id)).rater_phone
    await sign_in(client, world.users["unit_a"])
    queue = await client.get(SPOT)
    assert f'href="/console/spot-checks/{check.id}/phone"' in queue.text
    form = await client.get(f"{SPOT}/{check.id}/phone")
    assert form.status_code == 200
    assert phone not in form.text and "查看事由" in form.text
    r = await client.post(
        f"{SPOT}/{check.id}/phone", data={"csrf_token": csrf_of(form.text), "reason": "抽查回访"}
    )
    assert r.status_code == 200, r.text[-2000:]
    assert phone in r.text
    rows = list(
        (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.target_type == "spot_check", AuditEvent.target_id == check.id
                )
            )
        ).scalars()
    )
    assert [(e.action, e.detail["reason"]) for e in rows] == [("reveal_phone", "抽查回访")]
    assert phone not in (await client.get(SPOT)).text

    await sign_in(client, world.users["unit_b"])
    own = await client.get(SPOT)
    r = await client.post(
        f"{SPOT}/{check.id}/phone", data={"csrf_token": csrf_of(own.text), "reason": "回访"}
    )
    assert r.status_code == 403
    assert phone not in r.text
    assert (await client.get(f"{SPOT}/{check.id}/phone")).status_code == 403
    assert (await client.get(f"{SPOT}/99999999/phone")).status_code == 404
