"""主动评价率 = rated cases / completed cases, by hand (docs/metrics.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from haochaping.analytics import metrics
from haochaping.cases.models import Case
from tests.factories import WORLD_ADMIN, add_rating, make_case

NOV = datetime(2026, 11, 10, 2, tzinfo=UTC)
OCT = datetime(2026, 10, 10, 2, tzinfo=UTC)


async def _case(db, world, completed: datetime, **overrides) -> Case:
    payload = await make_case(
        db,
        world,
        received_at=(completed.replace(hour=0)).isoformat(),
        accepted_at=(completed.replace(hour=1)).isoformat(),
        completed_at=completed.isoformat(),
        **overrides,
    )
    return (await db.execute(select(Case).where(Case.case_no == payload["case_no"]))).scalar_one()


async def _rate(db, world, case: Case, **fields) -> None:
    await add_rating(db, world, level=5, at=NOV, case_id=case.id, **fields)


async def test_active_rating_rate_by_hand(db, world):
    rated = await _case(db, world, NOV)
    await _rate(db, world, rated)
    by_default = await _case(db, world, NOV)  # only a system default rating: not rated
    await _rate(db, world, by_default, is_default=True)
    await _case(db, world, NOV)  # completed, never rated
    twice = await _case(db, world, NOV)  # a first rating and a follow-up: one rated case
    await _rate(db, world, twice)
    await _rate(db, world, twice, eval_count=2)
    october = await _case(db, world, OCT)  # completed before the month
    await _rate(db, world, october)
    other_hall = await _case(
        db, world, NOV, org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    await _rate(db, world, other_hall, org="HALL-B", window="W-B1", staff="S-B1", item="ITEM-B1")
    await db.commit()
    since, until = datetime(2026, 10, 31, 16, tzinfo=UTC), datetime(2026, 11, 30, 16, tzinfo=UTC)
    hall_a = await metrics.active_rating(
        db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=since, until=until
    )
    assert (hall_a.completed, hall_a.rated, hall_a.rate) == (4, 2, 0.5)
    whole = await metrics.active_rating(db=db, actor=WORLD_ADMIN, since=since, until=until)
    assert (whole.completed, whole.rated) == (5, 3)
    window = await metrics.active_rating(
        db=db, actor=WORLD_ADMIN, org_code="W-A2", since=since, until=until
    )
    assert (window.completed, window.rated, window.rate) == (0, 0, None)
