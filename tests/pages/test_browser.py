"""The pages in a real browser: scan → rate → thanks on a phone, expired links, the console
list with its htmx filters, the large-font mode, and an axe-core accessibility check."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation, Invitation
from tests.factories import PASSWORD, now
from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case, live_link

pytestmark = pytest.mark.browser
SCREENSHOTS = "/tmp"


async def expire(committing, case_no: str) -> None:
    """Test setup: move the links of a case past their expiry."""
    from datetime import timedelta

    async with committing() as db:
        case_id = (await db.execute(select(Case.id).where(Case.case_no == case_no))).scalar_one()
        await db.execute(
            update(Invitation)
            .where(Invitation.case_id == case_id)
            .values(expires_at=now() - timedelta(minutes=5))
        )
        await db.commit()


async def rate_bad(page, comment: str = "等了很久，窗口人员对业务不熟悉") -> None:
    """On the rating page: choose 不满意, tick a level-2 reason, write a comment."""
    await page.get_by_label("不满意", exact=True).check()
    await page.get_by_label("窗口人员业务不熟练").check()
    await page.get_by_label("意见或建议").fill(comment)


async def test_scan_rate_and_thanks_on_a_phone(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    page = await new_page(PHONE)
    response = await page.goto(link)
    assert response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("请您为本次服务评价")
    await expect(page.get_by_text("营业执照核发")).to_be_visible()
    # Reasons of a level show once it is chosen, and only those.
    await expect(page.get_by_label("窗口人员业务不熟练")).to_be_hidden()
    await page.get_by_label("非常满意").check()
    await expect(page.get_by_label("服务热情效率高")).to_be_visible()
    await expect(page.locator("#bad-hint")).to_be_hidden()
    await page.get_by_label("服务热情效率高").check()
    await rate_bad(page)
    await expect(page.get_by_label("服务热情效率高")).to_be_hidden()
    await expect(page.locator("#bad-hint")).to_be_visible()
    await page.screenshot(path=f"{SCREENSHOTS}/hcp-rate-phone.png", full_page=True)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page).to_have_url(f"{live_server.url}{link}/thanks")
    await expect(page.get_by_role("heading", level=1)).to_have_text("谢谢您的评价")
    await expect(page.get_by_text("您的评价：不满意")).to_be_visible()
    await page.screenshot(path=f"{SCREENSHOTS}/hcp-thanks-phone.png", full_page=True)

    async with committing() as db:
        rows = (
            (
                await db.execute(
                    select(Evaluation)
                    .join(Case, Case.id == Evaluation.case_id)
                    .where(Case.case_no == case["case_no"])
                )
            )
            .scalars()
            .all()
        )
    assert [(r.level, r.channel, r.reasons) for r in rows] == [(2, "qrcode", ["213"])]
    assert rows[0].comment == "等了很久，窗口人员对业务不熟悉"
    assert page.errors == []  # no script error, nothing refused by the CSP

    again = await page.goto(link)
    assert again.status == 409
    await expect(page.get_by_role("heading", level=1)).to_have_text("您已完成评价")
    await expect(page.get_by_text("此链接已使用")).to_be_visible()


async def test_without_javascript_every_reason_shows_and_the_server_checks(
    browser, live_server, live_world, committing
):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    context = await browser.new_context(
        base_url=live_server.url, java_script_enabled=False, **PHONE
    )
    try:
        page = await context.new_page()
        await page.goto(link)
        await expect(page.get_by_role("group", name="非常满意的原因（可多选）")).to_be_visible()
        await page.get_by_label("不满意", exact=True).check()
        await page.get_by_label("服务热情效率高").check()
        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_role("alert")).to_contain_text("与所选等级“不满意”不符")
        await expect(page.get_by_label("不满意", exact=True)).to_be_checked()
        await expect(page.get_by_label("服务热情效率高")).to_be_checked()
    finally:
        await context.close()


async def test_expired_link_says_so(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    await expire(committing, case["case_no"])
    page = await new_page(PHONE)
    response = await page.goto(link)
    assert response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text("此评价链接已过期")
    assert await page.locator("form.rate-form").count() == 0


async def test_console_sign_in_list_and_htmx_filter(new_page, live_server, live_world, committing):
    good = await live_case(committing, live_world)
    bad = await live_case(committing, live_world)
    async with live_server.api() as api:
        for case, level, reasons in ((good, 5, ["517"]), (bad, 2, ["214"])):
            r = await api.post(
                "/api/v1/evaluations",
                headers={"X-Api-Key": live_world.keys["all"]},
                json={
                    "case_no": case["case_no"],
                    "channel": "pad",
                    "level": level,
                    "reasons": reasons,
                },
            )
            assert r.status_code == 201, r.text
    page = await new_page(DESKTOP)
    await page.goto("/console/evaluations")
    await expect(page).to_have_url(f"{live_server.url}/login?next=%2Fconsole%2Fevaluations")

    await page.get_by_label("用户名").fill(live_world.users["office"])
    await page.get_by_label("密码").fill("not-the-password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")

    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(f"{live_server.url}/console/evaluations")
    await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")
    bad_row = page.locator("tbody tr", has_text=bad["case_no"])
    good_row = page.locator("tbody tr", has_text=good["case_no"])
    await expect(bad_row).to_contain_text("差评")
    await expect(bad_row).to_contain_text("服务态度生硬")
    await expect(good_row).to_contain_text("非常满意")
    await page.screenshot(path=f"{SCREENSHOTS}/hcp-console-desktop.png", full_page=True)

    # htmx swaps the results in place: the page (and this marker) survives the filter.
    await page.evaluate("window.notReloaded = true")
    async with page.expect_response(lambda r: "level=2" in r.url):
        await page.get_by_label("评价等级").select_option("2")
    await expect(good_row).to_have_count(0)
    await expect(bad_row).to_be_visible()
    levels = await page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.level)")
    assert levels and set(levels) == {"2"}
    await expect(page.locator("#results-status")).to_contain_text("已更新")
    assert await page.evaluate("window.notReloaded") is True
    assert "level=2" in page.url
    # The pushed URL works on its own (and without htmx).
    await page.reload()
    await expect(page.get_by_label("评价等级")).to_have_value("2")
    await expect(good_row).to_have_count(0)
    assert page.errors == []


async def test_large_font_mode_scales_and_persists(new_page, live_server):
    page = await new_page(PHONE)
    await page.goto("/login")

    async def sizes() -> tuple[str, float]:
        return await page.evaluate(
            "() => [getComputedStyle(document.documentElement).fontSize,"
            " parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)]"
        )

    root, heading = await sizes()
    assert root == "16px"
    await page.get_by_role("link", name="大", exact=True).click()
    assert (await sizes()) == ["20px", heading * 1.25]
    await expect(page.get_by_role("link", name="大", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    await page.reload()
    assert (await sizes())[0] == "20px"
    await page.get_by_role("link", name="特大", exact=True).click()
    assert (await sizes())[0] == "24px"
    await page.get_by_role("link", name="标准", exact=True).click()
    assert (await sizes())[0] == "16px"
    await page.reload()
    assert (await sizes())[0] == "16px"


async def test_pages_have_no_serious_accessibility_violations(
    new_page, live_server, live_world, committing
):
    found: dict[str, list] = {}
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])

    page = await new_page(PHONE, bypass_csp=True)
    await page.goto(link)
    found["rating page"] = await axe_violations(page)
    await rate_bad(page)
    found["rating page, level chosen"] = await axe_violations(page)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("谢谢您的评价")
    found["thank-you page"] = await axe_violations(page)
    await page.goto(link)
    found["used-link page"] = await axe_violations(page)

    expired = await live_case(committing, live_world)
    expired_link = await live_link(live_server, live_world, expired["case_no"])
    await expire(committing, expired["case_no"])
    await page.goto(expired_link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("此评价链接已过期")
    found["expired-link page"] = await axe_violations(page)

    desk = await new_page(DESKTOP, bypass_csp=True)
    await desk.goto("/login")
    found["login page"] = await axe_violations(desk)
    await desk.get_by_label("用户名").fill(live_world.users["admin"])
    await desk.get_by_label("密码").fill("wrong-password")
    await desk.get_by_role("button", name="登录").click()
    found["login page with error"] = await axe_violations(desk)
    await desk.get_by_label("密码").fill(PASSWORD)
    await desk.get_by_role("button", name="登录").click()
    await expect(desk.get_by_role("heading", level=1)).to_have_text("评价记录")
    found["evaluation list"] = await axe_violations(desk)
    await desk.set_viewport_size(PHONE["viewport"])
    found["evaluation list, narrow"] = await axe_violations(desk)

    assert {name: v for name, v in found.items() if v} == {}
