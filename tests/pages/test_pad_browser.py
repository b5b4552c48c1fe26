"""The window evaluator (评价器) in chromium: paired from the console's code, following the
window's service without reload (item, flow number, staff card with photo, the five faces),
reasons for a low level, thanks, idle; a rating pressed with the network off kept on the pad
and stored exactly once when it returns; and the axe-core check of its screens."""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Staff
from haochaping.pads import service as pad_service
from haochaping.pads.models import PadDevice
from tests.factories import PASSWORD
from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case, loaded_width

pytestmark = pytest.mark.browser
TABLET = {"viewport": {"width": 1024, "height": 768}, "has_touch": True}
SERVING = "/api/v1/windows/{}/serving"
# A 1x1 PNG: the staff member's photo on the pad's card.
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def serve(live, world, window: str, case_no: str, flow_no: str) -> dict:
    """The queuing system announces the case at the window."""
    async with live.api() as api:
        r = await api.post(
            SERVING.format(world.code(window)),
            json={"case_no": case_no, "flow_no": flow_no, "staff_no": world.code("S-A1")},
            headers={"X-Api-Key": world.keys["hall_a_pad"]},
        )
    assert r.status_code == 201, r.text
    return r.json()


async def ratings_of(committing, case_no: str) -> list[Evaluation]:
    async with committing() as db:
        return list(
            (
                await db.execute(
                    select(Evaluation)
                    .join(Case, Case.id == Evaluation.case_id)
                    .where(Case.case_no == case_no)
                )
            ).scalars()
        )


async def arrived(committing, case_no: str, timeout: float = 30.0) -> list[Evaluation]:
    """The case's ratings once the pad's request has stored one (or none after `timeout`):
    the pad posts from its queue in the background, later than the thanks screen under load."""
    deadline = time.monotonic() + timeout
    while True:
        stored = await ratings_of(committing, case_no)
        if stored or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.2)


async def give_photo(committing, live, world) -> None:
    """Test setup: the staff member S-A1 has a photo (as the console's upload stores it)."""
    key = uuid.uuid4().hex
    folder = Path(live.settings.upload_dir) / "staff"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(PHOTO)
    async with committing() as db:
        await db.execute(
            update(Staff)
            .where(Staff.staff_no == world.code("S-A1"))
            .values(photo_key=key, photo_type="image/png")
        )
        await db.commit()


async def pair_in_browser(page, code: str) -> None:
    await page.goto("/pad")
    await expect(page).to_have_url(re.compile(r"/pad/pair$"))
    await page.get_by_label("配对码").fill(code)
    await page.get_by_role("button", name="配对").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("服务评价")


async def test_pair_from_the_console_and_rate_at_the_window(
    new_page, live_server, live_world, committing
):
    await give_photo(committing, live_server, live_world)
    desk = await new_page(DESKTOP)
    await desk.goto("/login")
    await desk.get_by_label("用户名").fill(live_world.users["office"])
    await desk.get_by_label("密码").fill(PASSWORD)
    await desk.get_by_role("button", name="登录").click()
    await desk.goto("/console/pads")
    await desk.get_by_label("窗口", exact=True).select_option(live_world.code("W-A1"))
    await desk.get_by_role("button", name="生成配对码").click()
    await expect(desk.get_by_role("heading", name="配对码已生成")).to_be_visible()
    code = await desk.locator("#pairing-code").inner_text()

    pad = await new_page(TABLET)
    await pair_in_browser(pad, code)
    await expect(pad.get_by_role("heading", name="欢迎您，请稍候")).to_be_visible()

    case = await live_case(committing, live_world)
    await serve(live_server, live_world, "W-A1", case["case_no"], "A0815")
    # The screen follows the window within a poll or two, without reload.
    await expect(pad.get_by_role("heading", name="营业执照核发")).to_be_visible(timeout=10_000)
    await expect(pad.get_by_text("A0815")).to_be_visible()
    await expect(pad.get_by_text("李娜")).to_be_visible()
    photo = pad.get_by_role("img", name="工作人员李娜的照片")
    await expect(photo).to_be_visible()
    assert await loaded_width(photo) == 1

    await pad.get_by_role("button", name="不满意", exact=True).click()
    await expect(pad.get_by_role("heading", name="请选择原因，帮助我们改进")).to_be_visible()
    await pad.get_by_role("button", name="提交评价").click()
    await expect(pad.get_by_role("alert")).to_have_text("请至少选择一项原因")
    await pad.get_by_text("窗口人员业务不熟练").click()
    await pad.get_by_role("button", name="提交评价").click()
    await expect(pad.get_by_role("heading", name="谢谢您的评价")).to_be_visible()
    stored = await arrived(committing, case["case_no"])
    assert len(stored) == 1
    rating = stored[0]
    assert (rating.channel, rating.level, rating.reasons) == ("pad", 2, ["213"])
    assert rating.device_id and rating.device_id.startswith(pad_service.DEVICE_PREFIX)
    assert rating.displayed_at is not None and rating.displayed_at <= rating.evaluated_at
    # After the thanks, the idle screen with the staff card (the case is rated).
    await expect(pad.get_by_role("heading", name="欢迎您，请稍候")).to_be_visible(timeout=10_000)
    await expect(pad.get_by_text("感谢您的评价，祝您生活愉快！")).to_be_visible()
    assert pad.errors == []

    # Revoked in the console: the pad says so at its next look.
    await desk.goto("/console/pads")
    device_id = int(rating.device_id.removeprefix(pad_service.DEVICE_PREFIX))
    async with committing() as db:
        name = (await db.execute(select(PadDevice.name).where(PadDevice.id == device_id))).scalar()
    await desk.get_by_role("button", name=f"停用评价器 {name}", exact=True).click()
    await expect(desk.get_by_text(f"已停用评价器：{name}")).to_be_visible()
    await pad.reload()
    await expect(pad.get_by_role("heading", level=1)).to_have_text("此评价器已停用")


async def test_a_rating_given_offline_arrives_once(new_page, live_server, live_world, committing):
    async with committing() as db:
        made = await pad_service.create_pairing(
            db=db, secret=live_server.settings.secret_key, window_code=live_world.code("W-A2")
        )
        await db.commit()
    pad = await new_page(TABLET)
    await pair_in_browser(pad, made["code"])
    case = await live_case(committing, live_world)
    await serve(live_server, live_world, "W-A2", case["case_no"], "B0001")
    await expect(pad.get_by_text("B0001")).to_be_visible(timeout=10_000)
    # Let the service worker take the page before the network goes.
    await pad.evaluate("async () => { await navigator.serviceWorker.ready; }")

    await pad.context.set_offline(True)
    await expect(pad.get_by_role("status").filter(has_text="网络已断开")).to_be_visible()
    await pad.get_by_role("button", name="非常满意").click()
    await expect(pad.get_by_role("heading", name="谢谢您的评价")).to_be_visible()
    await asyncio.sleep(1.5)
    assert await ratings_of(committing, case["case_no"]) == []
    queued = await pad.evaluate(
        """() => new Promise((resolve) => {
             const req = indexedDB.open("hcp-pad", 1);
             req.onsuccess = () => {
               const t = req.result.transaction("queue", "readonly").objectStore("queue").count();
               t.onsuccess = () => { req.result.close(); resolve(t.result); };
             };
           })"""
    )
    assert queued == 1

    await pad.context.set_offline(False)
    stored = await arrived(committing, case["case_no"])
    assert len(stored) == 1, "the rating kept offline did not arrive"
    rating = stored[0]
    assert (rating.channel, rating.level) == ("pad", 5)
    # Pressed while offline: the moment of the press, not of the delivery.
    assert rating.evaluated_at < rating.received_at
    # The queue emptied; later rounds send nothing again.
    await asyncio.sleep(6)
    assert len(await ratings_of(committing, case["case_no"])) == 1
    await expect(pad.get_by_role("status").filter(has_text="网络已断开")).to_be_hidden()


async def test_pad_screens_have_no_serious_accessibility_violations(
    new_page, live_server, live_world, committing
):
    found: dict[str, list] = {}
    async with committing() as db:
        made = await pad_service.create_pairing(
            db=db, secret=live_server.settings.secret_key, window_code=live_world.code("W-A2")
        )
        await db.commit()
    pad = await new_page(PHONE, bypass_csp=True)
    await pad.goto("/pad/pair")
    found["pairing page"] = await axe_violations(pad)
    await pad.get_by_label("配对码").fill("WRONG")
    await pad.get_by_role("button", name="配对").click()
    found["pairing page with error"] = await axe_violations(pad)
    await pair_in_browser(pad, made["code"])
    found["idle screen"] = await axe_violations(pad)
    case = await live_case(committing, live_world)
    await serve(live_server, live_world, "W-A2", case["case_no"], "C0002")
    await expect(pad.get_by_text("C0002")).to_be_visible(timeout=10_000)
    found["serving screen"] = await axe_violations(pad)
    await pad.get_by_role("button", name="非常不满意").click()
    found["reasons screen"] = await axe_violations(pad)
    await pad.get_by_role("checkbox").first.check(force=True)
    await pad.get_by_role("button", name="提交评价").click()
    await expect(pad.get_by_role("heading", name="谢谢您的评价")).to_be_visible()
    found["thank-you screen"] = await axe_violations(pad)

    desk = await new_page(DESKTOP, bypass_csp=True)
    await desk.goto("/login")
    await desk.get_by_label("用户名").fill(live_world.users["office"])
    await desk.get_by_label("密码").fill(PASSWORD)
    await desk.get_by_role("button", name="登录").click()
    await desk.goto("/console/pads")
    found["console list"] = await axe_violations(desk)
    await desk.get_by_role("button", name="生成配对码").click()
    await expect(desk.get_by_role("heading", name="配对码已生成")).to_be_visible()
    found["console with a new code"] = await axe_violations(desk)
    assert {name: v for name, v in found.items() if v} == {}
