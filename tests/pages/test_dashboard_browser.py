"""The dashboard in a real browser: the charts drawn under the CSP, a click on a row and on a
bar drills one tier down (and back works), axe finds nothing serious, the large-font mode
redraws the charts bigger and the page still fits a phone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.async_api import expect

from tests.factories import PASSWORD, add_rating, now
from tests.pages.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser
SCREENSHOTS = "/tmp"


@pytest.fixture
async def live_ratings(committing, live_world):
    """Ratings of the live world in the last days (inside the default 近30天)."""
    async with committing() as db:
        for n, level in enumerate([5, 4, 2, 5]):
            await add_rating(
                db,
                live_world,
                level=level,
                at=now() - timedelta(days=1 + n),
                reasons=["213"] if level == 2 else ["517"],
            )
        await add_rating(
            db,
            live_world,
            level=1,
            at=now() - timedelta(days=2),
            org="HALL-B",
            window="W-B1",
            staff="S-B1",
            item="ITEM-B1",
        )
        await db.commit()


async def sign_in(page, username: str) -> None:
    await page.goto("/console/dashboard")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("数据看板")


async def bar_point(page, key: str, name: str) -> tuple[float, float]:
    """Where, on the page, the bar of a row is drawn (asked from ECharts itself)."""
    chart = page.locator(f'[data-chart="{key}"]')
    await chart.scroll_into_view_if_needed()
    box = await chart.bounding_box()
    assert box is not None
    x, y = await page.evaluate(
        """([key, name]) => {
            const el = document.querySelector(`[data-chart="${key}"]`);
            const chart = echarts.getInstanceByDom(el);
            const option = chart.getOption();
            const index = option.yAxis[0].data.indexOf(name);
            const value = option.series[0].data[index];
            return chart.convertToPixel({seriesIndex: 0}, [value / 2, index]);
        }""",
        [key, name],
    )
    return box["x"] + x, box["y"] + y


async def test_drill_down_by_row_and_by_bar(new_page, live_server, live_world, live_ratings):
    page = await new_page(DESKTOP)
    # Without animation, a bar is where it will stay when the test clicks it.
    await page.emulate_media(reduced_motion="reduce")
    await sign_in(page, live_world.users["office"])
    children = page.locator("#table-children")
    await expect(page.locator("#scope-line")).to_contain_text("浙江省")
    # The charts are drawn (canvas), hidden from screen readers; the tables carry the data.
    for key in ("trend", "levels", "channels", "children"):
        chart = page.locator(f'[data-chart="{key}"]')
        await expect(chart).to_be_visible()
        await expect(chart).to_have_attribute("aria-hidden", "true")
        await expect(chart.locator("canvas")).to_have_count(1)
    await page.screenshot(path=f"{SCREENSHOTS}/hcp-dashboard-desktop.png", full_page=True)

    # A click on the row (not on its link) goes one tier down: the province's city.
    await children.get_by_role("row").filter(has_text="杭州市").get_by_role("cell").nth(1).click()
    await expect(page).to_have_url(f"{live_server.url}/console/dashboard?node=region%3A330100")
    await expect(page.locator("#scope-line")).to_contain_text("杭州市")
    await expect(children.get_by_role("rowheader", name="上城区")).to_be_visible()
    # Beside its counties, the city's own hall.
    await expect(children.get_by_role("rowheader", name="杭州市民中心")).to_be_visible()
    trail = page.get_by_role("navigation", name="统计范围层级")
    await expect(trail.get_by_role("link", name="浙江省")).to_be_visible()

    # A click on the county's bar goes one more tier down.
    x, y = await bar_point(page, "children", "上城区")
    await page.mouse.click(x, y)
    await expect(page).to_have_url(f"{live_server.url}/console/dashboard?node=region%3A330102")
    await expect(page.locator("#scope-line")).to_contain_text("上城区")
    await expect(children.get_by_role("rowheader").first).to_have_text("上城区市民之家")
    # The node picker shows where we are.
    await expect(page.get_by_label("统计范围", exact=True)).to_have_value("region:330102")

    # Back returns to the city, as the URL held the state.
    await page.go_back()
    await expect(page.locator("#scope-line")).to_contain_text("杭州市")
    await page.go_back()
    await expect(page.locator("#scope-line")).to_contain_text("浙江省")
    assert page.errors == []  # no script error, nothing refused by the CSP


async def test_filters_without_a_preset_become_custom_dates(new_page, live_world, live_ratings):
    page = await new_page(DESKTOP)
    await sign_in(page, live_world.users["office"])
    await page.get_by_label("统计时段").select_option("7d")
    await page.get_by_role("button", name="查询").click()
    await expect(page).to_have_url(re.compile(r"preset=7d"))
    await page.get_by_label("开始日期").fill((now() - timedelta(days=3)).date().isoformat())
    await expect(page.get_by_label("统计时段")).to_have_value("custom")
    await page.get_by_role("button", name="查询").click()
    await expect(page).to_have_url(re.compile(r"preset=custom"))
    await expect(page.get_by_label("统计时段")).to_have_value("custom")
    assert page.errors == []


async def test_dashboard_and_rankings_pass_axe_and_large_fonts(
    new_page, live_server, live_world, live_ratings
):
    found: dict[str, list] = {}
    desk = await new_page(DESKTOP, bypass_csp=True)
    await sign_in(desk, live_world.users["office"])
    found["dashboard"] = await axe_violations(desk)
    await desk.goto("/console/rankings?tier=window")
    await expect(desk.get_by_role("heading", level=1)).to_have_text("榜单")
    found["rankings"] = await axe_violations(desk)
    await desk.goto("/console/dashboard?preset=fortnight")
    found["dashboard, refused filter"] = await axe_violations(desk)

    phone = await new_page(PHONE, bypass_csp=True)
    await sign_in(phone, live_world.users["office"])
    found["dashboard, phone"] = await axe_violations(phone)
    chart = phone.locator('[data-chart="children"]')
    before = (await chart.bounding_box())["height"]
    font_before = await phone.locator('[data-chart="levels"] canvas').evaluate("c => c.height")
    await phone.get_by_role("link", name="特大", exact=True).click()
    await expect(phone.locator("html")).to_have_class(re.compile(r"\bfont-xlarge\b"))
    # The charts are redrawn for the new size, the page still fits the phone's width.
    after = (await chart.bounding_box())["height"]
    assert after > before
    assert (
        await phone.locator('[data-chart="levels"] canvas').evaluate("c => c.height") >= font_before
    )
    width = await phone.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    found["dashboard, phone, extra-large font"] = await axe_violations(phone)
    await phone.screenshot(path=f"{SCREENSHOTS}/hcp-dashboard-phone-xlarge.png", full_page=True)
    assert {name: v for name, v in found.items() if v} == {}
