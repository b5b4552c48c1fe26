"""The demo province in chromium: what a newcomer finds on the newest pages after
`haochaping demo` — the pads of the demo hall in the console, a /c/ comment page, the
assessor's inspection visits, and the 上报 page of a province with no parent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from haochaping.demo import loader
from tests.pages.conftest import DESKTOP, LiveServer, loaded_width, serving
from tests.pages.conftest import browser as browser  # the session's chromium, a fixture

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_server(demo_settings, tmp_path_factory) -> Iterator[LiveServer]:
    """A small demo committed into the module's own database, served as `serve --demo`."""
    settings = demo_settings.model_copy(
        update={"upload_dir": str(tmp_path_factory.mktemp("demo-uploads"))}
    )
    asyncio.run(loader.load(settings, cases=300, seed=11))
    with serving(settings) as live:
        yield live


async def sign_in(browser, live: LiveServer, username: str, password: str):
    context = await browser.new_context(base_url=live.url, locale="zh-CN", **DESKTOP)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    return context, page


async def test_the_newest_pages_show_the_demo(browser, demo_server):
    hall = "990100-DT01"  # the README's demo hall (星湖市政务服务中心)
    context, page = await sign_in(browser, demo_server, "office", "office12345")
    try:
        await page.goto("/console/pads")
        await expect(page.get_by_role("heading", level=1)).to_have_text("评价器")
        rows = page.locator("table tbody tr")
        await expect(rows.filter(has_text="已配对").first).to_be_visible()
        await expect(rows.filter(has_text="已停用")).to_have_count(1)
        assert await rows.filter(has_text="已配对").count() >= 2
        await expect(rows.filter(has_text=f"（{hall}-").first).to_be_visible()  # its windows

        await page.goto(f"/c/{hall}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("综合点评")
        await expect(page.get_by_text("星湖市政务服务中心", exact=True)).to_be_visible()
    finally:
        await context.close()

    context, page = await sign_in(browser, demo_server, "assessor", "assessor12345")
    try:
        await page.goto("/console/inspections")
        await expect(page.get_by_role("heading", level=1)).to_have_text("监督查评")
        visits = page.locator("#visits tbody tr")
        await expect(visits.first).to_be_visible()
        assert await visits.count() >= 5
        await expect(visits.filter(has_text="工单 #").first).to_be_visible()
        # The oldest visit has photos (the demo's first visit always does).
        await visits.last.get_by_role("link").click()
        await expect(page.locator("#answers li")).to_have_count(10)  # the city's own list
        photo = page.get_by_role("img", name="现场照片 1：现场照片1.png")
        await expect(photo).to_be_visible()
        assert await loaded_width(photo) == 48
    finally:
        await context.close()

    context, page = await sign_in(browser, demo_server, "admin", "admin12345")
    try:
        await page.goto("/console/upstream")
        await expect(page.get_by_role("heading", level=1)).to_have_text("上报")
        await expect(page.get_by_test_id("no-upstream")).to_be_visible()
        children = page.get_by_test_id("upstream-children")
        await expect(children).to_contain_text("好差评平台")
        await expect(children.locator("tbody tr")).to_have_count(1)
    finally:
        await context.close()
