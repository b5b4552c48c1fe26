"""Console pages over HTTP: sign-in, CSRF, redirects and the filtered list of ratings."""

from __future__ import annotations

import re

import pytest

from tests.factories import make_case
from tests.pages.helpers import csrf_of, rate, sign_in

LIST = "/console/evaluations"


def rows(html: str) -> list[str]:
    """The data-level of each row of the list, in order."""
    return re.findall(r'<tr class="[^"]*" data-level="(\d)" data-id="\d+">', html)


@pytest.fixture
async def rated(client, db, world):
    """Two ratings at hall A (非常满意 and 不满意) and one at hall B."""
    good = await make_case(db, world)
    bad = await make_case(db, world)
    other = await make_case(
        db, world, item_code="ITEM-B1", org_code="HALL-B", window_code="W-B1", staff_no="S-B1"
    )
    key = world.keys["all"]
    await rate(client, key, good["case_no"], 5, reasons=["517"])
    await rate(
        client, key, bad["case_no"], 2, reasons=["213"], comment="工作人员让我打13812345678问"
    )
    await rate(client, key, other["case_no"], 4)
    return {"good": good, "bad": bad, "other": other}


async def test_console_needs_a_signed_in_user(client):
    r = await client.get(LIST + "?level=2")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fconsole%2Fevaluations%3Flevel%3D2"
    r = await client.get(LIST, headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["hx-redirect"].startswith("/login?next=")
    r = await client.get("/console")
    assert r.status_code == 303 and r.headers["location"] == LIST


async def test_login_page(client):
    r = await client.get("/login?next=/console/evaluations")
    assert r.status_code == 200
    assert '<html lang="zh-CN"' in r.text and "登录管理端" in r.text
    assert 'name="next" value="/console/evaluations"' in r.text and csrf_of(r.text)
    r = await client.get("/login?next=https://evil.example/")
    assert f'name="next" value="{LIST}"' in r.text


async def test_sign_in_and_out(client, world, rated):
    r = await sign_in(client, world.users["admin"], next=LIST + "?level=2")
    assert r.status_code == 303 and r.headers["location"] == LIST + "?level=2"
    page = await client.get(LIST)
    assert page.status_code == 200
    assert world.users["admin"] in page.text and "系统管理员" in page.text
    # Sign out needs the session's CSRF token too.
    assert (await client.post("/logout")).status_code == 403
    r = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert (await client.get(LIST)).status_code == 303


async def test_wrong_password_shows_the_form_again(client, db, world):
    r = await sign_in(client, world.users["office"], password="wrong-password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text and f'value="{world.users["office"]}"' in r.text
    r = await sign_in(client, "nobody", password="whatever-123")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = await sign_in(client, "", password="")
    assert r.status_code == 422 and "请输入用户名和密码" in r.text
    assert (await client.get(LIST)).status_code == 303


async def test_forms_without_a_matching_csrf_token_are_refused(client, world):
    data = {"username": world.users["admin"], "password": "pass-word-123"}
    r = await client.post("/login", data=data)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html") and "请返回刷新页面后重试" in r.text
    await client.get("/login")
    r = await client.post("/login", data={**data, "csrf_token": "forged"})
    assert r.status_code == 403
    assert (await client.get(LIST)).status_code == 303


async def test_list_shows_ratings_masked_and_marks_bad_ones(client, world, rated):
    await sign_in(client, world.users["admin"])
    page = await client.get(LIST)
    assert page.status_code == 200
    html = page.text
    assert rows(html)[:3] == ["4", "2", "5"]
    assert rated["bad"]["case_no"] in html and "窗口人员业务不熟练" in html
    assert 'class="tag-bad">差评<' in html and 'class="is-bad"' in html
    # Personal data stays masked, inside free text too.
    assert "138****5678" in html and "13812345678" not in html
    assert "张*" in html and rated["bad"]["applicant"]["cert_no"] not in html
    assert "本页 <strong>3</strong> 条评价" in html and "（占 33.3%）" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", html)


async def test_filters_narrow_the_list(client, world, rated):
    await sign_in(client, world.users["admin"])
    r = await client.get(LIST, params={"level": "2"})
    assert rows(r.text) == ["2"] and rated["bad"]["case_no"] in r.text
    r = await client.get(LIST, params={"case_no": rated["good"]["case_no"]})
    assert rows(r.text) == ["5"]
    r = await client.get(LIST, params={"org_code": "HALL-B"})
    assert rows(r.text) == ["4"]
    r = await client.get(LIST, params={"item_code": "ITEM-A1", "channel": "pad"})
    assert sorted(rows(r.text)) == ["2", "5"]
    r = await client.get(LIST, params={"channel": "sms"})
    assert rows(r.text) == [] and "没有符合条件的评价" in r.text
    r = await client.get(LIST, params={"since": "2000-01-01", "until": "2000-01-31"})
    assert rows(r.text) == []
    r = await client.get(LIST, params={"level": "9", "since": "yesterday"})
    assert r.status_code == 200 and len(rows(r.text)) == 3
    assert "评价等级取值无效" in r.text and "开始日期格式应为" in r.text


async def test_htmx_gets_only_the_results(client, world, rated):
    await sign_in(client, world.users["admin"])
    r = await client.get(LIST, params={"level": "5"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and rows(r.text) == ["5"]
    assert 'hx-swap-oob="true">已更新：本页 1 条评价，其中差评 0 条<' in r.text
    assert "HX-Request" in r.headers["vary"]
    full = await client.get(
        LIST,
        params={"level": "5"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in full.text


async def test_list_is_limited_to_the_users_subtree(client, world, rated):
    await sign_in(client, world.users["unit_b"])
    r = await client.get(LIST)
    assert rows(r.text) == ["4"] and rated["bad"]["case_no"] not in r.text


async def test_next_page_follows_the_cursor(client, db, world):
    key = world.keys["all"]
    for _ in range(21):
        case = await make_case(db, world)
        await rate(client, key, case["case_no"], 3)
    await sign_in(client, world.users["admin"])
    first = await client.get(LIST, params={"level": "3"})
    assert len(rows(first.text)) == 20
    link = re.search(r'<a class="button" rel="next" href="([^"]+)"', first.text)
    assert link and "%E4%B8%8B" not in link.group(1)
    second = await client.get(link.group(1).replace("&amp;", "&"))
    assert len(rows(second.text)) == 1 and "回到第一页" in second.text
    assert 'rel="next"' not in second.text
    bad = await client.get(LIST, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "分页游标无效" in bad.text


async def test_unknown_console_page_is_a_chinese_404(client):
    r = await client.get("/console/nothing-here")
    assert r.status_code == 404 and "页面不存在" in r.text
    assert r.headers["content-type"].startswith("text/html")
