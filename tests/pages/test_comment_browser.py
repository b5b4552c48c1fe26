"""综合点评 and 监督查评 in chromium: a citizen comments on a hall from its page on a phone,
the QR poster prints on one A4 page, and an inspector records a visit with a photo."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from haochaping.evaluations.models import Evaluation
from haochaping.inspections.models import InspectionPhoto, InspectionVisit
from haochaping.orgs.models import Org
from haochaping.workorders.models import WorkOrder
from tests.factories import PASSWORD
from tests.inspections.helpers import tiny_png
from tests.pages.conftest import DESKTOP, PHONE, axe_violations, loaded_width

pytestmark = pytest.mark.browser


async def test_a_citizen_comments_on_a_hall_from_a_phone(new_page, live_world, committing):
    hall = live_world.code("HALL-A")
    page = await new_page(PHONE)
    response = await page.goto(f"/c/{hall}")
    assert response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("综合点评")
    await expect(page.get_by_text("上城区市民之家")).to_be_visible()
    # The reasons of a level appear once it is chosen.
    await expect(page.get_by_label("服务态度差效率低")).to_be_hidden()
    await page.get_by_label("非常不满意", exact=True).check()
    await expect(page.get_by_label("服务态度差效率低")).to_be_visible()
    await page.get_by_label("服务态度差效率低").check()
    await page.get_by_label("意见或建议").fill("取号机坏了没人管")
    await page.get_by_label("联系电话").fill("13700001234")
    await page.get_by_role("button", name="提交点评").click()
    await expect(page).to_have_url(re.compile(rf"/c/{re.escape(hall)}/thanks$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("谢谢您的点评")
    await expect(page.get_by_text("137****1234")).to_be_visible()
    assert "13700001234" not in await page.content()
    assert page.errors == []  # no script error, nothing refused by the CSP

    async with committing() as db:
        row = (
            (
                await db.execute(
                    select(Evaluation)
                    .join(Org, Org.id == Evaluation.org_id)
                    .where(Org.code == hall, Evaluation.channel == "review")
                    .order_by(Evaluation.id.desc())
                )
            )
            .scalars()
            .first()
        )
        assert (row.level, row.reasons, row.case_id) == (1, ["115"], None)
        assert row.rater_phone == "13700001234"
        order = (
            await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == row.id))
        ).scalar_one_or_none()
        assert order is not None  # a bad comment opens its work order


async def test_the_comment_page_passes_the_accessibility_check(new_page, live_world):
    page = await new_page(PHONE, bypass_csp=True)
    await page.goto(f"/c/{live_world.code('HALL-A')}")
    found = {"form": await axe_violations(page)}
    await page.get_by_label("不满意", exact=True).check()
    found["form, level chosen"] = await axe_violations(page)
    await page.goto("/c/NO-SUCH-HALL")
    found["404 page"] = await axe_violations(page)
    await page.goto(f"/c/{live_world.code('HALL-A')}/poster")
    found["poster"] = await axe_violations(page)
    assert found == dict.fromkeys(found, []), found


async def test_the_poster_prints_on_one_a4_page(new_page, live_server, live_world):
    hall = live_world.code("HALL-B")
    page = await new_page(DESKTOP)
    response = await page.goto(f"/c/{hall}/poster")
    assert response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("扫码评价")
    await expect(page.get_by_text("杭州市民中心")).to_be_visible()
    box = await page.locator(".poster__qr svg").bounding_box()
    assert box and box["width"] > 300  # 120 mm on screen
    await page.emulate_media(media="print")
    await expect(page.locator(".poster-tools")).to_be_hidden()
    pdf = await page.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    assert page.errors == []


async def test_an_inspector_records_a_visit_with_a_photo(new_page, live_world, committing):
    page = await new_page(DESKTOP)
    await page.goto("/login")
    await page.get_by_label("用户名").fill(live_world.users["assessor"])
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("link", name="监督查评").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("监督查评")
    await page.get_by_role("link", name="录入监督查评").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("录入监督查评")
    form = page.locator("#visit-form")
    # The unit picker: type part of the name, take the hall's code from the options.
    hall = live_world.code("HALL-A")
    field = form.get_by_label("被查评单位", exact=True)
    await field.fill("市民之家")
    await expect(page.locator(f'#v-org-options option[value="{hall}"]')).to_have_count(1)
    await field.fill(hall)
    # The code typed asks once more (after the picker's pause): let it finish before the
    # form leaves the page, or the browser aborts it.
    await page.wait_for_timeout(400)
    await expect(field).not_to_have_class(re.compile("htmx-request"))
    await form.get_by_label("窗口按时开放，无空岗、脱岗、串岗现象").check()
    await form.get_by_label("不满意", exact=True).check()
    await form.get_by_label(re.compile("查评意见")).fill("评价器未开机")
    await form.get_by_label(re.compile("现场照片")).set_input_files(
        files=[{"name": "evaluator.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    await form.get_by_role("button", name="保存查评").click()
    await expect(page).to_have_url(re.compile(r"/console/inspections/\d+$"))
    await expect(page.get_by_role("status")).to_contain_text("已保存")
    await expect(page.locator("#visit-level")).to_have_text("不满意")
    await expect(page.locator("#visit-order")).to_be_visible()
    photo = page.locator(".photos img")
    await expect(photo).to_be_visible()
    assert await loaded_width(photo) == 4
    assert page.errors == []
    visit_id = int(page.url.rsplit("/", 1)[1])
    async with committing() as db:
        visit = await db.get(InspectionVisit, visit_id)
        assert visit.level == 2 and [a["passed"] for a in visit.answers][:2] == [False, True]
        photos = (
            (await db.execute(select(InspectionPhoto).where(InspectionPhoto.visit_id == visit_id)))
            .scalars()
            .all()
        )
        assert [p.content_type for p in photos] == ["image/png"]
        ev = await db.get(Evaluation, visit.evaluation_id)
        assert ev.channel == "inspection" and "评价器未开机" in ev.comment


async def test_the_inspection_pages_pass_the_accessibility_check(new_page, live_world):
    page = await new_page(DESKTOP, bypass_csp=True)
    await page.goto("/login")
    await page.get_by_label("用户名").fill(live_world.users["assessor"])
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.goto("/console/inspections/new")
    found = {"form": await axe_violations(page)}
    await page.get_by_role("button", name="保存查评").click()  # the browser asks for the unit
    await page.goto("/console/inspections")
    found["list"] = await axe_violations(page)
    assert found == dict.fromkeys(found, []), found
