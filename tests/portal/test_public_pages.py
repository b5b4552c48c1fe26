"""The public results pages (公示): the same numbers as the metrics module, rectified bad
reviews that may be published (and only those), personal data nowhere, k-anonymous staff
figures, friendly 404s, cache headers without cookies, and the per-IP cap."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
import pytest
from fastapi import Request
from sqlalchemy import select

from haochaping.analytics import metrics
from haochaping.app import create_app, startup
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, set_standing
from haochaping.portal import results_queries as q
from haochaping.portal.results_pages import ViewCache
from haochaping.workorders.models import WorkOrder
from tests.factories import EvaluationPayloadFactory, bearer_headers, make_case, publish_policy
from tests.pages.helpers import sign_in

# Personal data planted in rater fields, comments and rectification reports.
RATER = {
    "type": "person",
    "name": "欧阳娜娜",
    "cert_no": "330102198807071234",
    "phone": "13987654321",
    "is_agent": True,  # rating for the applicant
}
APPLICANT = {
    "type": "person",
    "name": "司马光明",
    "cert_no": "11010119900307003X",
    "phone": "13700001111",
}
PLANTED = [
    "欧阳娜娜",
    "330102198807071234",
    "13987654321",
    "987654321",
    "司马光明",
    "11010119900307003X",
    "13700001111",
    "李娜",  # the staff member of window W-A1 (factories.build_world)
    "13512345678",
    "135 1234 5678",
    "0571-88886666",
    "88886666",
    "440301197001011111",
]
REASON = {5: "517", 4: "413", 3: "313", 2: "213", 1: "113"}
COMMENT = "窗口李娜让我跑了三趟，我是欧阳娜娜，电话135 1234 5678，身份证440301197001011111"
REPORT = "已约谈李娜并培训；已回电司马光明（13700001111，座机0571-88886666），增设一个综合窗口"


async def rate(client, world, level: int, *, key: str = "hall_a_pad", **extra) -> dict:
    """A rating of a fresh case through the API; returns the stored evaluation."""
    case = await make_case(extra.pop("db"), world, applicant=dict(APPLICANT))
    extra.setdefault("reasons", [REASON[level]])
    body = EvaluationPayloadFactory(case_no=case["case_no"], level=level, **extra)
    r = await client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": world.keys[key]})
    assert r.status_code == 201, r.text
    return r.json()


async def rectify(client, db, world, evaluation_id: int, note: str) -> None:
    """The unit verifies the bad review and reports what it rectified."""
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == evaluation_id))
    ).scalar_one()
    unit = await bearer_headers(client, world.users["unit_a"])
    for body in (
        {"action": "verify", "note": "属实"},
        {"action": "report_rectified", "note": note},
    ):
        r = await client.post(f"/api/v1/work-orders/{order.id}/actions", json=body, headers=unit)
        assert r.status_code == 200, r.text


def text_of(page: str) -> str:
    """The page's visible text, entities decoded (what a reader would see)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def shown_figures(page: str) -> list[str]:
    return re.findall(r'class="figures__num">([^<]*)<', page)


def expected_figures(s) -> list[str]:
    return [
        q.count_text(s.total),
        q.rate_text(s.good_rate),
        q.score_text(s.score),
        q.count_text(s.bad),
    ]


@pytest.fixture
async def rated(client, db, world):
    """Five ratings at window W-A1 (staff S-A1), one of them bad with its rectification."""
    for level in (5, 5, 4, 3):
        await rate(client, world, level, db=db, rater=dict(RATER))
    bad = await rate(client, world, 1, db=db, rater=dict(RATER), comment=COMMENT)
    await rectify(client, db, world, bad["id"], REPORT)
    return bad


async def test_overview_shows_the_metrics_modules_figures(client, db, world, rated):
    await publish_policy(client, world, {"min_sample": 1}, region_code="330000")
    r = await client.get("/public")
    assert r.status_code == 200, r.text[-2000:]
    now = utcnow()
    window = q.last_twelve_months(now)
    s = await metrics.summary(
        db=db,
        actor=q.PUBLIC,
        region_code="330000",
        since=window.since,
        until=window.until,
    )
    # The region also holds what other tests committed (the browser tests' live world).
    assert s.total >= 5 and s.bad >= 1
    assert shown_figures(r.text) == expected_figures(s)
    assert "浙江省" in r.text and 'href="/public?region=330100"' in r.text
    # The trend table: 12 months, each with the metrics module's monthly figures.
    series = await metrics.timeseries(
        db=db,
        actor=q.PUBLIC,
        granularity="month",
        region_code="330000",
        since=window.since,
        until=window.until,
    )
    cells = r'\s*<td><span class="trend__num">([^<]*)<.*?</td>' + r"\s*<td>([^<]*)</td>" * 2
    rows = re.findall(
        r'<tr data-month="([^"]+)"[^>]*>\s*<th scope="row">[^<]*</th>' + cells, r.text, re.S
    )
    assert rows == [
        (p.period, q.count_text(p.total), q.rate_text(p.good_rate), q.score_text(p.score))
        for p in series.items
    ]
    assert len(rows) == 12 and rows[-1][0] == q.P.current_period("month", now).label
    # The live ranking of windows (W-A1 among them), each row with the module's figures.
    ranking = await metrics.rankings(
        db=db, actor=q.PUBLIC, tier="window", region_code="330000", now=now
    )
    assert world.code("W-A1") in {r.code for r in ranking.items}
    cells = r"\s*<td>(.*?)</td>" * 3
    for top in ranking.items[: q.RANK_ROWS]:
        row = re.search(
            rf'<td>{top.rank}</td>\s*<th scope="row"><a href="/public/orgs/{top.code}">'
            rf"{top.name}</a></th>{cells}",
            r.text,
        )
        assert row, top
        assert row.groups() == (
            q.count_text(top.total),
            q.rate_text(top.good_rate),
            q.score_text(top.score),
        )


async def test_a_sub_region_and_an_unknown_one(client, db, world, rated):
    r = await client.get("/public?region=330102")
    assert r.status_code == 200 and "上城区" in r.text
    assert f'href="/public/orgs/{world.code("HALL-A")}"' in r.text
    now = utcnow()
    window = q.last_twelve_months(now)
    s = await metrics.summary(
        db=db, actor=q.PUBLIC, region_code="330102", since=window.since, until=window.until
    )
    assert s.total >= 5 and shown_figures(r.text) == expected_figures(s)
    r = await client.get("/public?region=330199")
    assert r.status_code == 404 and "330199" in r.text and "text/html" in r.headers["content-type"]


async def test_org_and_item_pages_show_the_metrics_modules_figures(client, db, world, rated):
    now = utcnow()
    window = q.last_twelve_months(now)
    for code in ("HALL-A", "W-A1", "OFFICE"):
        r = await client.get(f"/public/orgs/{world.code(code)}")
        assert r.status_code == 200, r.text[-2000:]
        s = await metrics.summary(
            db=db, actor=q.PUBLIC, org_code=world.code(code), since=window.since, until=window.until
        )
        assert s.total == 5
        assert shown_figures(r.text) == expected_figures(s)
    r = await client.get(f"/public/items/{world.code('ITEM-A1')}")
    assert r.status_code == 200
    s = await metrics.summary(
        db=db,
        actor=q.PUBLIC,
        item_code=world.code("ITEM-A1"),
        since=window.since,
        until=window.until,
    )
    assert shown_figures(r.text) == expected_figures(s)
    assert "综合受理1号窗口" in r.text  # where it is served
    # A unit without ratings shows dashes, not zero rates.
    r = await client.get(f"/public/orgs/{world.code('W-B1')}")
    assert r.status_code == 200 and shown_figures(r.text) == ["0", "—", "—", "0"]


async def test_rectified_bad_reviews_are_published_masked(client, db, world, rated):
    pages = [
        "/public",
        "/public?region=330100",
        "/public?region=330102",
        *(f"/public/orgs/{world.code(c)}" for c in ("OFFICE", "HALL-A", "W-A1", "W-A2", "HALL-B")),
        f"/public/items/{world.code('ITEM-A1')}",
    ]
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, path
        for secret in PLANTED:
            assert secret not in r.text, (path, secret)
            assert secret not in text_of(r.text), (path, secret)
    r = await client.get(f"/public/orgs/{world.code('W-A1')}")
    shown = text_of(r.text)
    # What was wrong and what was done, with the names and numbers masked.
    assert "已约谈李*并培训" in shown and "增设一个综合窗口" in shown
    assert "窗口李*让我跑了三趟，我是欧**娜" in shown
    assert "非常不满意" in shown and "差评整改公示" in shown
    item = text_of((await client.get(f"/public/items/{world.code('ITEM-A1')}")).text)
    assert "增设一个综合窗口" in item


async def test_only_public_counted_reviews_are_published(client, db, world):
    public = await rate(client, world, 2, db=db, comment="公开的差评")
    private = await rate(client, world, 2, db=db, comment="不愿公开的差评", public=False)
    held = await rate(client, world, 2, db=db, comment="待复核的差评")
    for ev, note in ((public, "整改甲"), (private, "整改乙"), (held, "整改丙")):
        await rectify(client, db, world, ev["id"], note)
    await set_standing(
        db=db, evaluation_id=held["id"], standing=Standing.HELD, reason="detector", actor="test"
    )
    await db.commit()
    r = await client.get(f"/public/orgs/{world.code('HALL-A')}")
    assert r.status_code == 200
    assert "公开的差评" in r.text and "整改甲" in r.text
    for hidden in ("不愿公开的差评", "整改乙", "待复核的差评", "整改丙"):
        assert hidden not in r.text
    # A bad review not yet rectified is not published either.
    await rate(client, world, 1, db=db, comment="尚未整改的差评")
    assert "尚未整改的差评" not in (await client.get(f"/public/orgs/{world.code('HALL-A')}")).text


async def test_staff_figures_only_from_five_ratings(client, db, world):
    path = f"/public/orgs/{world.code('W-A1')}"
    for _ in range(4):
        await rate(client, world, 5, db=db)
    r = await client.get(path)
    row = re.search(rf"<th scope=\"row\">{world.code('S-A1')} 李\*</th>(.*?)</tr>", r.text, re.S)
    assert row and "样本不足，暂不公开" in row.group(1) and "<td>4</td>" not in row.group(1)
    await rate(client, world, 4, db=db)
    r = await client.get(path)
    row = re.search(rf"<th scope=\"row\">{world.code('S-A1')} 李\*</th>(.*?)</tr>", r.text, re.S)
    assert row and "样本不足" not in row.group(1)
    assert "<td>5</td><td>100.00%</td><td>9.60</td>" in row.group(1).replace("\n", "").replace(
        " ", ""
    )
    # The threshold is the region's policy.
    await publish_policy(client, world, {"public_min_cell": 6}, region_code="330102")
    r = await client.get(path)
    row = re.search(rf"<th scope=\"row\">{world.code('S-A1')} 李\*</th>(.*?)</tr>", r.text, re.S)
    assert row and "样本不足，暂不公开" in row.group(1)


async def test_staff_ranking_rows_below_the_cell_are_left_out(app, client, db, world):
    await publish_policy(client, world, {"min_sample": 1}, region_code="330000")
    for _ in range(4):
        await rate(client, world, 5, db=db)
    r = await client.get("/public")
    assert f"{world.code('S-A1')} 李*" not in r.text
    await rate(client, world, 5, db=db)
    app.state.public_views.clear()  # the overview is kept for a minute (see below)
    # Ratings of cases that name no staff member are no one's: not a row of the ranking.
    for _ in range(5):
        case = await make_case(db, world, staff_no=None)
        body = EvaluationPayloadFactory(case_no=case["case_no"])
        headers = {"X-Api-Key": world.keys["hall_a_pad"]}
        assert (await client.post("/api/v1/evaluations", json=body, headers=headers)).is_success
    r = await client.get("/public")
    assert f"{world.code('S-A1')} 李*" in r.text and "李娜" not in r.text
    assert "未*" not in r.text and "未关联" not in r.text
    assert re.search(r"工作人员 · [0-9-]+</h3>", r.text)  # the ranking's own title


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/public/orgs/NO-SUCH-HALL", "NO-SUCH-HALL"),
        ("/public/items/NO-SUCH-ITEM", "NO-SUCH-ITEM"),
        ("/public/orgs/" + "X" * 300, "X" * 40),
        ("/public/orgs/%3Cb%3Ebold%3C%2Fb%3E", "&lt;b&gt;bold&lt;/b&gt;"),
    ],
)
async def test_unknown_codes_are_a_friendly_404(client, world, path, named):
    r = await client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert named in r.text and "未找到" in r.text and "<b>bold" not in r.text
    assert '<html lang="zh-CN"' in r.text


async def test_cacheable_with_an_etag_and_no_cookie(client, db, world, rated):
    r = await client.get(f"/public/orgs/{world.code('HALL-A')}")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in r.headers and r.headers["etag"].startswith('W/"')
    again = await client.get(
        f"/public/orgs/{world.code('HALL-A')}", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == r.headers["etag"]
    # A new rating changes the page, so the old tag no longer matches.
    await rate(client, world, 5, db=db)
    changed = await client.get(
        f"/public/orgs/{world.code('HALL-A')}", headers={"If-None-Match": r.headers["etag"]}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != r.headers["etag"]
    # A signed-in visitor gets no cookie from a public page either.
    assert (await sign_in(client, world.users["unit_a"])).status_code == 303
    for path in ("/public", f"/public/items/{world.code('ITEM-A1')}"):
        r = await client.get(path)
        assert r.status_code == 200 and "set-cookie" not in r.headers, path


async def test_nothing_under_public_can_set_a_cookie(app, client):
    """Should a public page ever write to the session (a form's CSRF token, say), the
    session cookie is still kept off its cacheable answer; elsewhere it is set."""

    async def touch(request: Request) -> dict:
        request.session["seen"] = True
        return {"ok": True}

    app.add_api_route("/public/touch", touch)
    app.add_api_route("/elsewhere/touch", touch)
    assert "set-cookie" in (await client.get("/elsewhere/touch")).headers
    r = await client.get("/public/touch")
    assert r.status_code == 200 and "set-cookie" not in r.headers


async def test_public_pages_are_capped_per_ip_with_a_chinese_429(
    settings, engine, sessionmaker, world
):
    app = create_app(settings.model_copy(update={"rate_public_per_minute": 3}))
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.77", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        codes = [
            (await c.get(f"/public/orgs/{world.code('HALL-A')}")).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        r = await c.get("/public")
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert "请求过于频繁" in r.text and '<html lang="zh-CN"' in r.text
        assert "max-age" not in r.headers.get("cache-control", "")
    other = httpx.ASGITransport(app=app, client=("198.51.100.78", 4444))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as c:
        assert (await c.get("/public")).status_code == 200


async def test_an_overview_is_kept_for_a_minute_per_region(app, client, db, world, rated):
    clock = [1000.0]
    app.state.public_views = ViewCache(60, clock=lambda: clock[0])

    def total(page) -> int:
        return int(shown_figures(page.text)[0].replace(",", ""))

    first = total(await client.get("/public"))
    await rate(client, world, 5, db=db)
    clock[0] += 59
    assert total(await client.get("/public")) == first  # as a proxy would
    # Another region is its own entry: computed now, with the new rating.
    assert total(await client.get("/public?region=330102")) >= 6
    clock[0] += 2
    assert total(await client.get("/public")) == first + 1
    # Organisation and item pages are cheap: always computed.
    assert total(await client.get(f"/public/orgs/{world.code('HALL-A')}")) == 6


async def test_the_landing_page_links_to_the_results(client):
    r = await client.get("/")
    assert r.status_code == 200 and 'href="/public"' in r.text


def test_the_trend_window_is_twelve_local_months():
    now = utcnow()
    window = q.last_twelve_months(now)
    assert window.until == now and timedelta(days=334) < now - window.since < timedelta(days=366)
