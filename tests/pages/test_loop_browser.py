"""The bad-review loop in a real browser: a citizen rates 不满意 on a phone, the unit handler
verifies and reports the rectification with evidence on the console, the citizen reads the
answer on the progress page and is still dissatisfied, the office finds the order in its
supervision queue. Plus axe-core checks of every page of the loop and the settings."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.models import WorkOrder
from tests.factories import PASSWORD
from tests.pages.conftest import (
    DESKTOP,
    PHONE,
    axe_violations,
    live_case,
    live_link,
    row_on_some_page,
)

pytestmark = pytest.mark.browser
SCREENSHOTS = "/tmp"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def order_of_case(committing, case_no: str) -> WorkOrder:
    async with committing() as db:
        return (
            await db.execute(
                select(WorkOrder)
                .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case_no)
            )
        ).scalar_one()


async def console_sign_in(page, username: str) -> None:
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")


async def rate_badly_on_the_phone(page, link: str) -> None:
    await page.goto(link)
    await page.get_by_label("不满意", exact=True).check()
    await page.get_by_label("窗口人员业务不熟练").check()
    await page.get_by_label("意见或建议").fill("材料清单和窗口说的不一样，跑了三趟")
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("谢谢您的评价")


async def test_the_bad_review_loop_end_to_end(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])

    # 1. The citizen rates 不满意 through the rating link, on a phone.
    citizen = await new_page(PHONE)
    await rate_badly_on_the_phone(citizen, link)
    await citizen.get_by_role("link", name="查看办理进度").click()
    await expect(citizen.get_by_role("heading", level=1)).to_have_text("您的评价办理进度")
    await expect(citizen.locator("#progress-now")).to_have_text("已受理，正在核实")
    progress = citizen.url
    assert "/p/" in progress
    order = await order_of_case(committing, case["case_no"])

    # 2. The unit handler signs in (on a phone too) and opens the order from the queue.
    handler = await new_page(PHONE)
    await console_sign_in(handler, live_world.users["unit_a"])
    await handler.get_by_role("link", name="差评工单").click()
    await expect(handler.get_by_role("heading", level=1)).to_have_text("差评工单")
    row = await row_on_some_page(handler, f'tr[data-id="{order.id}"]')
    await expect(row).to_contain_text("核实中")
    await expect(row).to_contain_text(re.compile(r"剩余 \d+ 个工作日|今日到期"))
    await handler.screenshot(path=f"{SCREENSHOTS}/hcp-queue-phone.png", full_page=True)
    await row.get_by_role("link", name=f"工单 #{order.id}").click()
    await expect(handler.get_by_role("heading", level=1)).to_have_text(f"差评工单 #{order.id}")
    await expect(handler.get_by_text("材料清单和窗口说的不一样，跑了三趟")).to_be_visible()

    # 3. Verify.
    await handler.locator("#action-verify summary").click()
    await handler.get_by_label("核实情况").fill("已电话联系评价人，情况属实：材料清单有误")
    await handler.locator("#action-verify").scroll_into_view_if_needed()
    await handler.screenshot(path=f"{SCREENSHOTS}/hcp-work-order-form-phone.png")
    await handler.locator("#action-verify").get_by_role("button", name="核实").click()
    await expect(handler.get_by_role("status")).to_contain_text("已完成“核实”，工单状态：整改中")

    # 4. Upload the evidence, then report the rectification citing it.
    await handler.locator("#action-upload summary").click()
    await handler.get_by_label("选择文件").set_input_files(
        {"name": "整改照片.png", "mimeType": "image/png", "buffer": PNG}
    )
    await handler.get_by_role("button", name="上传").click()
    await expect(handler.get_by_role("status")).to_contain_text("附件“整改照片.png”已上传")
    await handler.locator("#action-report_rectified summary").click()
    await expect(
        handler.locator("#action-report_rectified").get_by_label("整改照片.png")
    ).to_be_checked()
    await handler.get_by_label("整改情况（评价人可在进度页看到）").fill(
        "已更正窗口材料清单并对窗口人员开展业务培训，清单已在大厅公示"
    )
    await (
        handler.locator("#action-report_rectified")
        .get_by_role("button", name="报告整改完成")
        .click()
    )
    await expect(handler.get_by_role("status")).to_contain_text("工单状态：待回访")
    await expect(handler.get_by_role("link", name="附件：整改照片.png")).to_be_visible()
    await expect(handler.locator(".deadline__kind")).to_have_text("回访期限")
    await handler.screenshot(path=f"{SCREENSHOTS}/hcp-work-order-phone.png", full_page=True)
    # Large-font mode (特大): everything still fits the phone's width.
    await handler.get_by_role("link", name="特大", exact=True).click()
    for path in (handler.url, "/console/work-orders"):
        await handler.goto(path)
        assert (
            await handler.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            <= 0
        )
    await handler.go_back()
    await handler.screenshot(path=f"{SCREENSHOTS}/hcp-work-order-xlarge-phone.png", full_page=True)
    await handler.get_by_role("link", name="标准", exact=True).click()
    assert handler.errors == []

    # 5. The citizen sees the steps and the unit's answer, and is still dissatisfied.
    await citizen.goto(progress)
    await expect(citizen.locator("#progress-now")).to_have_text("整改完成，待回访")
    steps = citizen.locator(".steps__label")
    await expect(steps).to_have_text(["已受理，正在核实", "正在整改", "整改完成，待回访"])
    await expect(citizen.get_by_text("已更正窗口材料清单并对窗口人员开展业务培训")).to_be_visible()
    await expect(citizen.get_by_text("情况属实")).to_have_count(0)  # internal note
    await expect(citizen.get_by_text(live_world.users["unit_a"])).to_have_count(0)
    await citizen.screenshot(path=f"{SCREENSHOTS}/hcp-progress-phone.png", full_page=True)
    await citizen.locator("form.verdict-form").get_by_label("不满意", exact=True).check()
    await citizen.get_by_label("补充说明").fill("清单改了，但窗口还是让我再跑一趟")
    await citizen.get_by_role("button", name="提交意见").click()
    await expect(citizen.get_by_role("status")).to_have_text("您的意见已提交，感谢您的反馈！")
    await expect(citizen.locator("#progress-now")).to_have_text("管理机构督办中")
    await expect(citizen.get_by_text("您的回访意见：不满意")).to_be_visible()
    await citizen.screenshot(path=f"{SCREENSHOTS}/hcp-progress-after-phone.png", full_page=True)
    assert citizen.errors == []

    # 6. The office finds it in its supervision queue.
    office = await new_page(DESKTOP)
    await console_sign_in(office, live_world.users["office"])
    await office.get_by_role("link", name="督办").click()
    await expect(office.get_by_role("heading", level=1)).to_have_text("督办")
    row = await row_on_some_page(office, f'tr[data-id="{order.id}"]')
    await expect(row).to_contain_text("督办中")
    await row.get_by_role("link", name=f"工单 #{order.id}").click()
    await expect(office.get_by_text("评价人意见：不满意")).to_be_visible()
    await expect(office.locator("#action-redispatch summary")).to_have_text("重新派单整改")
    await office.screenshot(path=f"{SCREENSHOTS}/hcp-work-order-desktop.png", full_page=True)
    assert office.errors == []


async def test_follow_up_rating_on_the_progress_page(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    citizen = await new_page(PHONE)
    await rate_badly_on_the_phone(citizen, link)
    progress = await citizen.get_by_role("link", name="查看办理进度").get_attribute("href")
    order = await order_of_case(committing, case["case_no"])
    async with live_server.api() as api:
        r = await api.post(
            "/api/v1/auth/token",
            data={"username": live_world.users["unit_a"], "password": PASSWORD},
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for body in (
            {"action": "verify", "note": "属实"},
            {"action": "report_rectified", "note": "已一次性告知全部材料"},
        ):
            r = await api.post(
                f"/api/v1/work-orders/{order.id}/actions", json=body, headers=headers
            )
            assert r.status_code == 200, r.text
    await citizen.goto(progress)
    form = citizen.locator("form.rate-form")
    await expect(form).to_be_hidden()  # folded while the verdict is asked for
    await citizen.get_by_text("追加评价（选填）").click()
    # Reasons show for the chosen level only (the same script as the rating page).
    await expect(form.get_by_label("服务热情效率高")).to_be_hidden()
    await form.get_by_label("非常满意").check()
    await form.get_by_label("服务热情效率高").check()
    await form.get_by_role("button", name="提交追加评价").click()
    await expect(citizen.get_by_role("status")).to_have_text("您的追加评价已提交，感谢您的反馈！")
    await expect(citizen.get_by_text("您已追加过评价（非常满意）")).to_be_visible()
    await expect(citizen.locator("form.rate-form")).to_have_count(0)
    assert citizen.errors == []


async def test_large_font_progress_page_fits_a_phone(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    citizen = await new_page(PHONE)
    await rate_badly_on_the_phone(citizen, link)
    await citizen.get_by_role("link", name="查看办理进度").click()
    await citizen.get_by_role("link", name="特大", exact=True).click()
    assert await citizen.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"
    overflow = await citizen.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await citizen.screenshot(path=f"{SCREENSHOTS}/hcp-progress-xlarge-phone.png", full_page=True)


async def test_loop_and_settings_pages_have_no_serious_accessibility_violations(
    new_page, live_server, live_world, committing
):
    found: dict[str, list] = {}
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])

    phone = await new_page(PHONE, bypass_csp=True)
    await phone.goto("/")
    found["landing page"] = await axe_violations(phone)
    await rate_badly_on_the_phone(phone, link)
    found["thank-you page with progress link"] = await axe_violations(phone)
    await phone.get_by_role("link", name="查看办理进度").click()
    progress = phone.url
    found["progress page"] = await axe_violations(phone)
    await phone.goto("/p/forged-token")
    found["progress page, invalid link"] = await axe_violations(phone)

    order = await order_of_case(committing, case["case_no"])
    desk = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(desk, live_world.users["unit_a"])
    await desk.goto("/console/work-orders")
    found["work-order queue"] = await axe_violations(desk)
    await desk.goto(f"/console/work-orders/{order.id}")
    for summary in await desk.locator("details.action summary").all():
        await summary.click()
    found["work-order page, every form open"] = await axe_violations(desk)
    await desk.get_by_label("转办理由").fill("不属于本单位职责")
    await desk.locator("#action-transfer").get_by_role("button", name="转办").click()
    await expect(desk.get_by_role("alert")).to_have_text("请选择牵头单位")
    found["work-order page, refused (422)"] = await axe_violations(desk)
    await desk.locator("#action-verify summary").click()
    await desk.get_by_label("核实情况").fill("属实")
    await desk.locator("#action-verify").get_by_role("button", name="核实").click()
    await desk.locator("#action-report_rectified summary").click()
    await desk.get_by_label("整改情况（评价人可在进度页看到）").fill("已整改")
    await (
        desk.locator("#action-report_rectified").get_by_role("button", name="报告整改完成").click()
    )
    await expect(desk.get_by_role("status")).to_contain_text("待回访")
    found["work-order page after actions"] = await axe_violations(desk)
    await desk.set_viewport_size(PHONE["viewport"])
    found["work-order page, narrow"] = await axe_violations(desk)
    await desk.set_viewport_size(DESKTOP["viewport"])
    await desk.goto("/console/appeals")
    found["appeal queue"] = await axe_violations(desk)

    await phone.goto(progress)
    await phone.get_by_text("追加评价（选填）").click()
    found["progress page with verdict and follow-up forms"] = await axe_violations(phone)

    office = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(office, live_world.users["office"])
    for name, path in (
        ("supervision queue", "/console/supervision"),
        ("policy page", "/console/policies"),
    ):
        await office.goto(path)
        found[name] = await axe_violations(office)
    # The calendar's import form and the outbox are the root administrator's.
    admin = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(admin, live_world.users["admin"])
    for name, path in (
        ("calendar page", "/console/calendar?year=2026"),
        ("notifications page", "/console/outbox"),
    ):
        await admin.goto(path)
        found[name] = await axe_violations(admin)
    await office.set_viewport_size(PHONE["viewport"])
    await office.goto("/console/policies")
    found["policy page, narrow"] = await axe_violations(office)
    await office.get_by_label("核实期限（工作日）").fill("400")
    await office.get_by_role("button", name="发布").click()
    await expect(office.get_by_role("alert")).to_contain_text("不能大于 365")
    found["policy page, refused"] = await axe_violations(office)
    await admin.set_viewport_size(PHONE["viewport"])
    await admin.goto("/console/calendar")
    found["calendar page, narrow"] = await axe_violations(admin)

    assert {name: v for name, v in found.items() if v} == {}
