"""The summary and the time series, against hand-computed fixtures (docs/metrics.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haochaping.analytics import metrics
from haochaping.evaluations.standing import Standing, set_standing
from haochaping.workorders.models import CallbackAttempt
from tests.factories import (
    WORLD_ADMIN,
    add_rating,
    add_work_order,
    assert_error,
    bearer_headers,
)

SUMMARY = "/api/v1/stats/summary"
SERIES = "/api/v1/stats/timeseries"
DAY = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)


async def publish(client, world, values: dict, region_code: str = "330102") -> None:
    """A policy version in force since 2026-01-01 (a figure uses the policy in force at the
    end of its range)."""
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": region_code, "values": values, "effective_from": "2026-01-01"},
    )
    assert r.status_code == 201, r.text


async def _hall_a(db, world):
    """Six counted ratings (5, 5, 4, 3, 2, 1) at HALL-A and four that do not count: a
    default rating, an invalid one, a held one, a follow-up; work orders for the two bad
    ones (one exemplary, one late and escalated) and for the invalid one."""
    rows = {}
    for n, level in enumerate([5, 5, 4, 3, 2, 1]):
        rows[n] = await add_rating(db, world, level=level, at=DAY + timedelta(minutes=n))
    await add_rating(db, world, level=3, at=DAY, is_default=True)
    invalid = await add_rating(db, world, level=1, at=DAY)
    held = await add_rating(db, world, level=2, at=DAY)
    await add_rating(db, world, level=5, at=DAY, eval_count=2)
    await set_standing(
        db=db,
        evaluation_id=invalid.id,
        standing=Standing.INVALID,
        reason="appeal_upheld",
        actor="t",
    )
    await set_standing(
        db=db, evaluation_id=held.id, standing=Standing.HELD, reason="detector", actor="t"
    )
    due = DAY + timedelta(days=3)
    good = await add_work_order(
        db,
        rows[4],
        state="closed",
        verify_due_at=due,
        verified_at=DAY + timedelta(hours=2),
        rectify_due_at=due + timedelta(days=10),
        rectified_at=due,
        closed_at=due + timedelta(days=1),
    )
    late = await add_work_order(
        db,
        rows[5],
        state="supervising",
        verify_due_at=due,
        verified_at=due + timedelta(days=1),
        rectify_due_at=due + timedelta(days=10),
        rectified_at=due + timedelta(days=12),
        supervising_at=due + timedelta(days=13),
        overdue_at=due + timedelta(days=13),
        escalations=1,
    )
    await add_work_order(db, invalid, state="invalidated", verify_due_at=due)
    db.add_all(
        [
            CallbackAttempt(
                work_order_id=good.id,
                method="phone",
                reached=True,
                verdict="satisfied",
                actor_name="t",
            ),
            CallbackAttempt(work_order_id=late.id, method="phone", reached=False, actor_name="t"),
            CallbackAttempt(
                work_order_id=late.id,
                method="phone",
                reached=True,
                verdict="dissatisfied",
                actor_name="t",
            ),
        ]
    )
    await db.commit()
    return rows


async def test_summary_counts_every_metric_by_hand(db, world):
    await _hall_a(db, world)
    s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=SINCE, until=UNTIL)
    assert (s.total, s.good, s.bad) == (6, 4, 2)
    assert s.good_rate == pytest.approx(4 / 6, abs=1e-6)
    assert s.bad_rate == pytest.approx(2 / 6, abs=1e-6)
    assert s.score == pytest.approx(round(37 / 6, 3))  # 10+10+8+6+3+0
    assert (s.default_ratings, s.invalid, s.held) == (1, 1, 1)
    assert (s.opened, s.verified_on_time, s.rectified_on_time) == (2, 1, 1)
    assert (s.called_back, s.callback_satisfied, s.supervised, s.overdue_open) == (2, 1, 1, 1)
    assert s.rectified_on_time_rate == 0.5  # 1 rectified on time / 2 valid bad reviews
    assert s.callback_rate == 1.0
    assert s.callback_satisfied_rate == 0.5
    assert s.verified_on_time_rate == 0.5


async def test_a_regions_policy_changes_good_levels_points_and_rectified_on_time(db, world, client):
    await _hall_a(db, world)
    await publish(
        client,
        world,
        {"good_levels": [4, 5], "level_points": [10, 9, 5, 1, 0], "rectified_on_time": "closed"},
    )
    s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=SINCE, until=UNTIL)
    # Level 3 is now neither good nor bad (中评).
    assert (s.total, s.good, s.bad) == (6, 3, 2)
    assert s.good_rate == 0.5
    assert s.score == pytest.approx(round(35 / 6, 3))  # 10+10+9+5+1+0
    # Rectified on time now means closed by the rectification deadline: only the first.
    assert s.rectified_on_time == 1
    # The province's office (region 330000, no policy of its own) keeps the national defaults.
    office = await metrics.summary(db=db, actor=WORLD_ADMIN, region_code="330000", since=SINCE)
    assert (office.good, office.score) == (4, pytest.approx(round(37 / 6, 3)))


async def test_the_funnel_is_the_same_whichever_way_it_is_read(db, world, client):
    """With the default bad levels (1, 2) PostgreSQL reads a subtree's bad ratings from the
    partial index of bad ratings; with level 3 bad too, from the work orders of the range:
    the same orders either way (level 3 opened none here), and nothing outside the range or
    the subtree."""
    await _hall_a(db, world)
    outside = [
        await add_rating(db, world, level=1, at=SINCE - timedelta(hours=1)),  # before
        await add_rating(db, world, level=2, at=UNTIL),  # after (exclusive)
        await add_rating(db, world, level=1, at=DAY, org="HALL-B", window="W-B1", staff="S-B1"),
    ]
    for rating in outside:
        await add_work_order(db, rating, state="closed", verify_due_at=DAY, verified_at=DAY)
    await db.commit()
    funnel = ("opened", "verified_on_time", "rectified_on_time", "called_back", "supervised")
    s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=SINCE, until=UNTIL)
    assert [getattr(s, f) for f in funnel] == [2, 1, 1, 2, 1]
    await publish(client, world, {"bad_levels": [1, 2, 3]})
    s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=SINCE, until=UNTIL)
    assert s.bad == 3
    assert [getattr(s, f) for f in funnel] == [2, 1, 1, 2, 1]


async def test_held_ratings_count_when_the_policy_says_so(db, world, client):
    await _hall_a(db, world)
    await publish(client, world, {"held_ratings_count": True})
    s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code="HALL-A", since=SINCE, until=UNTIL)
    assert (s.total, s.bad, s.held) == (7, 3, 1)


async def test_summary_api_answers_the_same_figures_in_scope(db, world, client):
    await _hall_a(db, world)
    await add_rating(db, world, level=1, at=DAY, org="HALL-B", window="W-B1", staff="S-B1")
    await db.commit()
    office = await bearer_headers(client, world.users["office"])
    r = await client.get(SUMMARY, headers=office, params={"since": SINCE.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 7
    unit_a = await bearer_headers(client, world.users["unit_a"])
    r = await client.get(SUMMARY, headers=unit_a, params={"since": SINCE.isoformat()})
    body = r.json()
    assert (body["total"], body["good"], body["opened"], body["callback_rate"]) == (6, 4, 2, 1.0)
    # An assessor (监督查评) reads everything located in their organisation's region, here
    # the province: the office's figures among them (the province may hold other test worlds
    # committed beside this one; tests/analytics/test_assessor_scope.py counts a region).
    assessor = await bearer_headers(client, world.users["assessor"])
    params = {"since": SINCE.isoformat(), "org_code": "OFFICE"}
    r = await client.get(SUMMARY, headers=assessor, params=params)
    assert r.json()["total"] == 7
    # A hall manager asking for the other hall: outside their subtree.
    r = await client.get(SUMMARY, headers=unit_a, params={"org_code": "HALL-B"})
    assert_error(r, 403, "out_of_scope")
    # A window: the ratings given at it (window_id), here all six of HALL-A's.
    r = await client.get(SUMMARY, headers=office, params={"org_code": "W-A1"})
    assert r.json()["total"] == 6
    r = await client.get(SUMMARY, headers=office, params={"org_code": "W-A2"})
    assert r.json()["total"] == 0 and r.json()["good_rate"] is None


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"org_code": "NOPE"}, 404, "org_not_found"),
        ({"item_code": "NOPE"}, 404, "item_not_found"),
        ({"region_code": "990000"}, 404, "region_not_found"),
        (
            {"since": "2026-03-01T00:00:00+08:00", "until": "2026-02-01T00:00:00+08:00"},
            422,
            "invalid_range",
        ),
        (
            {"since": "2020-01-01T00:00:00+08:00", "until": "2026-02-01T00:00:00+08:00"},
            422,
            "range_too_long",
        ),
        ({"since": "2019-01-01T00:00:00+08:00"}, 422, "range_too_long"),  # until now
    ],
)
async def test_summary_refusals(world, client, params, status, code):
    headers = await bearer_headers(client, world.users["office"])
    for path, extra in [(SUMMARY, {}), (SERIES, {}), ("/api/v1/stats/breakdown", {"by": "level"})]:
        r = await client.get(path, headers=headers, params={**params, **extra})
        assert_error(r, status, code)


async def test_item_and_region_filters(db, world):
    await _hall_a(db, world)
    await add_rating(db, world, level=4, at=DAY, item="ITEM-B1")
    await add_rating(db, world, level=2, at=DAY, org="HALL-B", window="W-B1", item="ITEM-B1")
    await db.commit()
    item_b = await metrics.summary(db=db, actor=WORLD_ADMIN, item_code="ITEM-B1", since=SINCE)
    assert (item_b.total, item_b.good, item_b.bad) == (2, 1, 1)
    # Region 330102 (上城区) holds HALL-A only; 330100 (杭州市) also HALL-B.
    county = await metrics.summary(db=db, actor=WORLD_ADMIN, region_code="330102", since=SINCE)
    city = await metrics.summary(db=db, actor=WORLD_ADMIN, region_code="330100", since=SINCE)
    assert (county.total, city.total) == (7, 8)


async def test_timeseries_days_are_beijing_days(db, world, client):
    # 15:59 UTC is 23:59 in Beijing (March 1st); 16:00 UTC is already March 2nd.
    await add_rating(db, world, level=5, at=datetime(2026, 3, 1, 15, 59, tzinfo=UTC))
    await add_rating(db, world, level=1, at=datetime(2026, 3, 1, 16, 0, tzinfo=UTC))
    await add_rating(db, world, level=4, at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    await add_rating(db, world, level=3, at=datetime(2026, 3, 31, 17, 0, tzinfo=UTC))  # Apr 1
    await db.commit()
    since = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # March 1st, 00:00 Beijing
    until = datetime(2026, 4, 1, 16, 0, tzinfo=UTC)  # April 2nd, 00:00 Beijing
    series = await metrics.timeseries(
        db=db, actor=WORLD_ADMIN, granularity="day", since=since, until=until
    )
    by_day = {p.period: p for p in series.items}
    assert len(series.items) == 32  # every day of March and April 1st, empty ones too
    assert (by_day["2026-03-01"].total, by_day["2026-03-01"].score) == (1, 10.0)
    assert (by_day["2026-03-02"].total, by_day["2026-03-02"].bad) == (2, 1)
    assert by_day["2026-03-02"].good_rate == 0.5
    assert by_day["2026-03-02"].score == 4.0  # (0 + 8) / 2
    assert by_day["2026-04-01"].total == 1
    assert by_day["2026-03-15"].total == 0 and by_day["2026-03-15"].score is None
    months = await metrics.timeseries(
        db=db, actor=WORLD_ADMIN, granularity="month", since=since, until=until
    )
    assert [(p.period, p.total) for p in months.items] == [("2026-03", 3), ("2026-04", 1)]
    weeks = await metrics.timeseries(
        db=db, actor=WORLD_ADMIN, granularity="week", since=since, until=until
    )
    by_week = {p.period: p.total for p in weeks.items}
    # 2026-03-01 is a Sunday (ISO week 9); March 2nd opens week 10.
    assert (by_week["2026-W09"], by_week["2026-W10"], by_week["2026-W14"]) == (1, 2, 1)
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get(
        SERIES,
        headers=headers,
        params={"granularity": "month", "since": since.isoformat(), "until": until.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"][0] == {
        "period": "2026-03",
        "total": 3,
        "good_rate": pytest.approx(2 / 3, abs=1e-6),
        "bad": 1,
        "score": 6.0,
    }
    r = await client.get(SERIES, headers=headers, params={"granularity": "hour"})
    assert_error(r, 422)


@pytest.mark.parametrize(
    "values",
    [
        {"good_levels": [2, 3, 4, 5]},  # overlaps the bad levels 1, 2
        {"good_levels": [3, 4]},  # 非常满意 must be good
        {"level_points": [10, 8, 6]},
        {"level_points": [10, 8, 6, 3, -1]},
        {"rectified_on_time": "sometime"},
        {"ranking_metric": "volume"},
        {"min_sample": 0},
        {"bottom_n": 0},
        {"bottom_k": 25},
        {"public_min_cell": 0},
    ],
)
async def test_policy_refuses_figures_that_make_no_sense(world, client, values):
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies", headers=headers, json={"region_code": "330102", "values": values}
    )
    assert_error(r, 422)
