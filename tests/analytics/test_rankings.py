"""Rankings and the consecutive-bottom list, against hand-computed fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haochaping.analytics import metrics, rollups, source
from haochaping.analytics.periods import parse_period
from haochaping.core.timeutil import utcnow
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from tests.factories import WORLD_ADMIN, add_rating, assert_error, bearer_headers

RANKINGS = "/api/v1/stats/rankings"
BOTTOM = "/api/v1/stats/bottom"


async def _windows(db, world, client, min_sample: int = 2) -> None:
    """Three more windows in HALL-B, and a province policy ranking from 2 ratings."""
    for code in ("W-C1", "W-C2", "W-C3"):
        await org_service.create_org(
            db=db,
            actor=WORLD_ADMIN,
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
    r = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="window", period="2026-11")
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
        db=db, actor=WORLD_ADMIN, tier="window", now=datetime(2026, 11, 20, tzinfo=UTC)
    )
    assert live.live and [x.code for x in live.items] == [x.code for x in r.items]
    # A quarter counts both months: W-A2 has 4 ratings (5, 5, 5, 4).
    quarter = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="window", period="2026-Q4")
    assert quarter.period == "2026-Q4"
    assert {x.code: x.total for x in quarter.items}["W-A2"] == 4
    # Halls: HALL-A 4 ratings of 5, 5, 5, 4 (9.5) above HALL-B (9 ratings).
    halls = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="hall", period="2026-11")
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
    r = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="window", period="2026-11")
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
        db=db, actor=WORLD_ADMIN, tier="window", periods=3, bottom=1, period="2026-02"
    )
    assert result.periods == ["2025-12", "2026-01", "2026-02"]
    assert [(u.code, [(p.period, p.rank, p.of) for p in u.ranks]) for u in result.items] == [
        ("W-C2", [("2025-12", 3, 3), ("2026-01", 3, 3), ("2026-02", 3, 3)])
    ]
    # Bottom two: W-A2 too (second to last each month); four periods: W-C2 was top in
    # November, so nobody was in the bottom four months running.
    two = await metrics.bottom(
        db=db, actor=WORLD_ADMIN, tier="window", periods=3, bottom=2, period="2026-02"
    )
    assert [u.code for u in two.items] == ["W-C2", "W-A2"]
    four = await metrics.bottom(
        db=db, actor=WORLD_ADMIN, tier="window", periods=4, bottom=1, period="2026-02"
    )
    assert four.items == []
    # Without a period: up to the last complete month.
    auto = await metrics.bottom(
        db=db,
        actor=WORLD_ADMIN,
        tier="window",
        periods=3,
        bottom=1,
        now=datetime(2026, 3, 5, tzinfo=UTC),
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
        r = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier=tier, period="2026-06", **filters)
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
    november = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="window", period="2025-11")
    assert november.min_sample == 2 and len(november.items) == 5
    december = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="window", period="2025-12")
    assert december.min_sample == 4


# --- the tier mapping in SQL against the walk up the tree in Python ---------------------------

DEEPER = [
    # code, kind, parent, region: a department under a hall, a hall under a department
    ("DEPT-X", "department", "HALL-B", "330100"),
    ("W-X1", "window", "DEPT-X", "330100"),
    ("HALL-C", "hall", "DEPT-M", "330102"),
    ("W-C9", "window", "HALL-C", "330102"),
]
# (organisation, window, levels) of June 2026
RATED = [
    ("HALL-A", "W-A1", [5, 5, 4]),
    ("HALL-A", "W-A2", [3]),
    ("HALL-B", "W-B1", [1, 5]),
    ("HALL-B", None, [4]),
    ("DEPT-M", None, [5, 2]),
    ("DEPT-X", "W-X1", [5]),
    ("DEPT-X", None, [4, 4]),
    ("HALL-C", "W-C9", [2, 5, 5]),
    ("OFFICE", None, [5]),
]


async def _expected(db, ctx, tier: str) -> dict[str, list[int]]:
    """What the ranking counted before the mapping moved into SQL: every unit's counts added
    to its tier's unit found by walking the organisations in scope in Python."""
    by_unit = await source.level_counts(db, ctx.scope, "unit")
    orgs = await metrics.organisations(db, ctx)
    out: dict[str, list[int]] = {}
    if tier == "region":
        region = ctx.node_region or await metrics._region_of(db, ctx)
        child_of, _ = await metrics._child_region_map(db, ctx, region)
        pick = {i: r.code for i, r in child_of.items()}
    else:
        pick = {}
        for i in by_unit:
            found = metrics._ancestor(orgs, i, tier)
            if found is not None:
                pick[i] = found.code
    for unit, counts in by_unit.items():
        if unit in pick:
            bucket = out.setdefault(pick[unit], [0] * 5)
            for i in range(5):
                bucket[i] += counts[i]
    return out


@pytest.mark.parametrize("folded", [False, True], ids=["from-ratings", "from-rollups"])
async def test_tier_units_in_sql_are_the_walk_up_the_tree(db, world, sessionmaker, folded):
    """Departments, halls, windows and child regions mapped in SQL (a recursive query up the
    tree) count every unit where the walk up the organisations in scope does, for the whole
    tree, an organisation's subtree and a region's part, from the ratings and the rollups."""
    for code, kind, parent, region in DEEPER:
        await org_service.create_org(
            db=db,
            actor=WORLD_ADMIN,
            data=org_schemas.OrgCreate(
                code=code, name=code, kind=kind, parent_code=parent, region_code=region
            ),
        )
    since, until = parse_period("2026-06").bounds()
    for org, window, levels in RATED:
        for n, level in enumerate(levels):
            at = since + timedelta(days=1, hours=n)
            await add_rating(db, world, level=level, at=at, org=org, window=window, staff=None)
    await db.commit()
    if folded:
        report = await rollups.refresh(sessionmaker, now=utcnow() + timedelta(days=1))
        assert report.folded >= sum(len(levels) for _, _, levels in RATED)
    scopes = [{}, {"org_code": "DEPT-M"}, {"org_code": "HALL-B"}, {"region_code": "330100"}]
    seen = set()
    for filters in scopes:
        ctx = await metrics.resolve(db=db, actor=WORLD_ADMIN, since=since, until=until, **filters)
        for tier in ("region", "department", "hall", "window"):
            mapped = await metrics._tier_split(db, ctx, ctx.scope, tier, until)
            assert mapped is not None
            before, after, units = mapped
            assert before == await _expected(db, ctx, tier), (filters, tier)
            assert after == {}
            assert set(units) >= set(before)
            seen |= {(tier, code) for code in before}
    # The walk crosses kinds: W-X1 counts under DEPT-X, W-C9 under HALL-C and DEPT-M, HALL-B's
    # own ratings under OFFICE; HALL-C lies in county 330102.
    assert {("department", "DEPT-X"), ("department", "OFFICE"), ("hall", "HALL-C")} <= seen
    assert {("window", "W-X1"), ("window", "W-C9"), ("region", "330102")} <= seen
    r = await metrics.rankings(db=db, actor=WORLD_ADMIN, tier="department", period="2026-06")
    totals = {x.code: x.total for x in [*r.items, *r.unranked]}
    # OFFICE: its own 1, HALL-A's 4, HALL-B's 3 (W-B1's 2 and its own 1); DEPT-M: its own 2 and
    # HALL-C's 3; DEPT-X: its own 2 and W-X1's 1.
    assert totals == {"OFFICE": 8, "DEPT-M": 5, "DEPT-X": 3}
