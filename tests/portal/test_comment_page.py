"""综合点评 (`/c/{org_code}`): the public comment page of a hall or department, its
thank-you page, its rate limit and its printable QR poster."""

from __future__ import annotations

import os
import re
import secrets

import httpx
import pytest
from sqlalchemy import select, text

from haochaping.app import create_app, shutdown, startup
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.workorders.models import WorkOrder
from tests.factories import table_counts
from tests.pages.helpers import csrf_of

PHONE = "13912345678"


async def form_token(client, code: str = "HALL-A") -> str:
    r = await client.get(f"/c/{code}")
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


async def comment(client, code: str = "HALL-A", **fields) -> httpx.Response:
    data = {"csrf_token": await form_token(client, code), **fields}
    return await client.post(f"/c/{code}", data=data)


async def latest_review(db, org_code: str = "HALL-A") -> Evaluation | None:
    return (
        await db.execute(
            select(Evaluation)
            .join(Org, Org.id == Evaluation.org_id)
            .where(Org.code == org_code, Evaluation.channel == "review")
            .order_by(Evaluation.id.desc())
        )
    ).scalar()


async def test_the_page_of_a_hall_offers_the_five_levels_and_the_reasons(client, world):
    r = await client.get("/c/HALL-A")
    assert r.status_code == 200
    assert "综合点评" in r.text and "上城区市民之家" in r.text
    for label in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert label in r.text
    assert 'value="115"' in r.text and "服务态度差效率低" in r.text
    assert 'name="phone"' in r.text and 'name="csrf_token"' in r.text
    # A department has a page too.
    assert (await client.get("/c/DEPT-M")).status_code == 200


@pytest.mark.parametrize("code", ["NO-SUCH-ORG", "W-A1"])
async def test_unknown_or_window_codes_get_a_chinese_404_page(client, world, code):
    r = await client.get(f"/c/{code}", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "未找到可以点评的服务大厅或部门" in r.text and "<html" in r.text
    assert (await client.get(f"/c/{code}/poster")).status_code == 404


async def test_a_good_comment_is_stored_as_a_review_of_the_org(client, db, world):
    r = await comment(client, level="5", reasons=["517"], comment="大厅很整洁", phone=PHONE)
    assert r.status_code == 303 and r.headers["location"] == "/c/HALL-A/thanks"
    row = await latest_review(db)
    assert row is not None
    assert (row.channel, row.case_id, row.stage, row.level) == ("review", None, "whole", 5)
    assert row.reasons == ["517"] and row.comment == "大厅很整洁"
    hall = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
    assert row.org_id == hall.id and row.client_id is None and row.user_id is None
    # The phone is kept as the rater's phone is everywhere: encrypted, with its keyed hash.
    assert row.rater_phone == PHONE and row.rater_phone_hash
    raw = (
        await db.execute(text("SELECT rater_phone FROM evaluation WHERE id = :id"), {"id": row.id})
    ).scalar()
    assert raw and PHONE not in raw
    thanks = await client.get("/c/HALL-A/thanks")
    assert thanks.status_code == 200
    assert "谢谢您的点评" in thanks.text and "139****5678" in thanks.text
    assert PHONE not in thanks.text and f"评价编号：<strong>{row.id}</strong>" in thanks.text
    # Nothing to thank for on another hall's page, nor without a comment just given.
    assert (await client.get("/c/HALL-B/thanks")).headers["location"] == "/c/HALL-B"


async def test_a_bad_comment_opens_a_work_order(client, db, world):
    r = await comment(client, level="1", reasons=["115"], comment="窗口没人，等了一个小时")
    assert r.status_code == 303, r.text
    row = await latest_review(db)
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == row.id))
    ).scalar_one()
    assert order.state is not None
    thanks = await client.get("/c/HALL-A/thanks")
    assert "转交该单位核实整改" in thanks.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "请选择您的满意程度"),
        ({"level": "1"}, "差评须至少选择一项原因或填写评价内容"),
        ({"level": "5", "reasons": ["115"]}, "与所选等级"),
        ({"level": "5", "reasons": ["999"]}, "不存在"),
        ({"level": "5", "phone": "call-me"}, "联系电话格式不正确"),
        ({"level": "5", "comment": "很" * 2001}, "不能超过 2000 字"),
    ],
)
async def test_bad_input_is_a_422_page_and_nothing_is_stored(client, db, world, fields, message):
    before = await table_counts(db)
    r = await comment(client, **fields)
    assert r.status_code == 422, r.text
    assert message in r.text and 'role="alert"' in r.text
    assert await table_counts(db) == before


async def test_a_post_without_the_form_token_is_refused(client, db, world):
    before = await table_counts(db)
    r = await client.post("/c/HALL-A", data={"level": "5"})
    assert r.status_code == 403 and "页面已失效" in r.text
    r = await client.post("/c/HALL-A", data={"level": "5", "csrf_token": "forged"})
    assert r.status_code == 403
    assert await table_counts(db) == before


async def test_comments_are_capped_per_ip_with_a_chinese_page(
    settings, engine, sessionmaker, db, world
):
    app = create_app(settings.model_copy(update={"rate_comment_per_hour": 2}))
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.77", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for _ in range(2):
            assert (await comment(c, level="5")).status_code == 303
        before = await table_counts(db)
        r = await comment(c, level="5")
        assert r.status_code == 429
        assert "您提交点评过于频繁，请一小时后再试" in r.text and "<html" in r.text
        assert await table_counts(db) == before
        # Reading the page is not a comment: still served.
        assert (await c.get("/c/HALL-A")).status_code == 200
    other = httpx.ASGITransport(app=app, client=("198.51.100.78", 4000))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as c:
        assert (await comment(c, level="5")).status_code == 303


async def test_the_poster_is_a_printable_page_with_the_qr_code(client, world):
    r = await client.get("/c/HALL-A/poster")
    assert r.status_code == 200
    assert "扫码评价" in r.text and "上城区市民之家" in r.text
    assert "/static/css/poster.css" in r.text
    svg = re.search(r"<svg.*?</svg>", r.text, re.S)
    assert svg and "<path" in svg.group(0)
    assert "http://testserver/c/HALL-A" in r.text


async def test_the_cap_is_shared_by_every_process_through_redis(
    settings, engine, sessionmaker, db, world
):
    """Two server processes (two apps) on one Redis: the second sees the first's count."""
    url = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    shared = settings.model_copy(update={"rate_comment_per_hour": 1, "redis_url": url})
    # An address of this run only, so that no earlier run's count in Redis is met.
    ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    clients = []
    for _ in range(2):
        app = create_app(shared)
        await startup(app, engine=engine, sessionmaker=sessionmaker)
        transport = httpx.ASGITransport(app=app, client=(ip, 4000))
        clients.append((app, httpx.AsyncClient(transport=transport, base_url="http://testserver")))
    try:
        assert (await comment(clients[0][1], level="4")).status_code == 303
        r = await comment(clients[1][1], level="4")
        assert r.status_code == 429 and "请一小时后再试" in r.text
    finally:
        for app, c in clients:
            await c.aclose()
            await shutdown(app)
