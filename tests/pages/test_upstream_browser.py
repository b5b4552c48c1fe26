"""The console's page 上报 in a real browser: the queue to the parent (length, lag, the
last error and the back-off) as the administrator finds it from the navigation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import delete, func, select

from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.exchange.models import UpstreamStream
from tests.factories import PASSWORD
from tests.pages.conftest import DESKTOP, PHONE, axe_violations
from tests.pages.test_ledger_browser import rate_by_api

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_queue_to_the_parent_with_its_lag_and_last_error(
    new_page, live_server, live_world, committing, screen
):
    now = utcnow()
    async with committing() as db:
        top = (await db.execute(select(func.max(Evaluation.id)))).scalar_one() or 0
        await db.execute(delete(UpstreamStream))
        db.add(
            UpstreamStream(
                name="ratings",
                watermark=top,
                sent=top,
                refused=0,
                failures=3,
                next_attempt_at=now + timedelta(minutes=1),
                last_error="上级平台无法连接：ConnectError",
                last_error_at=now,
            )
        )
        await db.commit()
    try:
        await rate_by_api(live_server, live_world, committing, 2)  # queued: the parent is down
        page = await new_page(screen, bypass_csp=True)  # axe-core is injected inline
        await page.goto("/console/evaluations")
        await page.get_by_label("用户名").fill(live_world.users["admin"])
        await page.get_by_label("密码").fill(PASSWORD)
        await page.get_by_role("button", name="登录").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")
        await page.get_by_role("link", name="上报", exact=True).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("上报")
        await expect(page.get_by_test_id("pending-ratings")).to_have_text("2")
        await expect(page.get_by_test_id("lag-ratings")).to_contain_text("秒")
        error = page.get_by_test_id("error-ratings")
        await expect(error).to_contain_text("上级平台无法连接")
        await expect(error).to_contain_text("连续失败 3 次")
        await expect(page.get_by_test_id("no-upstream")).to_be_visible()
        assert await axe_violations(page) == []
    finally:
        async with committing() as db:
            await db.execute(delete(UpstreamStream))
            await db.commit()
