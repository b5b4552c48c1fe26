"""Rankings and the consecutive-bottom list, against hand-computed fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haochaping.analytics import metrics
from haochaping.analytics.periods import parse_period
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from tests.factories import ADMIN, add_rating, assert_error, bearer_headers

RANKINGS = "/api/v1/stats/rankings"
BOTTOM = "/api/v1/stats/bottom"


async def _windows(db, world, client, min_sample: int = 2) -> None:
    """Three more windows in HALL-B, and a province policy ranking from 2 ratings."""
    for code in ("W-C1", "W-C2", "W-C3"):
        await org_service.create_org(
            db=db,
            actor=ADMIN,
            data=org_schemas.OrgCreate(
                code=code,
                name=f"{code}窗口",
                kind="window",
                parent_code="HALL-B",
                region_code="330100",
            ),
        )
    await db.commit()
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "values": {"min_sample": min_sample},
            "effective_from": "2025-01-01",
        },
    )
    assert r.status_code == 201, r.text


async def _rate(db, world, window: str, levels: list[int], month: str) -> None:
    start, _ = parse_period(month).bounds()
    hall = "HALL-A" if window.startswith("W-A") else "HALL-B"
    for n, level in enumerate(levels):
        at = start + timedelta(days=2, hours=n)
        await add_rating(db, world, level=level, at=at, org=hall, window=window, staff=None)


NOVEMBER = {
    "W-A1": [5, 5],  # score 10
    "W-A2": [5, 4],  # 9
    "W-B1": [4, 5],  # 9: tied with W-A2
    "W-C1": [3, 3],  # 6, good rate 1.0
    "W-C2": [5, 4, 2, 2],  # 6 too ((10+8+3+3)/4), good rate 0.5: below W-C1
    "W-C3": [5],  # one rating: under the minimum sample
}
OCTOBER = {"W-A2": [5, 5], "W-A1": [4, 4], "W-C2": [2, 2], "W-C1": [5]}


async def test_ranking_ties_min_sample_tie_break_and_rank_change(db, world, client):
    await _windows(db, world, client)
    for month, data in (("2026-11", NOVEMBER), ("2026-10", OCTOBER)):
        for window, levels in data.items():
            await _rate(db, world, window, levels, month)
    await db.commit()
    r = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2026-11")
    ranked = [(x.code, x.rank, x.score, x.rank_change) for x in r.items]
    assert ranked == [
        ("W-A1", 1, 10.0, 1),  # second in October
        ("W-A2", 2, 9.0, -1),  # first in October
        ("W-B1", 2, 9.0, None),  # tie: ranked alike; not ranked in October
        ("W-C1", 4, 6.0, None),  # competition ranking: 1, 2, 2, 4; under the minimum before
        ("W-C2", 5, 6.0, -2),  # same score, lower good rate; third in October
    ]
    assert [(x.code, x.rank, x.total) for x in r.unranked] == [("W-C3", None, 1)]
    assert (r.min_sample, r.period, r.live) == (2, "2026-11", False)
    assert r.formula["metric"] == "score" and r.formula["tie_break"] == "good_rate"
    # Live: the current month, with the same answer when "now" is in November.
    live = await metrics.rankings(
        db=db, actor=ADMIN, tier="window", now=datetime(2026, 11, 20, tzinfo=UTC)
    )
    assert live.live and [x.code for x in live.items] == [x.code for x in r.items]
    # A quarter counts both months: W-A2 has 4 ratings (5, 5, 5, 4).
    quarter = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2026-Q4")
    assert quarter.period == "2026-Q4"
    assert {x.code: x.total for x in quarter.items}["W-A2"] == 4
    # Halls: HALL-A 4 ratings of 5, 5, 5, 4 (9.5) above HALL-B (9 ratings).
    halls = await metrics.rankings(db=db, actor=ADMIN, tier="hall", period="2026-11")
    assert [(x.code, x.rank, x.total) for x in halls.items] == [("HALL-A", 1, 4), ("HALL-B", 2, 9)]


async def test_ranking_by_good_rate_in_a_regions_policy(db, world, client):
    await _windows(db, world, client)
    for window, levels in NOVEMBER.items():
        await _rate(db, world, window, levels, "2026-11")
    await db.commit()
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "values": {"ranking_metric": "good_rate", "min_sample": 4},
            "effective_from": "2025-06-01",
        },
    )
    assert r.status_code == 201, r.text
    r = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2026-11")
    assert [(x.code, x.rank) for x in r.items] == [("W-C2", 1)]  # the only one with 4
    assert {x.code for x in r.unranked} == {"W-A1", "W-A2", "W-B1", "W-C1", "W-C3"}
    assert r.formula["metric"] == "good_rate" and r.min_sample == 4


def _month_data(worst: list[int]) -> dict[str, list[int]]:
    return {"W-A1": [5, 5], "W-A2": [5, 4], "W-C2": worst}


async def test_consecutive_bottom_across_a_year_boundary(db, world, client):
    await _windows(db, world, client)
    months = {
        "2025-12": _month_data([3, 3]),
        "2026-01": {"W-A1": [5, 5], "W-A2": [3, 2], "W-C2": [2, 2]},
        "2026-02": _month_data([3, 3]),
        "2025-11": {"W-A1": [1, 1], "W-A2": [5, 4], "W-C2": [5, 5]},
    }
    for month, data in months.items():
        for window, levels in data.items():
            await _rate(db, world, window, levels, month)
    await db.commit()
    result = await metrics.bottom(
        db=db, actor=ADMIN, tier="window", periods=3, bottom=1, period="2026-02"
    )
    assert result.periods == ["2025-12", "2026-01", "2026-02"]
    assert [(u.code, [(p.period, p.rank, p.of) for p in u.ranks]) for u in result.items] == [
        ("W-C2", [("2025-12", 3, 3), ("2026-01", 3, 3), ("2026-02", 3, 3)])
    ]
    # Bottom two: W-A2 too (second to last each month); four periods: W-C2 was top in
    # November, so nobody was in the bottom four months running.
    two = await metrics.bottom(
        db=db, actor=ADMIN, tier="window", periods=3, bottom=2, period="2026-02"
    )
    assert [u.code for u in two.items] == ["W-C2", "W-A2"]
    four = await metrics.bottom(
        db=db, actor=ADMIN, tier="window", periods=4, bottom=1, period="2026-02"
    )
    assert four.items == []
    # Without a period: up to the last complete month.
    auto = await metrics.bottom(
        db=db, actor=ADMIN, tier="window", periods=3, bottom=1, now=datetime(2026, 3, 5, tzinfo=UTC)
    )
    assert auto.periods[-1] == "2026-02" and [u.code for u in auto.items] == ["W-C2"]
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get(
        BOTTOM,
        headers=headers,
        params={"tier": "window", "periods": 3, "bottom": 1, "period": "2026-02"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["code"] == "W-C2"
    assert r.json()["items"][0]["ranks"][1] == {"period": "2026-01", "rank": 3, "of": 3}


async def test_rankings_api_scope_and_refusals(db, world, client):
    await _windows(db, world, client)
    for window, levels in NOVEMBER.items():
        await _rate(db, world, window, levels, "2026-11")
    await db.commit()
    office = await bearer_headers(client, world.users["office"])
    r = await client.get(RANKINGS, headers=office, params={"tier": "window", "period": "2026-11"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"items", "unranked", "formula", "min_sample"}
    assert body["items"][2] == {
        "rank": 2,
        "code": "W-B1",
        "name": "不动产登记窗口",
        "total": 2,
        "good_rate": 1.0,
        "bad_rate": 0.0,
        "score": 9.0,
        "rank_change": None,
    }
    # Narrowed to one hall by org_code: its windows only, ranks counted among them.
    r = await client.get(
        RANKINGS,
        headers=office,
        params={"tier": "window", "period": "2026-11", "org_code": "HALL-B"},
    )
    assert [(x["code"], x["rank"]) for x in r.json()["items"]] == [
        ("W-B1", 1),
        ("W-C1", 2),
        ("W-C2", 3),
    ]
    # A hall manager ranks the windows of their own hall only.
    unit_a = await bearer_headers(client, world.users["unit_a"])
    r = await client.get(RANKINGS, headers=unit_a, params={"tier": "window", "period": "2026-11"})
    assert [x["code"] for x in r.json()["items"]] == ["W-A1", "W-A2"]
    for params, status, code in [
        ({"tier": "window", "period": "2026-13"}, 422, "invalid_period"),
        ({"tier": "window", "period": "2026-Q5"}, 422, "invalid_period"),
        ({"tier": "window", "period": "26"}, 422, "invalid_period"),
        ({"tier": "planet"}, 422, None),
        ({"tier": "window", "org_code": "HALL-B"}, 403, "out_of_scope"),
        ({"tier": "window", "org_code": "NOPE"}, 404, "org_not_found"),
    ]:
        assert_error(await client.get(RANKINGS, headers=unit_a, params=params), status, code)
    for params, status, code in [
        ({"tier": "window", "period": "2026-1"}, 422, "invalid_period"),
        ({"tier": "window", "periods": 0}, 422, None),
        ({"tier": "window", "bottom": 101}, 422, None),
        ({"tier": "window", "item_code": "NOPE"}, 404, "item_not_found"),
    ]:
        assert_error(await client.get(BOTTOM, headers=office, params=params), status, code)


@pytest.mark.parametrize(
    ("text", "label", "previous"),
    [
        ("2026-01", "2026-01", "2025-12"),
        ("2026-Q1", "2026-Q1", "2025-Q4"),
        ("2026", "2026", "2025"),
    ],
)
def test_periods_step_back_across_years(text, label, previous):
    period = parse_period(text)
    assert (period.label, period.previous().label) == (label, previous)
    # Beijing midnight of the first day, in UTC.
    assert period.bounds()[0].hour == 16


async def test_tiers_regions_departments_staff_and_items(db, world, client):
    """Regions: the child regions of the question's region; departments: the nearest
    department at or above the unit; staff and items by their codes."""
    await _windows(db, world, client, min_sample=1)
    start, _ = parse_period("2026-06").bounds()
    at = start + timedelta(days=3)
    await add_rating(db, world, level=5, at=at)  # HALL-A, county 330102, 李娜, ITEM-A1
    await add_rating(db, world, level=4, at=at)
    await add_rating(db, world, level=1, at=at, org="HALL-B", window="W-B1", staff="S-B1")
    await add_rating(
        db, world, level=5, at=at, org="DEPT-M", window=None, staff=None, item="ITEM-B1"
    )
    await db.commit()

    async def ranking(tier, **filters):
        r = await metrics.rankings(db=db, actor=ADMIN, tier=tier, period="2026-06", **filters)
        return [(x.code, x.rank, x.total) for x in r.items]

    # The province (the one top region) ranks its cities: one.
    assert await ranking("region") == [("330100", 1, 4)]
    # The city ranks its counties: HALL-A's county; the city's own units are no county.
    assert await ranking("region", region_code="330100") == [("330102", 1, 2)]
    # Departments: DEPT-M (its own rating) above OFFICE (every hall under it).
    assert await ranking("department") == [("DEPT-M", 1, 1), ("OFFICE", 2, 3)]
    assert await ranking("staff") == [("S-A1", 1, 2), ("S-B1", 2, 1)]
    assert await ranking("item") == [("ITEM-B1", 1, 1), ("ITEM-A1", 2, 3)]


async def test_a_period_is_ranked_by_the_policy_in_force_on_its_last_day(db, world, client):
    """A formula in force from 2025-12-01 does not re-rank November 2025."""
    await _windows(db, world, client)
    for window, levels in NOVEMBER.items():
        await _rate(db, world, window, levels, "2025-11")
    await db.commit()
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "values": {"min_sample": 4},
            "effective_from": "2025-12-01",
        },
    )
    assert r.status_code == 201, r.text
    november = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2025-11")
    assert november.min_sample == 2 and len(november.items) == 5
    december = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2025-12")
    assert december.min_sample == 4
