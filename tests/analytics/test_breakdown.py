"""Breakdowns by level, channel, reason, child node (the drill-down), item and staff."""

from __future__ import annotations

from datetime import UTC, datetime

from haochaping.analytics import metrics
from tests.factories import ADMIN, add_rating, assert_error, bearer_headers

BREAKDOWN = "/api/v1/stats/breakdown"
AT = datetime(2026, 5, 6, 3, 0, tzinfo=UTC)


async def _ratings(db, world) -> None:
    """HALL-A: W-A1 (staff 李娜) 5, 4 (pad), 2 (mobile, reasons 207 and 209); W-A2 1 (pad,
    reason 108); HALL-B: W-B1 (王强, item ITEM-B1) 5, 5 (qrcode); DEPT-M: 3 (review, no
    window, staff or item)."""
    await add_rating(db, world, level=5, at=AT)
    await add_rating(db, world, level=4, at=AT)
    await add_rating(db, world, level=2, at=AT, channel="mobile", reasons=["207", "209"])
    await add_rating(db, world, level=1, at=AT, window="W-A2", staff=None, reasons=["108"])
    for _ in range(2):
        await add_rating(
            db,
            world,
            level=5,
            at=AT,
            org="HALL-B",
            window="W-B1",
            staff="S-B1",
            item="ITEM-B1",
            channel="qrcode",
        )
    await add_rating(
        db,
        world,
        level=3,
        at=AT,
        org="DEPT-M",
        window=None,
        staff=None,
        item=None,
        channel="review",
    )
    await db.commit()


def _table(result) -> list[tuple]:
    return [(r.code, r.name, r.total, r.good, r.bad) for r in result.rows]


async def test_levels_channels_reasons(db, world, app):  # the app seeds the reason tags
    await _ratings(db, world)
    levels = await metrics.breakdown(db=db, actor=ADMIN, by="level")
    assert [(r.code, r.name, r.total) for r in levels.rows] == [
        ("5", "非常满意", 3),
        ("4", "满意", 1),
        ("3", "基本满意", 1),
        ("2", "不满意", 1),
        ("1", "非常不满意", 1),
    ]
    assert levels.rows[0].score == 10.0 and levels.rows[3].bad_rate == 1.0
    channels = await metrics.breakdown(db=db, actor=ADMIN, by="channel")
    assert [(r.code, r.total, r.good_rate, r.score) for r in channels.rows] == [
        ("pad", 3, round(2 / 3, 6), 6.0),  # 10 + 8 + 0
        ("qrcode", 2, 1.0, 10.0),
        ("mobile", 1, 0.0, 3.0),
        ("review", 1, 1.0, 6.0),
    ]
    assert channels.rows[0].name == "评价器"
    reasons = await metrics.breakdown(db=db, actor=ADMIN, by="reason")
    assert [(r.code, r.name, r.total) for r in reasons.rows] == [
        ("108", "在办事指南之外增加新的审批条件", 1),
        ("207", "没有提供材料样本", 1),
        ("209", "未在承诺时间内办结", 1),
    ]


async def test_items_and_staff(db, world):
    await _ratings(db, world)
    items = await metrics.breakdown(db=db, actor=ADMIN, by="item")
    assert _table(items) == [
        ("ITEM-A1", "营业执照核发", 4, 2, 2),
        ("ITEM-B1", "不动产登记", 2, 2, 0),
        ("-", "未关联事项", 1, 1, 0),
    ]
    staff = await metrics.breakdown(db=db, actor=ADMIN, by="staff", limit=2)
    assert _table(staff) == [("S-A1", "李娜", 3, 2, 1), ("-", "未关联工作人员", 2, 1, 1)]


async def test_child_drills_down_one_tier(db, world, client):
    await _ratings(db, world)
    office = await bearer_headers(client, world.users["office"])

    async def child(headers, **params):
        r = await client.get(BREAKDOWN, headers=headers, params={"by": "child", **params})
        assert r.status_code == 200, r.text
        body = r.json()
        return body["child_kind"], [(x["code"], x["total"]) for x in body["rows"]]

    # The office's own organisation: its halls and departments.
    assert await child(office) == ("org", [("HALL-A", 4), ("HALL-B", 2), ("DEPT-M", 1)])
    # A hall: its windows; a window: its staff.
    assert await child(office, org_code="HALL-A") == ("org", [("W-A1", 3), ("W-A2", 1)])
    assert await child(office, org_code="W-A1") == ("staff", [("S-A1", 3)])
    # The province: its cities; the county without child regions: its top-level units.
    assert await child(office, region_code="330000") == ("region", [("330100", 7)])
    # A city: its counties, and the units located in the city itself.
    assert await child(office, region_code="330100") == (
        "region",
        [("330102", 4), ("HALL-B", 2), ("DEPT-M", 1)],
    )
    assert await child(office, region_code="330102") == ("org", [("HALL-A", 4)])
    # A hall manager's drill-down starts at their hall.
    unit_a = await bearer_headers(client, world.users["unit_a"])
    assert await child(unit_a) == ("org", [("W-A1", 3), ("W-A2", 1)])
    assert_error(
        await client.get(BREAKDOWN, headers=unit_a, params={"by": "child", "org_code": "DEPT-M"}),
        403,
        "out_of_scope",
    )
    assert_error(await client.get(BREAKDOWN, headers=office, params={"by": "colour"}), 422)


async def test_an_api_client_sees_its_subtree(db, world, client):
    await _ratings(db, world)
    headers = {"X-Api-Key": world.keys["hall_b"]}
    r = await client.get(BREAKDOWN, headers=headers, params={"by": "channel"})
    assert r.status_code == 200, r.text
    assert [(x["code"], x["total"]) for x in r.json()["rows"]] == [("qrcode", 2)]


async def test_public_cells_below_k_are_not_published(db, world, client):
    await _ratings(db, world)
    staff = await metrics.breakdown(db=db, actor=metrics.PUBLIC, by="staff")
    formula = await metrics.formula_for(db=db, org_code="HALL-A")
    assert formula.public_min_cell == 5
    assert metrics.publishable(staff.rows, formula) == []
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": "330102", "values": {"public_min_cell": 3}},
    )
    assert r.status_code == 201, r.text
    formula = await metrics.formula_for(db=db, org_code="HALL-A")
    assert [r.code for r in metrics.publishable(staff.rows, formula)] == ["S-A1"]
