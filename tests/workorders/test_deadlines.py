"""Deadlines in Chinese working days, and the deadline job (warnings, overdue escalation)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from haochaping.core.calendar import WorkCalendar, load_calendar
from haochaping.core.outbox_models import OutboxMessage
from haochaping.db.crypto import DataKeys
from haochaping.db.session import make_sessionmaker
from haochaping.policies.schemas import PolicyValues
from haochaping.policies.service import PolicyCache
from haochaping.workorders import jobs
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import Deadlines, LoopContext
from haochaping.workorders.models import WorkOrder, WorkOrderEvent
from tests import factories
from tests.workorders.conftest import rate_badly

SH = ZoneInfo("Asia/Shanghai")


def local(y, m, d, h=10) -> datetime:
    return datetime(y, m, d, h, tzinfo=SH)


def deadlines() -> Deadlines:
    return Deadlines(WorkCalendar([], {}))


@pytest.mark.parametrize(
    ("arrival", "days", "due_day"),
    [
        # National Day 2026: 10-01..10-07 off, Saturday 10-10 a make-up working day.
        (local(2026, 9, 30), 1, (2026, 10, 8)),
        (local(2026, 9, 30), 3, (2026, 10, 10)),
        (local(2026, 9, 30), 15, (2026, 10, 27)),
        # Spring Festival 2026: 02-15..02-23 off.
        (local(2026, 2, 13), 1, (2026, 2, 14)),
        (local(2026, 2, 14), 1, (2026, 2, 24)),
        (local(2026, 2, 13), 5, (2026, 2, 27)),
    ],
)
def test_deadlines_follow_the_official_calendar(arrival, days, due_day):
    due, warn, verified = deadlines().compute(arrival, days, 1)
    assert verified
    assert due.astimezone(SH).date() == date(*due_day)
    # End of day in Asia/Shanghai: 23:59:59 local is 15:59:59 UTC.
    assert (due.astimezone(SH).hour, due.astimezone(SH).minute) == (23, 59)
    assert due.tzinfo is not None and due.astimezone(UTC).hour == 15
    assert warn < due


def test_a_year_the_calendar_does_not_know_is_flagged():
    cal = WorkCalendar([], {})
    year = next(y for y in range(2027, 2040) if not cal.known_year(y))
    due, _warn, verified = Deadlines(cal).compute(local(year, 3, 5), 3, 1)
    assert not verified
    assert due.astimezone(SH).weekday() < 5  # Monday–Friday fallback


def test_remaining_working_days_and_overdue():
    d = deadlines()
    due, _w, _v = d.compute(local(2026, 9, 30), 3, 1)  # due 2026-10-10
    assert d.remaining(due, local(2026, 10, 8)) == 2
    assert d.remaining(due, local(2026, 10, 10, 9)) == 0
    assert d.remaining(due, local(2026, 10, 13)) < 0


async def _open(db, world, ctx, now, **policy):
    case = await factories.make_case(db, world)
    from haochaping.cases.models import Case
    from haochaping.evaluations.models import Evaluation

    case_row = (await db.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
    ev = Evaluation(
        case_id=case_row.id,
        stage="whole",
        eval_count=1,
        channel="pad",
        level=1,
        reasons=[],
        comment="很差",
        tagset_version="national-2020",
        org_id=case_row.org_id,
        region_code="330102",
        rater_type="person",
        rater_phone="13900000000",
        anonymous=False,
        is_public=True,
        evaluated_at=now,
        received_at=now,
    )
    db.add(ev)
    await db.flush()
    row = {c.key: getattr(ev, c.key) for c in Evaluation.__table__.columns}
    return await wo_service.open_for_evaluation(
        db=db, evaluation=row, policy=PolicyValues(**policy), policy_id=None, ctx=ctx, now=now
    )


async def test_open_order_carries_its_deadlines_and_policy(db, world, settings):
    ctx = LoopContext(
        settings=settings,
        deadlines=Deadlines(await load_calendar(db)),
        keys=DataKeys.from_settings(settings),
    )
    order = await _open(db, world, ctx, local(2026, 9, 30).astimezone(UTC), rectify_days=15)
    assert order.verify_due_at.astimezone(SH).date().isoformat() == "2026-10-08"
    assert order.rectify_due_at.astimezone(SH).date().isoformat() == "2026-10-27"
    assert order.policy["rectify_days"] == 15 and order.deadlines_verified


async def test_sweep_warns_then_escalates_once(db, world, settings):
    ctx = LoopContext(
        settings=settings,
        deadlines=Deadlines(await load_calendar(db)),
        keys=DataKeys.from_settings(settings),
    )
    opened = local(2026, 9, 30).astimezone(UTC)
    order = await _open(db, world, ctx, opened)
    policies = PolicyCache()
    good = frozenset({3, 4, 5})
    # Before the warning time: nothing.
    report = await jobs.sweep(
        db,
        policies=policies,
        tagset_version="national-2020",
        good_levels=good,
        now=opened + timedelta(hours=1),
    )
    assert report.warned["verify"] == 0 and sum(report.escalated.values()) == 0
    # On the last day: a warning, once.
    on_due_day = local(2026, 10, 8, 9).astimezone(UTC)
    report = await jobs.sweep(
        db, policies=policies, tagset_version="national-2020", good_levels=good, now=on_due_day
    )
    assert report.warned["verify"] == 1
    report = await jobs.sweep(
        db, policies=policies, tagset_version="national-2020", good_levels=good, now=on_due_day
    )
    assert report.warned["verify"] == 0
    # After the verify deadline: escalated to supervision, once.
    late = local(2026, 10, 9, 9).astimezone(UTC)
    report = await jobs.sweep(
        db, policies=policies, tagset_version="national-2020", good_levels=good, now=late
    )
    assert report.escalated["verify"] == 1
    await db.refresh(order)
    assert order.state == "supervising" and order.overdue_at is not None
    report = await jobs.sweep(
        db, policies=policies, tagset_version="national-2020", good_levels=good, now=late
    )
    assert sum(report.escalated.values()) == 0
    kinds = (
        (
            await db.execute(
                select(WorkOrderEvent.action).where(WorkOrderEvent.work_order_id == order.id)
            )
        )
        .scalars()
        .all()
    )
    assert kinds == ["open", "escalate"]


async def test_two_job_runs_at_once_escalate_and_mail_once(engine, settings):
    """Two processes' passes over the same overdue orders: one escalation, one mail each."""
    maker = make_sessionmaker(engine)
    suffix = f"-{uuid.uuid4().hex[:6]}"
    async with maker() as db:
        world = await factories.build_world(db, suffix=suffix)
        from sqlalchemy import update

        from haochaping.accounts.models import User

        await db.execute(
            update(User)
            .where(User.username.in_([world.users["unit_a"], world.users["office"]]))
            .values(email=f"h{suffix}@x.example")
        )
        await db.commit()
        ctx = LoopContext(
            settings=settings,
            deadlines=Deadlines(await load_calendar(db)),
            keys=DataKeys.from_settings(settings),
        )
        opened = local(2026, 9, 30).astimezone(UTC)
        ids = [(await _open(db, world, ctx, opened)).id for _ in range(5)]
        await db.commit()
    late = local(2026, 11, 20).astimezone(UTC)

    async def one_pass():
        async with maker() as db:
            report = await jobs.sweep(
                db,
                policies=PolicyCache(),
                tagset_version="national-2020",
                good_levels=frozenset({3, 4, 5}),
                now=late,
            )
            await db.commit()
            return report

    reports = await asyncio.gather(one_pass(), one_pass())
    async with maker() as db:
        escalations = (
            await db.execute(
                select(func.count())
                .select_from(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id.in_(ids), WorkOrderEvent.action == "escalate")
            )
        ).scalar_one()
        states = set(
            (await db.execute(select(WorkOrder.state).where(WorkOrder.id.in_(ids)))).scalars()
        )
        mails = (
            (
                await db.execute(
                    select(OutboxMessage.dedupe_key).where(
                        OutboxMessage.kind == "overdue",
                        OutboxMessage.recipient == f"h{suffix}@x.example",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert escalations == 5 and states == {"supervising"}
    assert sum(sum(r.escalated.values()) for r in reports) >= 5
    assert len(mails) == len(set(mails)) == 5


async def test_policy_inherits_and_overrides_by_region(client, db, world, handlers):
    office = handlers["office"]
    r = await client.post(
        "/api/v1/policies",
        headers=office,
        json={"region_code": "330000", "values": {"rectify_days": 10}},
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/policies",
        headers=office,
        json={"region_code": "330102", "values": {"verify_days": 3}},
    )
    assert r.json()["effective"]["rectify_days"] == 10
    assert r.json()["effective"]["verify_days"] == 3 and r.json()["version"] == 1
    r = await client.get(
        "/api/v1/policies/effective", params={"region_code": "330100"}, headers=office
    )
    assert r.json()["rectify_days"] == 10 and r.json()["verify_days"] == 1
    factories.assert_error(
        await client.post(
            "/api/v1/policies",
            headers=handlers["unit_a"],
            json={"region_code": "330102", "values": {"verify_days": 3}},
        ),
        403,
    )
    factories.assert_error(
        await client.post(
            "/api/v1/policies",
            headers=office,
            json={"region_code": "330102", "values": {"bad_levels": [4, 5]}},
        ),
        422,
    )
    # A bad rating in the county now opens an order under the county's numbers.
    _ev, order = await rate_badly(client, db, world)
    assert order.policy["verify_days"] == 3 and order.policy["rectify_days"] == 10
    assert order.policy_id is not None


async def test_calendar_status_warns_about_missing_years(client, handlers):
    r = await client.get("/api/v1/calendar/status", headers=handlers["office"])
    assert r.status_code == 200
    years = {y["year"]: y["known"] for y in r.json()["years"]}
    assert years[2026] is True
    if not all(years.values()):
        assert "工作日历缺失" in r.json()["warning"]


async def test_default_rating_only_where_a_policy_turns_it_on(client, db, world, handlers):
    """Off by default; a region's rule records one marked default rating, reported apart."""
    from haochaping.cases.models import Case
    from haochaping.evaluations.models import Evaluation

    old = await factories.make_case(
        db,
        world,
        accepted_at=(datetime.now(UTC) - timedelta(days=12)).isoformat(),
        received_at=(datetime.now(UTC) - timedelta(days=12, hours=1)).isoformat(),
        completed_at=(datetime.now(UTC) - timedelta(days=10)).isoformat(),
    )
    case_id = (await db.execute(select(Case.id).where(Case.case_no == old["case_no"]))).scalar_one()
    policies = PolicyCache()
    report = await jobs.sweep(
        db, policies=policies, tagset_version="national-2020", good_levels=frozenset({3, 4, 5})
    )
    assert report.default_ratings == 0  # no jurisdiction asked for it
    r = await client.post(
        "/api/v1/policies",
        headers=handlers["office"],
        json={
            "region_code": "330102",
            "values": {"default_rating": {"enabled": True, "after_days": 7, "level": 5}},
        },
    )
    assert r.status_code == 201, r.text
    for _ in range(2):  # idempotent: the second pass adds nothing
        await jobs.sweep(
            db,
            policies=PolicyCache(),
            tagset_version="national-2020",
            good_levels=frozenset({3, 4, 5}),
        )
    rows = (
        (await db.execute(select(Evaluation).where(Evaluation.case_id == case_id))).scalars().all()
    )
    assert [(e.level, e.is_default, e.channel) for e in rows] == [(5, True, "system")]
    stats = (
        await client.get(
            "/api/v1/stats/summary", params={"org_code": "HALL-A"}, headers=handlers["office"]
        )
    ).json()
    assert stats["default_ratings"] >= 1
