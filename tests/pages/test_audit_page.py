"""The console's audit trail (/console/audit, 审计日志): the root administrator's page,
in the navigation, filtered and paged; everyone else is refused (issue 9)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import expect

from haochaping.accounts import service as account_service
from haochaping.core import audit
from haochaping.core.audit import AuditAction
from tests.factories import PASSWORD
from tests.pages.conftest import DESKTOP, PHONE, axe_violations
from tests.pages.helpers import sign_in

AUDIT = "/console/audit"


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


async def _acts(db, world) -> str:
    """Two acts by a hall's person and one by the command line, with one tag."""
    tag = uuid.uuid4().hex[:8]
    for actor, role, action in (
        (world.users["unit_a"], "unit", AuditAction.REVEAL_PHONE),
        (world.users["office"], "office", AuditAction.PUBLISH_POLICY),
        ("cli", None, AuditAction.IMPORT_CALENDAR),
    ):
        audit.record(
            db,
            actor=actor,
            actor_role=role,
            action=action,
            target_type="test",
            target_id=None,
            detail={"tag": tag},
        )
    await db.commit()
    return tag


async def test_the_root_administrator_reads_the_trail(client, db, world):
    tag = await _acts(db, world)
    await sign_in(client, world.users["admin"])
    home = await client.get("/console/evaluations")
    assert 'href="/console/audit"' in home.text
    page = await client.get(AUDIT)
    assert page.status_code == 200
    assert "<h1>审计日志</h1>" in page.text
    assert f"tag：{tag}" in page.text
    assert "查看评价人手机号" in page.text and "导入工作日历" in page.text
    ids = row_ids(page.text)
    assert ids == sorted(ids, reverse=True)

    page = await client.get(AUDIT, params={"action": "reveal_phone"})
    assert page.status_code == 200 and "查看评价人手机号" in page.text
    assert "导入工作日历</div>" not in page.text
    page = await client.get(AUDIT, params={"actor": world.users["office"]})
    assert "发布政策参数</div>" in page.text and "查看评价人手机号</div>" not in page.text

    # htmx gets the results only.
    part = await client.get(AUDIT, params={"actor": "cli"}, headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<h1>" not in part.text and "导入工作日历" in part.text


async def test_bad_filters_are_422_in_chinese_and_show_no_rows(client, db, world):
    await _acts(db, world)
    await sign_in(client, world.users["admin"])
    for params, message in (
        ({"action": "drop_table"}, "操作类型取值无效"),
        ({"since": "2026-13-40"}, "开始日期格式应为 年-月-日"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "结束日期早于开始日期"),
    ):
        page = await client.get(AUDIT, params=params)
        assert page.status_code == 422 and message in page.text, params
        assert row_ids(page.text) == [], params


async def test_pages_with_a_cursor(client, db, world, monkeypatch):
    from haochaping.console import views

    await _acts(db, world)
    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    await sign_in(client, world.users["admin"])
    page = await client.get(AUDIT)
    first = row_ids(page.text)
    link = re.search(r'<a class="button" rel="next" href="([^"]+)"', page.text)
    assert len(first) == 1 and link
    page = await client.get(link.group(1).replace("&amp;", "&"))
    second = row_ids(page.text)
    assert page.status_code == 200 and len(second) == 1 and second[0] < first[0]


async def test_only_the_root_administrator_may_read_it(client, db, world):
    tag = await _acts(db, world)
    hall_admin = f"hadmin{tag}"
    await account_service.create_user(
        db=db, username=hall_admin, password=PASSWORD, role="admin", org_code="HALL-A"
    )
    await db.commit()
    for username in (world.users["office"], world.users["unit_a"], hall_admin):
        await sign_in(client, username)
        page = await client.get(AUDIT)
        assert page.status_code == 403 and "此操作仅限根机构的系统管理员" in page.text, username
        assert f"tag：{tag}" not in page.text
    await sign_in(client, world.users["office"])
    home = await client.get("/console/evaluations")
    assert 'href="/console/audit"' not in home.text
    client.cookies.clear()
    r = await client.get(AUDIT)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]


@pytest.mark.browser
async def test_the_page_passes_axe_on_a_desk_and_a_phone(new_page, live_server, live_world):
    page = await new_page(DESKTOP, bypass_csp=True)
    await page.goto("/login")
    await page.get_by_label("用户名").fill(live_world.users["admin"])
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")
    await page.get_by_role("link", name="审计日志").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("审计日志")
    found = {"audit trail": await axe_violations(page)}
    await page.get_by_label("操作类型").select_option("create_user")
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("status")).to_contain_text("已更新")
    found["audit trail, filtered"] = await axe_violations(page)
    await page.set_viewport_size(PHONE["viewport"])
    found["audit trail, narrow"] = await axe_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
    assert page.errors == []
