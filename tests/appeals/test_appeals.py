"""Appeals end to end, their effect on the statistics, and the malicious-rater register."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from haochaping.app import create_app, shutdown, startup
from haochaping.appeals import jobs as appeal_jobs
from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.core.outbox_models import OutboxMessage
from haochaping.db.crypto import DataKeys
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding
from tests.factories import EvaluationPayloadFactory, assert_error, make_case

STATS = "/api/v1/stats/summary"
REDIS_URL = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def appeal(client, headers, evaluation_id, category="mistaken", **extra):
    return await client.post(
        "/api/v1/appeals",
        headers=headers,
        json={
            "evaluation_id": evaluation_id,
            "category": category,
            "reasons": "该事项依法应由不动产登记中心受理，窗口已正确引导，评价人误以为被推诿",
            **extra,
        },
    )


async def decide(client, headers, appeal_id, decision, **extra):
    return await client.post(
        f"/api/v1/appeals/{appeal_id}/decision",
        headers=headers,
        json={"decision": decision, "note": "经核查属实", **extra},
    )


async def stats(client, headers):
    r = await client.get(STATS, params={"org_code": "HALL-A"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_upheld_appeal_invalidates_the_rating_and_leaves_the_statistics(
    client, db, world, bad, handlers
):
    ev, order = bad
    office, unit = handlers["office"], handlers["unit_a"]
    before = await stats(client, office)
    assert before["bad"] >= 1
    r = await appeal(client, unit, ev["id"])
    assert r.status_code == 201, r.text
    appeal_id = r.json()["id"]
    assert r.json()["state"] == "pending" and r.json()["category_label"] == "误评"
    await db.refresh(order)
    assert order.state == "appealing"
    # While the appeal is pending the rating still counts.
    assert (await stats(client, office))["bad"] == before["bad"]
    r = await decide(client, office, appeal_id, "uphold")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "upheld" and r.json()["decided_by"] == "office"
    await db.refresh(order)
    assert order.state == "invalidated" and order.close_reason == "appeal_upheld"
    after = await stats(client, office)
    assert after["bad"] == before["bad"] - 1 and after["invalid"] == before["invalid"] + 1
    # The rating itself is still on record, unchanged.
    r = await client.get(f"/api/v1/evaluations/{ev['id']}", headers=office)
    assert r.status_code == 200 and r.json()["level"] == 2
    told = (
        (
            await db.execute(
                select(OutboxMessage).where(
                    OutboxMessage.kind == "appeal_decided",
                    OutboxMessage.payload["appeal_id"].as_integer() == appeal_id,
                )
            )
        )
        .scalars()
        .all()
    )
    assert len(told) == 1 and told[0].channel == "sms"


async def test_rejected_appeal_returns_to_rectification(client, db, world, bad, handlers):
    ev, order = bad
    due_before = order.rectify_due_at
    r = await appeal(client, handlers["unit_a"], ev["id"], category="other")
    r = await decide(client, handlers["office"], r.json()["id"], "reject")
    assert r.json()["state"] == "rejected"
    await db.refresh(order)
    assert order.state == "rectifying" and order.rectify_due_at >= due_before
    assert (await db.get(EvaluationStanding, ev["id"])) is None  # it still counts


async def test_appeal_refusals_change_nothing(client, db, world, bad, handlers):
    ev, order = bad
    unit, office = handlers["unit_a"], handlers["office"]
    assert_error(await appeal(client, handlers["unit_b"], ev["id"]), 403)
    case = await make_case(db, world)
    good = await client.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert_error(await appeal(client, unit, good.json()["id"]), 422, "not_a_bad_rating")
    assert_error(await appeal(client, unit, 99999999), 404)
    assert_error(await appeal(client, unit, ev["id"], category="bribery"), 422)
    r = await appeal(client, unit, ev["id"])
    assert r.status_code == 201
    assert_error(await appeal(client, unit, ev["id"]), 409, "duplicate_appeal")
    appeal_id = r.json()["id"]
    assert_error(await decide(client, unit, appeal_id, "uphold"), 403)
    assert_error(
        await decide(client, office, appeal_id, "uphold", register_rater=True),
        422,
        "register_not_allowed",
    )
    assert (await decide(client, office, appeal_id, "reject")).status_code == 200
    assert_error(await decide(client, office, appeal_id, "uphold"), 409, "appeal_decided")
    assert (
        len(
            (await db.execute(select(Appeal).where(Appeal.evaluation_id == ev["id"])))
            .scalars()
            .all()
        )
        == 1
    )


async def test_appeal_after_its_deadline_is_refused(client, db, world, handlers, settings):
    from haochaping.core.calendar import load_calendar
    from haochaping.workorders.context import Deadlines, LoopContext
    from tests.workorders.test_deadlines import _open

    ctx = LoopContext(
        settings=settings,
        deadlines=Deadlines(await load_calendar(db)),
        keys=DataKeys.from_settings(settings),
    )
    order = await _open(db, world, ctx, datetime.now(UTC) - timedelta(days=30))
    await db.commit()
    assert_error(
        await appeal(client, handlers["unit_a"], order.evaluation_id), 422, "appeal_deadline_passed"
    )


async def test_malicious_rater_goes_on_the_register_and_is_held(client, db, world, bad, handlers):
    ev, _order = bad
    office = handlers["office"]
    r = await appeal(client, handlers["unit_a"], ev["id"], category="malicious")
    r = await decide(
        client, office, r.json()["id"], "uphold", register_rater=True, register_days=180
    )
    assert r.status_code == 200 and r.json()["register_rater"] is True
    entries = (await db.execute(select(MaliciousRater))).scalars().all()
    assert {e.kind for e in entries} == {"cert", "phone"}
    assert all(len(e.identity_hash) == 64 for e in entries)  # a keyed hash, not the number
    # The same person rates again (same certificate number): accepted but held.
    applicant = {
        "type": "person",
        "name": "张三",
        "cert_type": "id_card",
        "cert_no": "330102199001010011",
        "phone": "13811112222",
    }
    stats_before = await stats(client, office)
    from haochaping.evaluations.models import Evaluation

    rater = await db.get(Evaluation, ev["id"])
    applicant["cert_no"], applicant["phone"] = rater.rater_cert_no, rater.rater_phone
    case = await make_case(db, world, applicant=applicant)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(
            case_no=case["case_no"], level=1, reasons=[], comment="再给差评"
        ),
    )
    assert r.status_code == 201
    held = await db.get(EvaluationStanding, r.json()["id"])
    assert held is not None and held.standing == "held" and held.reason == "malicious_rater"
    assert (await stats(client, office))["bad"] == stats_before["bad"]
    # A reviewer decides it counts after all.
    assert_error(
        await client.post(
            f"/api/v1/evaluations/{r.json()['id']}/standing",
            headers=handlers["unit_a"],
            json={"standing": "valid", "note": "核实"},
        ),
        403,
    )
    rv = await client.post(
        f"/api/v1/evaluations/{r.json()['id']}/standing",
        headers=office,
        json={"standing": "valid", "note": "经核实为真实诉求"},
    )
    assert rv.status_code == 200
    assert (await stats(client, office))["bad"] == stats_before["bad"] + 1


async def test_appeal_decision_deadline_warns_and_escalates_once(client, db, world, bad, handlers):
    ev, _order = bad
    r = await appeal(client, handlers["unit_a"], ev["id"])
    a = await db.get(Appeal, r.json()["id"])
    soon = a.decide_due_at - timedelta(hours=2)
    assert (await appeal_jobs.sweep(db, soon))["warned"] == 1
    assert (await appeal_jobs.sweep(db, soon))["warned"] == 0
    late = a.decide_due_at + timedelta(hours=1)
    assert (await appeal_jobs.sweep(db, late))["overdue"] == 1
    assert (await appeal_jobs.sweep(db, late))["overdue"] == 0
    mails = (
        (
            await db.execute(
                select(OutboxMessage.kind).where(
                    OutboxMessage.kind.in_(["appeal_warning", "appeal_overdue"]),
                    OutboxMessage.dedupe_key.like(f"%:{a.id}:%"),
                )
            )
        )
        .scalars()
        .all()
    )
    assert sorted(mails) == ["appeal_overdue", "appeal_warning"]


async def test_order_under_appeal_is_not_escalated_by_the_deadline_job(
    client, db, world, bad, handlers
):
    from haochaping.policies.service import PolicyCache
    from haochaping.workorders import jobs

    ev, order = bad
    await appeal(client, handlers["unit_a"], ev["id"])
    far = datetime.now(UTC) + timedelta(days=120)
    await jobs.sweep(
        db,
        policies=PolicyCache(),
        tagset_version="national-2020",
        good_levels=frozenset({3, 4, 5}),
        now=far,
    )
    await db.refresh(order)
    assert order.state == "appealing"


async def test_a_rater_registered_in_one_process_is_held_by_another_at_once(
    settings, engine, sessionmaker, db, world, bad, handlers
):
    # Issue 9: each process cached the register for 30 s and only the deciding process
    # dropped its copy; with Redis, every process sees the new entry at its next rating.
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    apps = [create_app(shared), create_app(shared)]
    for a in apps:
        await startup(a, engine=engine, sessionmaker=sessionmaker)
    one, two = (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://testserver")
        for a in apps
    )
    pad = {"X-Api-Key": world.keys["hall_a_pad"]}
    try:
        ev, _order = bad
        rater = await db.get(Evaluation, ev["id"])
        applicant = {
            "type": "person",
            "name": "张三",
            "cert_type": "id_card",
            "cert_no": rater.rater_cert_no,
            "phone": rater.rater_phone,
        }
        # The second process rates once, so it holds a copy of the register without them.
        warm = await make_case(db, world)
        r = await two.post(
            "/api/v1/evaluations",
            headers=pad,
            json=EvaluationPayloadFactory(case_no=warm["case_no"]),
        )
        assert r.status_code == 201 and await db.get(EvaluationStanding, r.json()["id"]) is None
        r = await appeal(one, handlers["unit_a"], ev["id"], category="malicious")
        r = await decide(
            one,
            handlers["office"],
            r.json()["id"],
            "uphold",
            register_rater=True,
            register_days=180,
        )
        assert r.status_code == 200, r.text
        case = await make_case(db, world, applicant=applicant)
        r = await two.post(
            "/api/v1/evaluations",
            headers=pad,
            json=EvaluationPayloadFactory(
                case_no=case["case_no"], level=1, reasons=[], comment="再给差评"
            ),
        )
        assert r.status_code == 201
        held = await db.get(EvaluationStanding, r.json()["id"])
        assert held is not None and held.standing == "held" and held.reason == "malicious_rater"
    finally:
        for c in (one, two):
            await c.aclose()
        for a in apps:
            await shutdown(a)


async def test_a_registered_rater_writing_the_phone_another_way_is_still_held(
    client, db, world, bad, handlers
):
    ev, _order = bad
    r = await appeal(client, handlers["unit_a"], ev["id"], category="malicious")
    await decide(client, handlers["office"], r.json()["id"], "uphold", register_rater=True)
    rater = await db.get(Evaluation, ev["id"])
    # The same phone with the country code and dashes, and no certificate number at all.
    written = (
        "+86-" + rater.rater_phone[:3] + "-" + rater.rater_phone[3:7] + "-" + rater.rater_phone[7:]
    )
    case = await make_case(
        db, world, applicant={"type": "person", "name": "李四", "phone": written}
    )
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(case_no=case["case_no"], level=1, reasons=[], comment="差"),
    )
    assert r.status_code == 201, r.text
    held = await db.get(EvaluationStanding, r.json()["id"])
    assert held is not None and held.standing == "held" and held.reason == "malicious_rater"
