"""Administration in a real browser (issue 11): an administrator creates an organisation
and an account, choosing organisations by name with the picker, on a desk and on a phone,
with large fonts, under the enforced CSP; every page passes axe."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import expect

from tests.factories import PASSWORD
from tests.pages.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser


async def _sign_in(page, username: str) -> None:
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")


async def _pick(page, form, label: str, typed: str, code: str) -> None:
    """Type part of a name into a picker, wait for its options, take the code offered."""
    field = form.get_by_label(label, exact=True)
    await field.fill(typed)
    picker_id = await field.get_attribute("id")
    await expect(page.locator(f'#{picker_id}-options option[value="{code}"]')).to_have_count(1)
    await expect(page.locator(f"#{picker_id}-status")).to_contain_text("找到")
    await field.fill(code)
    # The code typed asks once more (after the picker's 300 ms pause): let it finish
    # before the form leaves the page, or the browser aborts it.
    await page.wait_for_timeout(400)
    await expect(field).not_to_have_class(re.compile("htmx-request"))


async def _create_org_and_user(page, world, tag: str) -> None:
    s = world.suffix
    await page.get_by_role("link", name="机构与人员").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("机构")
    form = page.get_by_role("region", name="新增机构")
    await form.get_by_label("机构编码", exact=True).fill(f"DEPT-{tag}{s}")
    await form.get_by_label("机构名称", exact=True).fill(f"人力社保局{tag}")
    await form.get_by_label("类型", exact=True).select_option("department")
    await _pick(page, form, "上级机构", "省政务服务", f"OFFICE{s}")
    await form.get_by_label("行政区划", exact=True).select_option("330100")
    await form.get_by_role("button", name="新增机构").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"人力社保局{tag}")
    await expect(page.locator("#flash")).to_contain_text("已新增机构")

    await page.get_by_role("link", name="账号与密钥").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("账号")
    form = page.get_by_role("region", name="新增账号")
    await form.get_by_label("用户名", exact=True).fill(f"hr{tag}{s}")
    await form.get_by_label("姓名", exact=True).fill("周岚")
    await form.get_by_label("初始密码", exact=True).fill(PASSWORD)
    await form.get_by_label("角色", exact=True).select_option("unit")
    await _pick(page, form, "所属机构", f"人力社保局{tag}", f"DEPT-{tag}{s}")
    await form.get_by_role("button", name="创建账号").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"账号 hr{tag}{s}")
    await expect(page.locator("#flash")).to_contain_text("已创建账号")


async def test_an_admin_creates_an_org_and_a_user_on_a_desk(new_page, live_server, live_world):
    page = await new_page(DESKTOP)  # the CSP enforced: htmx fills the pickers within it
    await _sign_in(page, live_world.users["admin"])
    await _create_org_and_user(page, live_world, uuid.uuid4().hex[:6].upper())
    assert page.errors == []


async def test_on_a_phone_with_large_fonts(new_page, live_server, live_world):
    page = await new_page(PHONE)
    await _sign_in(page, live_world.users["admin"])
    await page.get_by_role("link", name="特大", exact=True).click()
    await _create_org_and_user(page, live_world, uuid.uuid4().hex[:6].upper())
    for path in ("/console/directory", "/console/users", "/console/clients"):
        await page.goto(path)
        wide = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"{path} scrolls sideways on a phone by {wide}px"
    assert page.errors == []


async def test_the_pages_pass_axe(new_page, live_server, live_world):
    page = await new_page(DESKTOP, bypass_csp=True)
    await _sign_in(page, live_world.users["admin"])
    found: dict[str, list] = {}
    paths = [
        "/console/directory",
        "/console/directory/staff",
        "/console/directory/items",
        "/console/directory/regions",
        "/console/users",
        "/console/clients",
    ]
    for path in paths:
        await page.goto(path)
        found[path] = await axe_violations(page)
    await page.goto("/console/directory")
    await page.get_by_role("link", name="上城区市民之家").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("上城区市民之家")
    found["org detail"] = await axe_violations(page)
    await page.goto("/console/users")
    await page.get_by_role("link", name=live_world.users["unit_a"]).click()
    found["user detail"] = await axe_violations(page)
    await page.set_viewport_size(PHONE["viewport"])
    await page.goto("/font?size=xlarge&next=/console/users")
    found["users, phone, large"] = await axe_violations(page)
    await page.goto("/console/directory")
    found["directory, phone, large"] = await axe_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
