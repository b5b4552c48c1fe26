"""The dashboard (数据看板) and the rankings (榜单) over HTTP: the numbers on the page are the
statistics API's for the same filters (and the hand-counted ones), a row drills one tier down,
every download parses back to the table on the page, each role sees its own area, and bad
input answers 4xx with a Chinese message."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from openpyxl import load_workbook

from haochaping.accounts import service as account_service
from haochaping.console.dashboard_pages import DASHBOARD_TABLES, RANKING_TABLES
from haochaping.core.exports import cell_text
from tests.factories import PASSWORD, add_rating, add_work_order, bearer_headers
from tests.pages.helpers import sign_in
from tests.pages.tables import parse

DASH = "/console/dashboard"
RANK = "/console/rankings"
DAY = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
MARCH = {"preset": "custom", "since": "2026-03-01", "until": "2026-03-31"}
# The same range as the API takes it: Beijing midnights, the end exclusive.
API_RANGE = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00"}


def path_of(href: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(href)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.fixture
async def rated(db, world):
    """March 2026: HALL-A 5, 5, 4, 2 (one work order, verified on time); HALL-B 5, 1; one
    default rating at HALL-A (reported apart)."""
    a = {"org": "HALL-A", "window": "W-A1", "staff": "S-A1", "item": "ITEM-A1"}
    b = {"org": "HALL-B", "window": "W-B1", "staff": "S-B1", "item": "ITEM-B1"}
    rows = []
    for n, (where, level, channel) in enumerate(
        [
            (a, 5, "pad"),
            (a, 5, "qrcode"),
            (a, 4, "pad"),
            (a, 2, "sms"),
            (b, 5, "pc"),
            (b, 1, "phone"),
        ]
    ):
        reasons = {2: ["213"], 1: ["108"]}.get(level, ["517"])
        rows.append(
            await add_rating(
                db,
                world,
                level=level,
                at=DAY + timedelta(days=n % 3, minutes=n),
                channel=channel,
                reasons=reasons,
                **where,
            )
        )
    await add_rating(db, world, level=3, at=DAY, is_default=True, **a)
    await add_work_order(
        db,
        rows[3],
        state="verifying",
        verify_due_at=DAY + timedelta(days=3),
        verified_at=DAY + timedelta(hours=5),
    )
    await db.commit()
    return rows


async def api(client, world, path: str, **params) -> dict:
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_numbers_on_the_page_are_the_apis_and_the_hand_counted(client, world, rated):
    await sign_in(client, world.users["office"])
    r = await client.get(DASH + "?" + urlencode(MARCH))
    assert r.status_code == 200, r.text[-3000:]
    page = parse(r.text)
    # Counted by hand: six ratings, four good (5, 5, 4, 5), one default apart.
    assert page.kpis["total"] == "6"
    assert page.kpis["good_rate"] == "66.67%"
    assert page.kpis["bad_rate"] == "33.33%"
    assert page.kpis["score"] == f"{(10 + 10 + 8 + 3 + 10 + 0) / 6:.2f}"
    assert page.kpis["default_ratings"] == "1"

    summary = await api(client, world, "/api/v1/stats/summary", region_code="330000", **API_RANGE)
    assert page.kpis["total"] == str(summary["total"])
    assert page.kpis["good_rate"] == cell_text(summary["good_rate"], "rate")
    assert page.kpis["score"] == f"{summary['score']:.2f}"
    assert page.kpis["invalid"] == str(summary["invalid"])
    funnel = {row[0]: row[1] for row in page.tables["funnel"]}
    assert funnel["开单"] == str(summary["opened"]) == "1"
    assert funnel["按时核实"] == str(summary["verified_on_time"]) == "1"

    levels = await api(
        client, world, "/api/v1/stats/breakdown", by="level", region_code="330000", **API_RANGE
    )
    assert [(r[0], r[1]) for r in page.tables["levels"]] == [
        (row["name"], str(row["total"])) for row in levels["rows"]
    ]
    channels = await api(
        client, world, "/api/v1/stats/breakdown", by="channel", region_code="330000", **API_RANGE
    )
    assert sorted((r[0], r[1]) for r in page.tables["channels"]) == sorted(
        (row["name"], str(row["total"])) for row in channels["rows"]
    )
    assert ("评价器", "2") in [(r[0], r[1]) for r in page.tables["channels"]]
    series = await api(client, world, "/api/v1/stats/timeseries", granularity="day", **API_RANGE)
    assert [(r[0], r[1]) for r in page.tables["trend"]] == [
        (p["period"], str(p["total"])) for p in series["items"]
    ]
    assert len(page.tables["trend"]) == 31 and sum(int(r[1]) for r in page.tables["trend"]) == 6
    # The reasons of bad ratings only, with their counts.
    assert sorted((r[1], r[2]) for r in page.tables["reasons"]) == [("108", "1"), ("213", "1")]
    # The charts are drawn from the same rows, embedded as JSON (no inline script).
    assert '<script type="application/json" id="dashboard-data">' in r.text
    assert "<script>" not in r.text


async def test_a_row_drills_one_tier_down(client, world, rated):
    await sign_in(client, world.users["office"])
    r = await client.get(DASH + "?" + urlencode(MARCH))
    page = parse(r.text)
    # The province's cities; then the county; then its hall; its windows; their staff.
    # A city's children are its counties and, beside them, the city's own halls.
    steps = [("杭州市", "region:330100"), ("上城区", "region:330102")]
    steps += [("上城区市民之家", "org:HALL-A"), ("综合受理1号窗口", "org:W-A1")]
    for name, node in steps:
        names = [row[0] for row in page.tables["children"]]
        assert name in names, names
        href = page.links["children"][names.index(name)]
        assert href is not None
        path, query = path_of(href)
        assert path == DASH and query["node"] == node
        # The filters go down with the click.
        assert (query["preset"], query["since"], query["until"]) == (
            "custom",
            "2026-03-01",
            "2026-03-31",
        )
        r = await client.get(href)
        assert r.status_code == 200, r.text[-2000:]
        assert f"统计范围：<strong>{name}</strong>" in r.text
        page = parse(r.text)
        if name == "杭州市":
            rows = {
                row[0]: (row[2], link)
                for row, link in zip(page.tables["children"], page.links["children"], strict=True)
            }
            assert rows["上城区"][0] == "4" and rows["杭州市民中心"][0] == "2"
            assert path_of(rows["杭州市民中心"][1])[1]["node"] == "org:HALL-B"
            assert sum(int(n) for n, _ in rows.values()) == int(page.kpis["total"]) == 6
    # A window's children are its staff: the bottom, no link further.
    assert [row[0] for row in page.tables["children"]] == ["李娜"]
    assert page.links["children"] == [None]
    assert page.kpis["total"] == "4"
    # The trail leads back up, one link per tier.
    assert 'aria-label="统计范围层级"' in r.text
    for name in ("浙江省", "杭州市", "上城区", "上城区市民之家"):
        assert f">{name}</a>" in r.text


async def test_downloads_parse_back_to_the_tables_on_the_page(client, world, rated):
    await sign_in(client, world.users["office"])
    r = await client.get(DASH + "?" + urlencode(MARCH))
    page = parse(r.text)
    for what in DASHBOARD_TABLES:
        got = await client.get(
            DASH + "/export?" + urlencode({**MARCH, "what": what, "format": "csv"})
        )
        assert got.status_code == 200, got.text
        assert got.content.startswith(b"\xef\xbb\xbf")
        assert "attachment" in got.headers["content-disposition"]
        lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        if what == "summary":
            values = dict(lines[1:])
            assert values["评价数"] == page.kpis["total"]
            assert values["好评率"] == page.kpis["good_rate"]
            continue
        assert lines[1:] == page.tables[what], what
        book = await client.get(
            DASH + "/export?" + urlencode({**MARCH, "what": what, "format": "xlsx"})
        )
        assert book.status_code == 200
        ws = load_workbook(io.BytesIO(book.content)).active
        rows = [list(row) for row in ws.iter_rows(values_only=True)]
        assert rows[0] == lines[0]  # the same Chinese headers
        kinds = [ws.cell(row=2, column=i + 1).number_format for i in range(len(rows[0]))]
        as_read = [
            [
                cell_text(v, "rate" if fmt == "0.00%" else "score" if fmt == "0.00" else "text")
                for v, fmt in zip(row, kinds, strict=True)
            ]
            for row in rows[1:]
        ]
        assert as_read == page.tables[what], what


async def test_each_role_sees_its_own_area(client, db, world, rated):
    r = await client.get(DASH)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    # A hall's unit: its hall only, its windows below; no other hall, no region.
    await sign_in(client, world.users["unit_a"])
    r = await client.get(DASH + "?" + urlencode(MARCH))
    assert r.status_code == 200
    page = parse(r.text)
    assert page.kpis["total"] == "4"
    assert [row[0] for row in page.tables["children"]] == ["综合受理1号窗口"]
    assert "杭州市民中心" not in r.text
    other = await client.get(DASH + "?" + urlencode({**MARCH, "node": "org:HALL-B"}))
    assert other.status_code == 403 and "超出本账号的机构权限范围" in other.text
    region = await client.get(DASH + "?" + urlencode({**MARCH, "node": "region:330100"}))
    assert region.status_code == 403
    export = await client.get(
        DASH + "/export?" + urlencode({"what": "children", "node": "org:HALL-B"})
    )
    assert export.status_code == 403
    assert "数据看板" in r.text and "榜单" in r.text
    client.cookies.clear()
    # An assessor reads the whole region (the office's units among its organisations; more in
    # tests/analytics/test_assessor_scope.py).
    await sign_in(client, world.users["assessor"])
    r = await client.get(DASH + "?" + urlencode(MARCH))
    assert r.status_code == 200 and "统计范围：<strong>浙江省</strong>" in r.text
    r = await client.get(DASH + "?" + urlencode({**MARCH, "node": "org:OFFICE"}))
    assert r.status_code == 200 and parse(r.text).kpis["total"] == "6"
    assert (await client.get(RANK)).status_code == 200
    client.cookies.clear()
    # Window staff: neither page, nor the links to them.
    await account_service.create_user(
        db=db, username="staff_w", password=PASSWORD, role="staff", org_code="W-A1"
    )
    await db.commit()
    await sign_in(client, "staff_w")
    home = await client.get("/console/evaluations")
    assert home.status_code == 200 and 'href="/console/dashboard"' not in home.text
    for path in (DASH, RANK, DASH + "/export?what=trend", RANK + "/export?what=ranked"):
        r = await client.get(path)
        assert r.status_code == 403, path
        assert "此页面仅供管理机构、责任单位和监督查评人员使用" in r.text


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"preset": "fortnight"}, 422, "统计时段取值无效"),
        ({"since": "2026-03-31", "until": "2026-03-01"}, 422, "结束日期早于开始日期"),
        ({"since": "2026-13-01"}, 422, "请填写开始日期"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, 422, "统计时段最长三年"),
        ({"granularity": "hour"}, 422, "趋势粒度取值无效"),
        ({"preset": "year", "granularity": "day"}, 200, ""),
        ({"node": "org:NOPE"}, 404, "统计范围中的单位不存在"),
        ({"node": "region:999999"}, 404, "统计范围中的地区不存在"),
        ({"node": "planet:earth"}, 422, "统计范围取值无效"),
        ({"item_code": "NOPE"}, 404, "所选服务事项不存在"),
        ({"item_code": "<script>"}, 422, "事项编码取值无效"),
    ],
)
async def test_bad_filters_are_refused_with_a_message(client, world, query, status, message):
    await sign_in(client, world.users["office"])
    r = await client.get(DASH + "?" + urlencode(query))
    assert r.status_code == status, r.text[-2000:]
    if message:
        assert message in r.text
        assert 'id="filter-errors"' in r.text and 'id="kpi-total"' not in r.text


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        (DASH + "/export", {"what": "everything"}, 422),
        (DASH + "/export", {"what": "trend", "format": "pdf"}, 422),
        (DASH + "/export", {"what": "trend", "preset": "fortnight"}, 422),
        (DASH + "/export", {"what": "trend", "node": "org:NOPE"}, 404),
        (RANK + "/export", {"what": "podium"}, 422),
        (RANK + "/export", {"what": "ranked", "period": "2026-13"}, 422),
        (RANK, {"tier": "planet"}, 422),
        (RANK, {"period": "yesterday"}, 422),
        (RANK, {"period": "2999-01"}, 422),
    ],
)
async def test_bad_downloads_and_rankings_are_refused(client, world, path, query, status):
    await sign_in(client, world.users["office"])
    r = await client.get(path + "?" + urlencode(query))
    assert r.status_code == status, r.text[-2000:]
    assert "<html" in r.text and r.headers["content-type"].startswith("text/html")


async def publish_min_sample(client, world, n: int) -> None:
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": "330000", "values": {"min_sample": n}, "effective_from": "2026-01-01"},
    )
    assert r.status_code == 201, r.text


async def test_rankings_page_is_the_apis_ranking_with_downloads(client, world, rated):
    await publish_min_sample(client, world, 3)
    await sign_in(client, world.users["office"])
    r = await client.get(RANK + "?" + urlencode({"tier": "hall", "period": "2026-03"}))
    assert r.status_code == 200, r.text[-3000:]
    page = parse(r.text)
    ranking = await api(client, world, "/api/v1/stats/rankings", tier="hall", period="2026-03")
    # HALL-A has 4 counted ratings (ranked), HALL-B 2 (below the minimum of 3: apart).
    assert (
        [row[:4] for row in page.tables["ranked"]]
        == [[str(i["rank"]), i["name"], i["code"], str(i["total"])] for i in ranking["items"]]
        == [["1", "上城区市民之家", "HALL-A", "4"]]
    )
    assert page.tables["ranked"][0][7] == "新上榜"  # not ranked in February
    assert [row[:3] for row in page.tables["unranked"]] == [["杭州市民中心", "HALL-B", "2"]]
    assert "评价数少于 3 条的对象不参与排名" in r.text
    assert 'aria-current="page">大厅</a>' in r.text
    assert 'id="running-note"' not in r.text  # March is over
    current = await client.get(RANK)
    assert current.status_code == 200 and 'id="running-note"' in current.text
    for what in RANKING_TABLES:
        got = await client.get(
            RANK + "/export?" + urlencode({"tier": "hall", "period": "2026-03", "what": what})
        )
        assert got.status_code == 200
        lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert lines[1:] == page.tables[what], what


async def test_rank_change_says_up_and_down_in_words(client, db, world, rated):
    # April: HALL-B rates better than HALL-A, so they swap places since March.
    await publish_min_sample(client, world, 2)
    april = DAY + timedelta(days=31)
    for level in (5, 5):
        await add_rating(
            db,
            world,
            level=level,
            at=april,
            org="HALL-B",
            window="W-B1",
            staff="S-B1",
            item="ITEM-B1",
        )
    for level in (2, 3):
        await add_rating(db, world, level=level, at=april)
    await db.commit()
    await sign_in(client, world.users["office"])
    r = await client.get(RANK + "?" + urlencode({"tier": "hall", "period": "2026-04"}))
    page = parse(r.text)
    changes = {row[1]: row[7] for row in page.tables["ranked"]}
    assert changes == {"杭州市民中心": "↑ 上升1位", "上城区市民之家": "↓ 下降1位"}
    assert 'class="change change--up"' in r.text


async def test_the_item_filter_counts_that_items_ratings_wherever_served(client, world, rated):
    await sign_in(client, world.users["office"])
    r = await client.get(DASH + "?" + urlencode({**MARCH, "item_code": "ITEM-B1"}))
    assert r.status_code == 200
    assert "事项：不动产登记" in r.text
    assert parse(r.text).kpis["total"] == "2"
    client.cookies.clear()
    # A hall filters by another unit's item: allowed, counted at its own hall only.
    await sign_in(client, world.users["unit_a"])
    r = await client.get(DASH + "?" + urlencode({**MARCH, "item_code": "ITEM-B1"}))
    assert r.status_code == 200 and parse(r.text).kpis["total"] == "0"
    r = await client.get(DASH + "?" + urlencode({**MARCH, "item_code": "ITEM-A1"}))
    assert parse(r.text).kpis["total"] == "4"
