"""The public ledger and a rating's proof in a real browser (desktop and phone, axe, large
fonts): a citizen rates, finds the rating's number and proof link on the thank-you page,
and the proof checks in the page with the vendored SM3, failing for a tampered value; the
API documents load with no request to another origin; an unknown address is a page."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from haochaping.ledger import jobs
from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case, live_link
from tests.pages.test_browser import rate_bad

pytestmark = pytest.mark.browser


def flip(hex_value: str) -> str:
    """The same hash with its last digit changed."""
    return hex_value[:-1] + ("0" if hex_value[-1] != "0" else "1")


async def no_overflow(page) -> bool:
    """Nothing is wider than the screen (long hashes wrap)."""
    return await page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
    )


async def rate_by_api(live_server, world, committing, n: int) -> None:
    """n good ratings from a window pad, so that the block has an audit path to walk."""
    async with live_server.api() as api:
        for _ in range(n):
            case = await live_case(committing, world)
            r = await api.post(
                "/api/v1/evaluations",
                headers={"X-Api-Key": world.keys["all"]},
                json={"case_no": case["case_no"], "channel": "pad", "level": 5},
            )
            assert r.status_code == 201, r.text


async def test_rating_number_and_proof_checked_in_the_browser(
    new_page, live_server, live_world, committing
):
    await rate_by_api(live_server, live_world, committing, 3)
    case = await live_case(committing, live_world)
    link = await live_link(live_server, live_world, case["case_no"])
    page = await new_page(PHONE)
    await page.goto(link)
    await rate_bad(page)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("谢谢您的评价")
    number = await page.locator(".notice__number strong").inner_text()
    assert number.isdigit()
    proof_link = page.get_by_role("link", name="查看这条评价的存证证明")
    await expect(proof_link).to_have_attribute("href", f"/ledger/evaluations/{number}")

    await proof_link.click()  # sealed within minutes: not yet
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"评价 {number} 尚未封存")

    await rate_by_api(live_server, live_world, committing, 2)
    await jobs.seal_pending(committing)
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"评价 {number} 的存证证明")
    # Sealed with the ratings around it: the browser walks a path of several steps.
    assert await page.locator("#audit-path li[data-hash]").count() >= 2
    await expect(page.locator("#server-verdict")).to_contain_text("核对通过")
    result = page.locator("#pc-result")
    await expect(result).to_have_attribute("data-result", "pass")  # checked on load
    await expect(result).to_contain_text("浏览器核对通过")
    published = (await page.locator("#published-root").inner_text()).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", published)
    assert published in await result.inner_text()  # the root the browser computed
    assert await no_overflow(page)
    await page.screenshot(path="/tmp/hcp-proof-phone.png", full_page=True)

    # A tampered content hash (one digit) no longer leads to the published root.
    leaf = page.get_by_label("评价的内容哈希（SM3，64 位十六进制）")
    genuine = await leaf.input_value()
    await leaf.fill(flip(genuine))
    await page.get_by_role("button", name="在浏览器中核对").click()
    await expect(result).to_have_attribute("data-result", "fail")
    await expect(result).to_contain_text("浏览器核对未通过")
    assert published not in await result.inner_text()
    # Back to the genuine hash, compared with a root noted elsewhere that differs.
    await leaf.fill(genuine)
    await page.get_by_label("公布的区块根（SM3，64 位十六进制）").fill(flip(published))
    await page.get_by_role("button", name="在浏览器中核对").click()
    await expect(result).to_have_attribute("data-result", "fail")
    await page.get_by_label("公布的区块根（SM3，64 位十六进制）").fill(published.upper())
    await page.get_by_role("button", name="在浏览器中核对").click()
    await expect(result).to_have_attribute("data-result", "pass")
    await leaf.fill("not a hash")
    await page.get_by_role("button", name="在浏览器中核对").click()
    await expect(result).to_have_attribute("data-result", "invalid")
    assert page.errors == []  # the vendored SM3 and the check ran under the CSP

    # The same page at the largest font size on a phone, and for axe.
    checked = await new_page(PHONE, bypass_csp=True)
    await checked.goto(f"/ledger/evaluations/{number}")
    await checked.get_by_role("link", name="特大", exact=True).click()
    await expect(checked.locator("#pc-result")).to_have_attribute("data-result", "pass")
    assert await checked.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"
    assert await no_overflow(checked)
    assert await axe_violations(checked) == []


async def test_ledger_page_on_desktop_and_phone(new_page, live_server, live_world, committing):
    case = await live_case(committing, live_world)
    async with live_server.api() as api:
        r = await api.post(
            "/api/v1/evaluations",
            headers={"X-Api-Key": live_world.keys["all"]},
            json={"case_no": case["case_no"], "channel": "pad", "level": 5, "reasons": ["517"]},
        )
    assert r.status_code == 201, r.text
    await jobs.seal_pending(committing)
    found = {}
    for name, screen in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await new_page(screen, bypass_csp=True)
        await page.goto("/ledger")
        await expect(page.get_by_role("heading", level=1)).to_have_text("评价存证账本")
        nav = page.get_by_role("navigation", name="主导航")
        await expect(nav.get_by_role("link", name="评价存证账本")).to_have_attribute(
            "aria-current", "page"
        )
        await expect(page.get_by_role("heading", name="它能证明什么")).to_be_visible()
        await page.screenshot(path=f"/tmp/hcp-ledger-{name}.png", full_page=True)
        found[f"ledger, {name}"] = await axe_violations(page)
        await page.get_by_role("link", name="大", exact=True).click()
        assert await no_overflow(page)
        found[f"ledger, {name}, large font"] = await axe_violations(page)
        newest = page.locator("table.ledger-blocks tbody tr").first.get_by_role("link")
        height = (await newest.inner_text()).removeprefix("区块 ")
        await newest.click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"区块 {height}")
        await expect(page.locator("#server-verdict")).to_contain_text("核对通过")
        assert await no_overflow(page)
        await page.screenshot(path=f"/tmp/hcp-block-{name}.png", full_page=True)
        found[f"block, {name}"] = await axe_violations(page)
        await page.get_by_role("link", name="评价存证账本").first.click()
        await page.get_by_label("评价编号").fill("987654321")
        await page.get_by_role("button", name="查看存证证明").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
        await expect(page.get_by_text("评价不存在")).to_be_visible()
        found[f"missing rating, {name}"] = await axe_violations(page)
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/docs", ".swagger-ui .info .title"),
        ("/redoc", "h1"),
    ],
)
async def test_api_documents_load_from_this_origin_only(new_page, live_server, path, ready):
    page = await new_page(DESKTOP)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(path)
    assert response.status == 200
    await expect(page.locator(ready).first).to_contain_text("好差评 Haochaping", timeout=20_000)
    await page.wait_for_load_state("networkidle")
    assert requested and all(
        url.startswith(live_server.url + "/") or url.startswith(("data:", "blob:"))
        for url in requested
    ), [u for u in requested if not u.startswith(live_server.url)]
    assert any(u.endswith("/openapi.json") for u in requested)
    assert page.errors == []  # nothing refused by the CSP


async def test_unknown_address_in_a_browser(new_page, live_server):
    found = {}
    for name, screen in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await new_page(screen, bypass_csp=True)
        response = await page.goto("/no/such/page")
        assert response.status == 404
        await expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
        nav = page.get_by_role("navigation", name="主导航")
        await expect(nav.get_by_role("link", name="首页")).to_be_visible()
        found[name] = await axe_violations(page)
        await nav.get_by_role("link", name="评价存证账本").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("评价存证账本")
    assert {k: v for k, v in found.items() if v} == {}
