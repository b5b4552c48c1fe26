"""An assessor (监督查评) reads everything in their region, read-only (issue 10): every
statistics route and the console's dashboard and rankings cover the organisations located in
their organisation's region or below, even when that organisation is a leaf with nothing
under it; an organisation or region outside it is 403; the reach grants no write. A hall
manager reads their hall only.

The test region 宁波市 (330200) → 海曙区 (330203) is this file's own: the live worlds that
browser tests commit sit in the other regions of the world, so totals here are exact."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from haochaping.accounts import service as account_service
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.workorders.models import WorkOrder, WorkOrderEvent
from tests.factories import (
    ADMIN,
    PASSWORD,
    EvaluationPayloadFactory,
    add_rating,
    assert_error,
    bearer_headers,
    make_case,
)
from tests.pages.helpers import csrf_of, sign_in
from tests.pages.tables import parse

DAY = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
RANGE = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00"}
MARCH = {"preset": "custom", "since": "2026-03-01", "until": "2026-03-31"}
STATS = "/api/v1/stats/"


@pytest.fixture
async def ningbo(client, db, world):
    """Region 330200 with a hall in the city (HALL-N, 3 ratings: 5, 2, 1) and a hall in its
    district 330203 (HALL-H, 2 ratings: 5, 4); two leaf assessor organisations, one per
    region, with an assessor each, and a hall manager of HALL-H. Outside the region, March
    also has a rating at HALL-A (330102) and one at the office itself (330000)."""
    for code, name, parent in (("330200", "宁波市", "330000"), ("330203", "海曙区", "330200")):
        await org_service.create_region(
            db=db,
            actor=ADMIN,
            data=org_schemas.RegionCreate(code=code, name=name, parent_code=parent),
        )
    for code, name, kind, parent, region in [
        ("HALL-N", "宁波市民服务中心", "hall", "OFFICE", "330200"),
        ("W-N1", "宁波综合窗口", "window", "HALL-N", "330200"),
        ("HALL-H", "海曙区政务服务中心", "hall", "OFFICE", "330203"),
        ("W-H1", "海曙综合窗口", "window", "HALL-H", "330203"),
        # Third-party assessors: organisations with nothing under them.
        ("ASSESS-N", "宁波市第三方评估机构", "department", "OFFICE", "330200"),
        ("ASSESS-H", "海曙区监督查评组", "department", "OFFICE", "330203"),
    ]:
        await org_service.create_org(
            db=db,
            actor=ADMIN,
            data=org_schemas.OrgCreate(
                code=code, name=name, kind=kind, parent_code=parent, region_code=region
            ),
        )
    await org_service.create_item(
        db=db,
        actor=ADMIN,
        data=org_schemas.ItemCreate(code="ITEM-N1", name="户籍迁入", org_code="HALL-N"),
    )
    for username, role, org in [
        ("assessor_n", "assessor", "ASSESS-N"),
        ("assessor_h", "assessor", "ASSESS-H"),
        ("unit_h", "unit", "HALL-H"),
    ]:
        await account_service.create_user(
            db=db, username=username, password=PASSWORD, role=role, org_code=org
        )
    n = {"org": "HALL-N", "window": "W-N1", "staff": None, "item": "ITEM-N1"}
    h = {"org": "HALL-H", "window": "W-H1", "staff": None, "item": None}
    for i, (where, level) in enumerate([(n, 5), (n, 2), (n, 1), (h, 5), (h, 4)]):
        await add_rating(db, world, level=level, at=DAY + timedelta(minutes=i), **where)
    await add_rating(db, world, level=5, at=DAY)  # HALL-A
    await add_rating(db, world, level=3, at=DAY, org="OFFICE", window=None, staff=None, item=None)
    await db.commit()
    admin = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=admin,
        json={"region_code": "330000", "values": {"min_sample": 1}, "effective_from": "2026-01-01"},
    )
    assert r.status_code == 201, r.text


async def get(client, headers, path: str, **params):
    return await client.get(STATS + path, params=params, headers=headers)


async def ok(client, headers, path: str, **params) -> dict:
    r = await get(client, headers, path, **params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_leaf_assessor_reads_every_stats_route_over_its_whole_region(client, world, ningbo):
    me = await bearer_headers(client, "assessor_n")
    # The region's two halls, though the assessor's organisation has nothing under it.
    summary = await ok(client, me, "summary", **RANGE)
    assert (summary["total"], summary["good"], summary["bad"]) == (5, 3, 2)
    assert summary["score"] == round((10 + 3 + 0 + 10 + 8) / 5, 3)
    series = await ok(client, me, "timeseries", granularity="month", **RANGE)
    assert [(p["period"], p["total"]) for p in series["items"]] == [("2026-03", 5)]
    child = await ok(client, me, "breakdown", by="child", **RANGE)
    # One tier down: the district, and the city's own hall beside it.
    assert {(r["code"], r["kind"], r["total"]) for r in child["rows"]} == {
        ("330203", "region", 2),
        ("HALL-N", "org", 3),
    }
    levels = await ok(client, me, "breakdown", by="level", **RANGE)
    assert [r["total"] for r in levels["rows"]] == [2, 1, 0, 1, 1]
    ranking = await ok(client, me, "rankings", tier="hall", period="2026-03")
    assert [(r["rank"], r["code"]) for r in ranking["items"]] == [(1, "HALL-H"), (2, "HALL-N")]
    assert ranking["formula"]["region_code"] == "330200"
    regions = await ok(client, me, "rankings", tier="region", period="2026-03")
    assert [r["code"] for r in regions["items"]] == ["330203"]
    low = await ok(client, me, "bottom", tier="hall", periods=1, bottom=1, period="2026-03")
    assert [u["code"] for u in low["items"]] == ["HALL-N"]
    # Inside the region, any node: a hall outside the assessor's subtree, the district.
    hall = await ok(client, me, "summary", org_code="HALL-H", **RANGE)
    assert hall["total"] == 2
    district = await ok(client, me, "summary", region_code="330203", **RANGE)
    assert district["total"] == 2
    windows = await ok(client, me, "breakdown", by="child", org_code="HALL-N", **RANGE)
    assert [(r["code"], r["total"]) for r in windows["rows"]] == [("W-N1", 3)]

    # The district's assessor: the district only.
    other = await bearer_headers(client, "assessor_h")
    assert (await ok(client, other, "summary", **RANGE))["total"] == 2
    ranking = await ok(client, other, "rankings", tier="hall", period="2026-03")
    assert [r["code"] for r in ranking["items"]] == ["HALL-H"]


@pytest.mark.parametrize(
    "path",
    [
        "summary",
        "timeseries",
        "breakdown?by=child",
        "rankings?tier=hall&period=2026-03",
        "bottom?tier=hall&period=2026-03",
    ],
)
@pytest.mark.parametrize(
    "outside",
    [
        {"org_code": "HALL-A"},  # another city's hall (in the assessor's subtree's tree)
        {"org_code": "OFFICE"},  # the province office above the region
        {"region_code": "330100"},  # a neighbouring city
        {"region_code": "330000"},  # the province above
        {"org_code": "HALL-H", "region_code": "330100"},
    ],
)
async def test_outside_its_region_an_assessor_is_refused(client, world, ningbo, path, outside):
    me = await bearer_headers(client, "assessor_n")
    route, _, query = path.partition("?")
    params = dict(p.split("=") for p in query.split("&")) if query else {}
    r = await get(client, me, route, **params, **outside)
    err = assert_error(r, 403, "out_of_scope")
    assert err["message"] == "超出本账号的统计范围"


async def test_a_hall_manager_reads_its_hall_only(client, world, ningbo):
    me = await bearer_headers(client, "unit_h")
    assert (await ok(client, me, "summary", **RANGE))["total"] == 2
    # Its region named: still its hall only, not the region's other units.
    assert (await ok(client, me, "summary", region_code="330200", **RANGE))["total"] == 2
    ranking = await ok(client, me, "rankings", tier="hall", period="2026-03")
    assert [r["code"] for r in ranking["items"]] == ["HALL-H"]
    child = await ok(client, me, "breakdown", by="child", **RANGE)
    assert [(r["code"], r["total"]) for r in child["rows"]] == [("W-H1", 2)]
    for outside in ({"org_code": "HALL-N"}, {"org_code": "OFFICE"}):
        assert_error(await get(client, me, "summary", **outside), 403, "out_of_scope")
        assert_error(await get(client, me, "rankings", tier="hall", **outside), 403, "out_of_scope")


async def test_the_console_shows_an_assessor_its_region(client, world, ningbo):
    await sign_in(client, "assessor_n")
    dash = "/console/dashboard?"
    r = await client.get(dash + urlencode(MARCH))
    assert r.status_code == 200, r.text[-2000:]
    page = parse(r.text)
    assert page.kpis["total"] == "5"
    assert "统计范围：<strong>宁波市</strong>" in r.text
    assert {row[1]: row[2] for row in page.tables["children"]} == {"330203": "2", "HALL-N": "3"}
    # The picker offers the region's units, not the assessor's (empty) subtree only.
    for value in ("region:330203", "org:HALL-N", "org:HALL-H"):
        assert f'value="{value}"' in r.text, value
    assert 'value="org:HALL-A"' not in r.text
    # A hall of the region outside the assessor's subtree: its page, with its trail.
    r = await client.get(dash + urlencode({**MARCH, "node": "org:HALL-H"}))
    assert r.status_code == 200, r.text[-2000:]
    assert parse(r.text).kpis["total"] == "2"
    for name in ("宁波市", "海曙区"):
        assert f">{name}</a>" in r.text
    assert "统计范围：<strong>海曙区政务服务中心</strong>" in r.text
    r = await client.get(dash + urlencode({**MARCH, "node": "region:330203"}))
    assert r.status_code == 200 and parse(r.text).kpis["total"] == "2"
    for node in ("org:HALL-A", "org:OFFICE", "region:330100", "region:330000"):
        r = await client.get(dash + urlencode({**MARCH, "node": node}))
        assert r.status_code == 403, node
        r = await client.get(
            "/console/dashboard/export?" + urlencode({**MARCH, "node": node, "what": "summary"})
        )
        assert r.status_code == 403, node
    got = await client.get(
        "/console/dashboard/export?" + urlencode({**MARCH, "what": "children", "format": "csv"})
    )
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))[1:]
    assert {row[1]: row[2] for row in rows} == {"330203": "2", "HALL-N": "3"}

    query = {"tier": "hall", "period": "2026-03"}
    r = await client.get("/console/rankings?" + urlencode(query))
    assert r.status_code == 200, r.text[-2000:]
    assert [row[2] for row in parse(r.text).tables["ranked"]] == ["HALL-H", "HALL-N"]
    assert "HALL-A" not in r.text
    got = await client.get("/console/rankings/export?" + urlencode({**query, "what": "ranked"}))
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))[1:]
    assert [row[2] for row in rows] == ["HALL-H", "HALL-N"]


@pytest.fixture
async def bad_at_ningbo(client, db, world, ningbo):
    """A 不满意 at HALL-N through intake: its evaluation and its work order."""
    case = await make_case(
        db, world, org_code="HALL-N", window_code="W-N1", item_code="ITEM-N1", staff_no=None
    )
    body = EvaluationPayloadFactory(case_no=case["case_no"], level=2, reasons=["213"])
    key = {"X-Api-Key": world.keys["all"]}
    r = await client.post("/api/v1/evaluations", json=body, headers=key)
    assert r.status_code == 201, r.text
    ev = r.json()
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == ev["id"]))
    ).scalar_one()
    return case, ev, order


@pytest.mark.parametrize("username", ["assessor_n", "assessor"])
async def test_the_region_reach_grants_no_write(client, db, world, bad_at_ningbo, username):
    """Every write of the API, aimed at the assessor's region: 403, nothing changes. (The
    world's `assessor` sits at the office, so the order is inside its subtree too.)"""
    case, ev, order = bad_at_ningbo
    me = await bearer_headers(client, world.users.get(username, username))
    wo = f"/api/v1/work-orders/{order.id}"
    writes = [
        ("/api/v1/regions", {"code": "330212", "name": "鄞州区", "parent_code": "330200"}),
        (
            "/api/v1/orgs",
            {
                "code": "W-N2",
                "name": "二号窗口",
                "kind": "window",
                "parent_code": "HALL-N",
                "region_code": "330200",
            },
        ),
        ("/api/v1/staff", {"staff_no": "S-N9", "name": "赵敏", "org_code": "W-N1"}),
        ("/api/v1/items", {"code": "ITEM-N9", "name": "食品经营许可", "org_code": "HALL-N"}),
        ("/api/v1/cases", {**case, "case_no": "NB-0001"}),
        (f"/api/v1/cases/{case['case_no']}/invitations", {}),
        (f"/api/v1/evaluations/{ev['id']}/reveal-comment", {}),
        (f"/api/v1/evaluations/{ev['id']}/standing", {"standing": "invalid", "note": "无效"}),
        ("/api/v1/policies", {"region_code": "330200", "values": {"min_sample": 5}}),
        ("/api/v1/appeals", {"evaluation_id": ev["id"], "category": "mistaken", "reasons": "误评"}),
        (f"{wo}/actions", {"action": "verify", "note": "属实"}),
        (f"{wo}/actions", {"action": "escalate", "note": "转督办"}),
        (f"{wo}/actions", {"action": "explain", "note": "已解释"}),
        (f"{wo}/reveal-phone", {"reason": "回访需要"}),
        (f"{wo}/follow-up", {"level": 5}),
    ]
    events_before = len(
        (
            await db.execute(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id))
        ).all()
    )
    for path, body in writes:
        r = await client.post(path, json=body, headers=me)
        assert r.status_code == 403, (path, r.text)
        assert_error(r, 403)
    r = await client.post(
        f"{wo}/attachments",
        files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
        headers=me,
    )
    assert_error(r, 403, "role_forbidden" if username == "assessor" else "out_of_scope")
    await db.refresh(order)
    assert order.state == "verifying"
    events_after = len(
        (
            await db.execute(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id))
        ).all()
    )
    assert events_after == events_before
    # What it may do is read: the same order's figures in the region.
    summary = await ok(client, me, "summary", org_code="HALL-N")
    assert summary["opened"] >= 1


async def test_an_assessor_is_offered_no_upload_and_refused_one(client, db, world, bad_at_ningbo):
    """The console's work-order page: the office's assessor reads the order, with no upload
    form, and a posted file is refused (window staff likewise: they act on no order)."""
    _, _, order = bad_at_ningbo
    await sign_in(client, world.users["assessor"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert page.status_code == 200, page.text[-2000:]
    assert 'id="action-upload"' not in page.text
    r = await client.post(
        f"/console/work-orders/{order.id}/attachments",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
    )
    assert r.status_code == 403 and "只有办理工单的人员可以上传附件" in r.text
    client.cookies.clear()
    await sign_in(client, world.users["office"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert 'id="action-upload"' in page.text
