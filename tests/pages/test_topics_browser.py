"""The dashboard's emerging complaint topics in a real browser (issue 12): the planted matter
first in the table, its weekly trend drawn with ECharts under the CSP, masked examples, and
axe finds nothing serious."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import expect

from haochaping.topics import jobs
from tests.factories import (
    PASSWORD,
    TOPIC_ID_NO,
    TOPIC_PHONE,
    add_weeks_of_comments,
    now,
)
from tests.pages.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser


@pytest.fixture
async def planted(committing, live_world):
    """Twelve weeks of the live world's item ITEM-A1, with complaints about booking numbers
    (预约号) growing over the last three, segmented by the job."""
    async with committing() as db:
        await add_weeks_of_comments(
            db, live_world, "ITEM-A1", [4] * 12, planted=[0] * 9 + [3, 6, 10]
        )
        await db.commit()
    await jobs.refresh(committing, now=now() + timedelta(days=1))


async def sign_in(page, username: str) -> None:
    await page.goto("/console/dashboard")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("数据看板")


async def test_the_emerging_topics_chart_and_table(new_page, live_world, planted):
    page = await new_page(DESKTOP)
    await sign_in(page, live_world.users["office"])
    block = page.locator("#block-emerging")
    await expect(block.get_by_role("heading", name="新出现的投诉话题")).to_be_visible()
    first = page.locator("#table-emerging tbody tr").first
    await expect(first.get_by_role("rowheader")).to_have_text("预约号（营业执照核发）")
    await expect(first).to_contain_text("预约号")
    text = await block.inner_text()
    assert TOPIC_PHONE not in text and TOPIC_ID_NO not in text
    chart = page.locator('[data-chart="emerging"]')
    await expect(chart).to_be_visible()
    await expect(chart).to_have_attribute("aria-hidden", "true")
    await expect(chart.locator("canvas")).to_have_count(1)
    # The chart draws the table's numbers: the first line is the first row's weekly counts.
    drawn = await page.evaluate(
        """() => {
            const el = document.querySelector('[data-chart="emerging"]');
            const option = echarts.getInstanceByDom(el).getOption();
            return [option.series[0].name, option.series[0].data, option.xAxis[0].data.length];
        }"""
    )
    assert drawn[0] == "预约号（营业执照核发）"
    assert sum(drawn[1][-4:]) == 19 and sum(drawn[1][:-4]) == 0 and drawn[2] == 12
    await page.screenshot(path="/tmp/hcp-dashboard-topics.png", full_page=True)
    assert page.errors == []

    phone = await new_page(PHONE, bypass_csp=True)
    await sign_in(phone, live_world.users["office"])
    await expect(phone.locator("#block-emerging")).to_be_visible()
    assert await axe_violations(phone) == []
    desk = await new_page(DESKTOP, bypass_csp=True)
    await sign_in(desk, live_world.users["office"])
    assert await axe_violations(desk) == []
