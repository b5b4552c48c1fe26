"""Kept rankings of closed periods (analytics/snapshots.py): read back exactly as computed,
forgotten on a standing change in their range and on a directory change, kept across changes
that do not touch them, never for the live month; the scheduler's warm-up keeps what a
provincial office asks, and the API answers the same from a kept ranking as from a fresh one.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, insert, select, text, update

from haochaping import scheduler
from haochaping.analytics import jobs, metrics, snapshots
from haochaping.analytics import periods as P
from haochaping.analytics.models import StatRankingSnapshot
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, StandingEvent, set_standing
from haochaping.orgs.models import DirectoryChange, Item, Org, Region, Staff
from tests.factories import WORLD_ADMIN, add_rating, bearer_headers

WINDOWS = {"W-A1": [5, 5, 4], "W-A2": [5, 3, 1], "W-B1": [4, 4, 2]}


def _months() -> tuple[str, str]:
    last = P.current_period("month", utcnow()).previous()
    return last.label, last.shift(-3).label


async def _rate(db, world, month: str) -> list:
    start, _ = P.parse_period(month).bounds()
    rows = []
    for window, levels in WINDOWS.items():
        hall = "HALL-A" if window.startswith("W-A") else "HALL-B"
        for n, level in enumerate(levels):
            at = start + timedelta(days=3, hours=n)
            rows.append(
                await add_rating(db, world, level=level, at=at, org=hall, window=window, staff=None)
            )
    return rows


async def _settle(db) -> None:
    """Test setup: the world's directory and standing changes were made an hour ago (on
    PostgreSQL a change younger than the intake grace may not have committed, so a kept
    answer computed now would not hold until then)."""
    if db.bind.dialect.name == "postgresql":
        recent = utcnow() - timedelta(hours=1)
        for table in (DirectoryChange, StandingEvent):
            await db.execute(
                update(table)
                .where(table.created_at > recent)
                .values(created_at=table.created_at - text("interval '1 hour'"))
            )
    await db.commit()


async def _ranking(db, tier: str, period: str | None, keep: bool = False) -> metrics.Rankings:
    return await metrics.rankings(
        db=db,
        actor=WORLD_ADMIN,
        tier=tier,  # type: ignore[arg-type]
        period=period,
        keep=keep,
    )


def _answer(r: metrics.Rankings) -> tuple:
    return (r.tier, r.period, r.since, r.until, r.items, r.unranked, r.formula, r.min_sample)


async def test_a_closed_months_ranking_is_kept_and_read_back_exactly(db, world):
    last, _ = _months()
    await _rate(db, world, last)
    await _rate(db, world, P.parse_period(last).previous().label)
    await _settle(db)
    for tier in metrics.TIERS:
        fresh = await _ranking(db, tier, last, keep=True)
        await db.commit()
        assert not fresh.kept
        again = await _ranking(db, tier, last)
        assert again.kept, tier
        assert _answer(again) == _answer(fresh), tier
    window = await _ranking(db, "window", last)
    assert {r.code for r in window.items + window.unranked} == set(WINDOWS)


async def test_a_standing_change_in_the_range_forgets_it_and_one_outside_does_not(db, world):
    last, older = _months()
    ratings = await _rate(db, world, last)
    old_ratings = await _rate(db, world, older)
    await _settle(db)
    kept = await _ranking(db, "window", last, keep=True)
    await db.commit()
    # A rating three months earlier is invalidated: outside the ranking's range.
    await set_standing(
        db=db,
        evaluation_id=old_ratings[0].id,
        standing=Standing.INVALID,
        reason="review",
        actor="test",
    )
    await db.commit()
    still = await _ranking(db, "window", last)
    assert still.kept and _answer(still) == _answer(kept)
    # One of the month's own ratings is invalidated: the kept answer no longer holds.
    await set_standing(
        db=db, evaluation_id=ratings[0].id, standing=Standing.INVALID, reason="review", actor="t"
    )
    await db.commit()
    after = await _ranking(db, "window", last)
    assert not after.kept
    totals = {r.code: r.total for r in after.items + after.unranked}
    assert totals["W-A1"] == len(WINDOWS["W-A1"]) - 1


async def test_a_directory_change_forgets_it_and_a_photo_does_not(db, world):
    last, _ = _months()
    await _rate(db, world, last)
    await _settle(db)
    kept = await _ranking(db, "window", last, keep=True)
    await db.commit()
    # A staff member's photo is no part of any ranking.
    await db.execute(update(Staff).where(Staff.staff_no == "S-A1").values(photo_key="k" * 32))
    await db.commit()
    still = await _ranking(db, "window", last)
    assert still.kept and _answer(still) == _answer(kept)
    await db.execute(update(Org).where(Org.code == "W-A1").values(name="一号综合窗口"))
    await db.commit()
    after = await _ranking(db, "window", last)
    assert not after.kept
    names = {r.code: r.name for r in after.items + after.unranked}
    assert names["W-A1"] == "一号综合窗口"


async def test_every_directory_table_notes_its_changes(db, world):
    """The triggers of migration 0034 are all there at head (a later table rebuild on SQLite
    would drop them)."""

    async def noted() -> int:
        return int((await db.execute(select(func.count()).select_from(DirectoryChange))).scalar())

    office = (await db.execute(select(Org).where(Org.code == "OFFICE"))).scalar_one()
    steps = [
        insert(Region).values(
            code="339999", name="测试区", parent_code="330000", tier=3, path="/330000/339999/"
        ),
        update(Region).where(Region.code == "339999").values(name="测试新区"),
        insert(Org).values(
            code="T-ORG",
            name="测试窗口",
            kind="window",
            parent_id=office.id,
            region_code="339999",
            path=f"{office.path}T-ORG/",
            created_at=utcnow(),
        ),
        update(Org).where(Org.code == "T-ORG").values(name="测试新窗口"),
        insert(Staff).values(staff_no="T-S", name="测试", org_id=office.id, created_at=utcnow()),
        update(Staff).where(Staff.staff_no == "T-S").values(name="测试二"),
        insert(Item).values(code="T-I", name="测试事项", org_id=office.id, created_at=utcnow()),
        update(Item).where(Item.code == "T-I").values(name="测试事项二"),
        delete(Item).where(Item.code == "T-I"),
        delete(Staff).where(Staff.staff_no == "T-S"),
        delete(Org).where(Org.code == "T-ORG"),
        delete(Region).where(Region.code == "339999"),
    ]
    for step in steps:
        before = await noted()
        await db.execute(step)
        assert await noted() == before + 1, str(step)
    await db.rollback()


async def test_the_live_month_is_never_kept(db, world):
    current = P.current_period("month", utcnow()).label
    now = utcnow()
    await add_rating(db, world, level=5, at=now - timedelta(minutes=1))
    await _settle(db)
    live = await _ranking(db, "window", None, keep=True)
    await db.commit()
    assert live.live and not live.kept
    stored = await db.execute(
        select(func.count())
        .select_from(StatRankingSnapshot)
        .where(StatRankingSnapshot.period == current)
    )
    assert stored.scalar() == 0
    assert not (await _ranking(db, "window", None)).kept


async def test_warm_keeps_an_offices_rankings_and_the_api_answers_the_same(
    db, world, client, sessionmaker
):
    last, _ = _months()
    await _rate(db, world, last)
    await _rate(db, world, P.parse_period(last).previous().label)
    await _settle(db)
    headers = await bearer_headers(client, world.users["admin"])
    url = f"/api/v1/stats/rankings?tier=window&period={last}"
    computed = await client.get(url, headers=headers)
    assert computed.status_code == 200, computed.text
    assert (
        await metrics.kept_rankings_json(db=db, actor=WORLD_ADMIN, tier="window", period=last)
        is None
    )

    first = await jobs.warm(sessionmaker, budget=120, org_codes=["OFFICE"], region_codes=[])
    questions = len(metrics.TIERS) * (jobs.WARM_MONTHS + jobs.WARM_QUARTERS + jobs.WARM_YEARS)
    assert (first.kept, first.held, first.left) == (questions, 0, False)
    again = await jobs.warm(sessionmaker, budget=120, org_codes=["OFFICE"], region_codes=[])
    assert (again.kept, again.held) == (0, questions)
    assert "榜单快照" in str(again)

    assert (await _ranking(db, "window", last)).kept
    # The API serves the kept answer's JSON as stored: the same document as computed.
    stored = await metrics.kept_rankings_json(db=db, actor=WORLD_ADMIN, tier="window", period=last)
    assert stored is not None
    from_kept = await client.get(url, headers=headers)
    assert from_kept.status_code == 200
    assert from_kept.headers["content-type"] == "application/json"
    assert from_kept.content == stored.encode()
    assert from_kept.json() == computed.json()


async def test_clear_forgets_every_kept_ranking(db, world):
    last, _ = _months()
    await _rate(db, world, last)
    await _settle(db)
    await _ranking(db, "window", last, keep=True)
    await db.commit()
    assert await snapshots.clear(db) >= 1
    await db.commit()
    assert not (await _ranking(db, "window", last)).kept


async def test_a_scheduler_pass_keeps_rankings_but_not_the_first_of_a_process(app, db, world):
    last, _ = _months()
    await _rate(db, world, last)
    await _settle(db)

    async def kept() -> int:
        return int(
            (await db.execute(select(func.count()).select_from(StatRankingSnapshot))).scalar()
        )

    app.state.settings = app.state.settings.model_copy(update={"ranking_warm_seconds": 3})
    before = await kept()
    await scheduler.run_pass(app.state, warm_rankings=False)  # a loop's first pass
    assert await kept() == before
    await scheduler.run_pass(app.state)
    assert await kept() > before
