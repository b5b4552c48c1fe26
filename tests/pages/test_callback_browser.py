"""Calling citizens in a real browser (issue 11): the spot-check queue on a phone and a
desktop, with axe-core and the large-font mode; a dissatisfied answer opens a work order,
whose page then reveals the rater's number for the call (查看号码) and masks it on reload."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from haochaping.core.models import AuditEvent
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.models import SpotCheck
from tests.factories import EvaluationPayloadFactory
from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case
from tests.pages.test_loop_browser import console_sign_in

pytestmark = pytest.mark.browser
SPOT = "/console/spot-checks"


async def live_sample(live_server, live_world, committing, n: int) -> tuple[int, str]:
    """A good rating of the live world through its API, sampled for a callback; returns the
    spot check's id and the rater's number. The check is dated long ago, the earlier the later
    the run (then n seconds on), so that it heads the pending queue, which is oldest first,
    whatever other tests' live servers have left pending in the shared test database."""
    case = await live_case(committing, live_world)
    async with live_server.api() as api:
        r = await api.post(
            "/api/v1/evaluations",
            headers={"X-Api-Key": live_world.keys["hall_a_pad"]},
            json=EvaluationPayloadFactory(case_no=case["case_no"]),
        )
    assert r.status_code == 201, r.text
    async with committing() as db:
        ev = await db.get(Evaluation, r.json()["id"])
        check = SpotCheck(
            evaluation_id=ev.id,
            org_id=ev.org_id,
            created_at=datetime(2001, 1, 1, tzinfo=UTC) - timedelta(seconds=int(time.time()) - n),
        )
        db.add(check)
        await db.commit()
        return check.id, ev.rater_phone or ""


def overflow_js() -> str:
    return "document.documentElement.scrollWidth - document.documentElement.clientWidth"


async def test_spot_check_queue_and_the_call_in_the_browser(
    new_page, live_server, live_world, committing
):
    first, phone_no = await live_sample(live_server, live_world, committing, 0)
    second, _ = await live_sample(live_server, live_world, committing, 1)
    assert phone_no

    # The unit's handler, on a phone with the page's CSP enforced.
    phone = await new_page(PHONE)
    await console_sign_in(phone, live_world.users["unit_a"])
    await phone.get_by_role("link", name="抽查回访").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text("抽查回访")
    card = phone.locator(f'li[data-id="{first}"]')
    await expect(card).to_contain_text("非常满意")
    assert phone_no not in await phone.content()
    # Reached without a verdict: refused beside the form, what was typed kept.
    await card.get_by_label("回访方式").select_option("phone")
    await card.get_by_label("联系上了").check()
    await card.get_by_label("回访情况（选填）").fill("评价人说其实等了很久")
    await card.get_by_role("button", name="记录回访").click()
    card = phone.locator(f'li[data-id="{first}"]')
    await expect(card.get_by_role("alert")).to_have_text("联系上评价人时，请选择评价人的意见")
    await expect(card.get_by_label("回访情况（选填）")).to_have_value("评价人说其实等了很久")
    await card.get_by_label("不满意", exact=True).check()
    await card.get_by_role("button", name="记录回访").click()
    await expect(phone.locator("#flash")).to_contain_text(f"抽查 #{first} 已回访：评价人不满意")
    async with committing() as db:
        order_id = (await db.get(SpotCheck, first)).work_order_id
    assert order_id
    await expect(phone.locator(f'li[data-id="{first}"]')).to_have_count(0)
    await expect(phone.locator(f'li[data-id="{second}"]')).to_have_count(1)
    await phone.screenshot(path="/tmp/hcp-spot-checks-phone.png", full_page=True)
    # Large-font mode (特大): the queue still fits the phone's width.
    await phone.get_by_role("link", name="特大", exact=True).click()
    await phone.goto(SPOT)
    assert await phone.evaluate(overflow_js()) <= 0

    # The new order: reveal the number for the call, with the reason; reload masks it.
    await phone.goto(f"/console/work-orders/{order_id}")
    await expect(phone.locator("#phone-masked")).to_have_text(phone_no[:3] + "****" + phone_no[-4:])
    await phone.get_by_label("查看事由").fill("抽查回访不满意，核实情况")
    await phone.get_by_role("button", name="查看号码").click()
    await expect(phone.locator("#phone-number")).to_have_text(phone_no)
    assert await phone.evaluate(overflow_js()) <= 0
    await phone.goto(f"/console/work-orders/{order_id}")
    await expect(phone.locator("#phone-masked")).to_be_visible()
    assert phone_no not in await phone.content()
    await phone.get_by_role("link", name="标准", exact=True).click()
    assert phone.errors == []
    async with committing() as db:
        rows = (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "reveal_phone", AuditEvent.target_id == order_id
                )
            )
        ).scalars()
        assert [r.detail.get("reason") for r in rows] == ["抽查回访不满意，核实情况"]

    # axe-core, on the desktop and at a phone's width (CSP bypassed to inject axe).
    found: dict[str, list] = {}
    desk = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(desk, live_world.users["office"])
    await desk.goto(SPOT)
    await expect(desk.locator(f'li[data-id="{second}"]')).to_have_count(1)
    found["queue"] = await axe_violations(desk)
    await desk.screenshot(path="/tmp/hcp-spot-checks-desktop.png", full_page=True)
    await desk.locator(f'li[data-id="{second}"]').get_by_role("button", name="记录回访").click()
    found["queue, refused"] = await axe_violations(desk)
    await desk.goto(SPOT + "?state=done")
    found["done"] = await axe_violations(desk)
    await desk.goto(f"/console/work-orders/{order_id}")
    found["work order with 查看号码"] = await axe_violations(desk)
    await desk.get_by_label("查看事由").fill("回访")
    await desk.get_by_role("button", name="查看号码").click()
    await expect(desk.locator("#phone-number")).to_have_text(phone_no)
    found["number revealed"] = await axe_violations(desk)
    await desk.set_viewport_size(PHONE["viewport"])
    await desk.goto(SPOT)
    found["queue, narrow"] = await axe_violations(desk)
    assert {k: v for k, v in found.items() if v} == {}
