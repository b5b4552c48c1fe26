"""Error pages over HTTP: an unknown address is a Chinese page with navigation for a browser
and the error body for a JSON client; a console refusal keeps the signed-in navigation; the
missing-calendar banner reaches those who can fix it, and offices as a quiet line."""

from __future__ import annotations

import pytest

from haochaping.accounts import service as account_service
from tests.factories import PASSWORD, assert_error, bearer_headers
from tests.pages.helpers import sign_in

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
BANNER = "2027 年的工作日历缺失"
QUIET = "2027 年的工作日历尚未导入"


@pytest.mark.parametrize("path", ["/no-such-page", "/r", "/ledger/nothing/here"])
async def test_unknown_address_is_a_chinese_page_for_a_browser(client, path):
    r = await client.get(path, headers=BROWSER)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>页面不存在</h1>" in r.text and "您访问的页面不存在" in r.text
    assert 'aria-label="主导航"' in r.text
    for link in ('href="/"', 'href="/ledger"', 'href="/login"'):
        assert link in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]


async def test_json_clients_still_get_the_error_body(client):
    assert_error(await client.get("/no-such-page"), 404, "not_found")
    assert_error(
        await client.get("/no-such-page", headers={"Accept": "application/json"}), 404, "not_found"
    )
    # The API answers JSON even to a browser.
    assert_error(await client.get("/api/v1/no-such-thing", headers=BROWSER), 404, "not_found")
    assert_error(await client.get("/static/nothing.js", headers=BROWSER), 404, "not_found")


async def test_api_refusals_stay_json_for_a_browser(client, world):
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await client.post("/api/v1/clients/1/revoke", headers={**unit, **BROWSER})
    assert_error(r, 403, "role_forbidden")


async def test_wrong_method_in_a_browser_is_a_page(client):
    r = await client.get("/logout", headers=BROWSER)
    assert r.status_code == 405 and "此页面不能这样打开" in r.text
    assert "POST" in r.headers["allow"]
    assert_error(await client.get("/logout"), 405, "method_not_allowed")


async def test_console_refusal_keeps_the_navigation(client, world):
    await sign_in(client, world.users["unit_a"])
    r = await client.get("/console/supervision", headers=BROWSER)
    assert r.status_code == 403
    assert "此页面仅供政务服务管理机构和系统管理员使用" in r.text
    assert 'aria-label="主导航"' in r.text
    assert '<a href="/console/evaluations">评价记录</a>' in r.text
    assert "退出登录" in r.text
    missing = await client.get("/console/no-such-page", headers=BROWSER)
    assert missing.status_code == 404
    assert '<a href="/console/work-orders">差评工单</a>' in missing.text


async def test_console_refusal_without_a_session_has_no_navigation(client, world):
    r = await client.get("/console/no-such-page", headers=BROWSER)
    assert r.status_code == 404 and 'aria-label="主导航"' not in r.text


async def test_calendar_banner_audience_by_role(client, db, world):
    s = world.suffix
    people = {
        "root-admin": ("admin", f"OFFICE{s}"),
        "hall-admin": ("admin", f"HALL-A{s}"),
        "office": ("office", f"OFFICE{s}"),
        "unit": ("unit", f"HALL-A{s}"),
        "staff": ("staff", f"W-A1{s}"),
        "assessor": ("assessor", f"OFFICE{s}"),
    }
    for name, (role, org) in people.items():
        await account_service.create_user(
            db=db, username=f"banner-{name}{s}", password=PASSWORD, role=role, org_code=org
        )
    seen = {}
    for name in people:
        client.cookies.clear()
        r = await sign_in(client, f"banner-{name}{s}")
        assert r.status_code == 303, r.text
        page = await client.get("/console/evaluations")
        assert page.status_code == 200
        seen[name] = "warning" if BANNER in page.text else "quiet" if QUIET in page.text else "none"
    assert seen == {
        "root-admin": "warning",
        "hall-admin": "quiet",
        "office": "quiet",
        "unit": "none",
        "staff": "none",
        "assessor": "none",
    }
