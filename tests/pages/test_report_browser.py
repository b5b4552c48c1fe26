"""The monthly report in a real browser: the archive lists it, its printable page shows the
region and the month in its header, prints on A4 without the console's navigation, axe finds
nothing serious, and the CSP refuses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from haochaping.reports import service as report_service
from tests.factories import PASSWORD, add_rating
from tests.pages.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser
MONTH = "2024-02"  # only this test writes a report for it (the archive is per region and month)


@pytest.fixture
async def live_report(committing, live_world, live_server):
    """The county's report of February 2024, written from the live world's ratings."""
    at = datetime(2024, 2, 5, 2, tzinfo=UTC)
    async with committing() as db:
        for n, level in enumerate([5, 4, 5, 2]):
            await add_rating(db, live_world, level=level, at=at + timedelta(hours=n))
        await db.commit()
        report, _ = await report_service.write_monthly(
            db=db,
            region_code="330102",
            month=MONTH,
            upload_dir=Path(live_server.settings.upload_dir),
            created_by="test",
        )
        await db.commit()
    return report


async def sign_in(page, username: str) -> None:
    await page.goto("/console/reports")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("月度通报")


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_printable_report(new_page, live_world, live_report, screen):
    page = await new_page(screen)
    await sign_in(page, live_world.users["office"])
    await expect(page.get_by_role("link", name="月度通报")).to_have_attribute(
        "aria-current", "page"
    )
    row = page.locator(f'tr[data-id="{live_report.id}"]')
    await expect(row).to_contain_text(MONTH)
    await expect(row).to_contain_text(live_report.sm3)
    await row.get_by_role("link", name="打印版").click()
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text("上城区2024年2月政务服务“好差评”情况通报")
    # Every section is there, in order, the overview's figures filled in.
    sections = page.locator(".report__section h2")
    await expect(sections.first).to_have_text("1. 概况")
    await expect(sections.last).to_contain_text("新出现的投诉热点")
    await expect(sections.nth(-2)).to_contain_text("窗口服务之星")
    overview = page.locator('table[data-section="overview"]')
    await expect(overview.locator("tr", has_text="评价总数（计入统计）")).to_contain_text("4")
    await expect(overview.locator("tr", has_text="好评率")).to_contain_text("75.00%")
    assert page.errors == []

    # Printed: no navigation, the region and month on top, on A4.
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.locator(".report__running")).to_be_visible()
    await expect(page.locator(".report__running")).to_have_text(f"上城区 · {MONTH}")
    if screen is DESKTOP:
        pdf = await page.pdf(prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF")
        # A4 is 595 × 842 points.
        assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox [0 0 594" in pdf
    await page.emulate_media(media="screen")

    # The download link serves the archived workbook.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="下载 Excel").click()
    download = await info.value
    assert download.suggested_filename == f"通报-330102-{MONTH}.xlsx"


async def test_the_report_pages_pass_axe(new_page, live_world, live_report):
    page = await new_page(DESKTOP, bypass_csp=True)
    await sign_in(page, live_world.users["assessor"])
    assert await axe_violations(page) == []
    await page.goto(f"/console/reports/{live_report.id}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("通报")
    assert await axe_violations(page) == []
