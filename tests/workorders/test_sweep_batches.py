"""The deadline job in batches: a pass marks at most `DUE_BATCH` orders per deadline kind and
state, mails every order it marks, and leaves the rest to the next pass."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from haochaping.core.outbox_models import OutboxMessage
from haochaping.orgs.models import Org
from haochaping.policies.service import PolicyCache
from haochaping.workorders import jobs, notify
from haochaping.workorders.models import WorkOrder
from tests.workorders.conftest import EMAILS, rate_badly

SECOND = timedelta(seconds=1)


async def _passes(db, now) -> list[jobs.SweepReport]:
    """Passes at `now` until one finds nothing (other tests may have committed orders)."""
    reports = []
    while not reports or any(reports[-1].warned.values()) or any(reports[-1].escalated.values()):
        assert len(reports) < 20
        reports.append(
            await jobs.sweep(
                db,
                policies=PolicyCache(),
                tagset_version="national-2020",
                good_levels=frozenset({3, 4, 5}),
                now=now,
            )
        )
        await db.commit()
    return reports


async def _mails(db, kind: str, ids: set[int]) -> list[tuple[int, str]]:
    rows = (
        await db.execute(
            select(OutboxMessage.payload, OutboxMessage.recipient).where(OutboxMessage.kind == kind)
        )
    ).all()
    return sorted((p["work_order_id"], r) for p, r in rows if p.get("work_order_id") in ids)


async def _org_id(db, code: str) -> int:
    return (await db.execute(select(Org.id).where(Org.code == code))).scalar_one()


async def test_a_pass_marks_a_batch_and_every_order_it_marks_is_mailed(
    client, db, world, handlers, monkeypatch
):
    monkeypatch.setattr(jobs, "DUE_BATCH", 2)
    orders = [(await rate_badly(client, db, world))[1] for _ in range(3)]
    # The third order's unit has no handler of its own: its warning goes to the office.
    dept = await _org_id(db, f"DEPT-M{world.suffix}")
    await db.execute(update(WorkOrder).where(WorkOrder.id == orders[2].id).values(org_id=dept))
    await db.commit()
    a, b, c = (o.id for o in orders)
    warn_at = max(o.verify_warn_at for o in orders) + SECOND
    assert warn_at < min(o.verify_due_at for o in orders)

    reports = await _passes(db, warn_at)
    assert all(r.warned["verify"] <= 2 for r in reports)
    assert sum(r.warned["verify"] for r in reports) >= 3 and len(reports) >= 3
    assert await _mails(db, "deadline_warning", {a, b, c}) == [
        (a, EMAILS["unit_a"]),
        (b, EMAILS["unit_a"]),
        (c, EMAILS["office"]),
    ]

    late = max(o.verify_due_at for o in orders) + SECOND
    reports = await _passes(db, late)
    assert all(r.escalated["verify"] <= 2 for r in reports)
    assert sum(r.escalated["verify"] for r in reports) >= 3 and len(reports) >= 3
    states = set(
        (await db.execute(select(WorkOrder.state).where(WorkOrder.id.in_([a, b, c])))).scalars()
    )
    assert states == {"supervising"}
    assert await _mails(db, "overdue", {a, b, c}) == [
        (a, EMAILS["office"]),
        (b, EMAILS["office"]),
        (c, EMAILS["office"]),
    ]


async def test_recipients_looked_up_together_are_those_looked_up_one_by_one(db, world, handlers):
    org_ids = list((await db.execute(select(Org.id))).scalars())
    who = await notify.Recipients.load(db, org_ids)
    for org_id in [*org_ids, -1]:
        assert who.unit_handlers(org_id) == await notify.unit_handlers(db, org_id)
        assert who.office_handlers(org_id) == await notify.office_handlers(db, org_id)
    hall_a = await _org_id(db, f"HALL-A{world.suffix}")
    assert who.unit_handlers(hall_a) == [EMAILS["unit_a"]]
    assert who.office_handlers(hall_a) == [EMAILS["office"]]
    assert who.name(hall_a) == "上城区市民之家" and who.name(-1) == ""
