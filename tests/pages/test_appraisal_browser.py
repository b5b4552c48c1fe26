"""The appraisal scheme form in a real browser: the CR and weights follow the judgements as
they are chosen (htmx, under the CSP), an inconsistent matrix is refused with its CR, a
consistent one is published; axe finds nothing serious and the form fits a phone."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.factories import PASSWORD
from tests.pages.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser
# Committed data outlives the test: a year no other test uses.
YEAR = "2090"


async def sign_in(page, username: str) -> None:
    await page.goto("/console/appraisal")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("考核方案")


async def test_scheme_form_live_cr_refusal_and_publication(new_page, live_world):
    page = await new_page(DESKTOP)
    await sign_in(page, live_world.users["assessor"])
    await page.get_by_role("link", name="新建方案").click()
    await page.get_by_label("指标个数", exact=True).select_option("3")
    await page.get_by_role("button", name="更改指标个数").click()
    await expect(page.locator('select[name^="pair-"]')).to_have_count(3)
    await page.get_by_label("考核年度").fill(YEAR)
    cr = page.locator("#cr-value")
    await expect(cr).to_have_text("0.0000")  # every pair equal
    # Circular judgements (A ≫ B, B ≫ C, C ≫ A): the CR rises as they are chosen.
    await page.locator("#pair-0-1").select_option("9")
    await page.locator("#pair-1-2").select_option("9")
    await page.locator("#pair-0-2").select_option("1/9")
    # λmax = 1 + 9 + 1/9 (a circulant matrix), CI = (λmax − 3) / 2, CR = CI / 0.58.
    await expect(cr).to_have_text("6.1303")
    await expect(page.locator("#cr-line")).to_contain_text("一致性不足")
    await page.get_by_role("button", name="发布方案").click()
    await expect(page.locator("#scheme-error")).to_contain_text("CR = 6.1303")
    assert await page.locator("#pair-0-2").input_value() == "1/9"  # the choices are kept
    # Consistent judgements: A three times B and C, B and C equal → 60 %, 20 %, 20 %.
    await page.locator("#pair-0-1").select_option("3")
    await page.locator("#pair-0-2").select_option("3")
    await page.locator("#pair-1-2").select_option("1")
    await expect(cr).to_have_text("0.0000")
    await expect(page.locator("#weights")).to_contain_text("60.00%")
    await page.get_by_role("button", name="发布方案").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("考核方案")
    await expect(page.locator("main")).to_contain_text(f"{YEAR} 年 · 第 1 版")
    assert page.errors == []


async def test_scheme_form_accessible_on_desktop_and_phone(new_page, live_world):
    found = {}
    for name, screen in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await new_page(screen, bypass_csp=True)
        await sign_in(page, live_world.users["assessor"])
        await page.goto("/console/appraisal/schemes/new?n=4")
        found[name] = await axe_violations(page)
        if name == "phone":
            width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
            assert width[0] <= width[1], width  # no sideways scrolling on a phone
            await page.locator("#pair-0-1").select_option("5")
            await expect(page.locator("#weights")).to_be_visible()
            found["phone, after a choice"] = await axe_violations(page)
        await page.goto("/console/appraisal/scores")
        found[f"{name}, scores"] = await axe_violations(page)
    assert found == {k: [] for k in found}
