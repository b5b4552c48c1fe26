"""The public results pages (公示) in a real browser on a phone (390×844): the figures, the
trend table and its chart, the published rectification; no horizontal scroll in the standard
and the largest font; axe-core finds no serious or critical violation; the CSP holds."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.factories import EvaluationPayloadFactory
from tests.pages.conftest import PHONE, axe_violations, live_case

pytestmark = pytest.mark.browser
SCREENSHOTS = "/tmp"
REASON = {5: "517", 4: "413", 1: "113"}


async def rate(api, world, level: int, case_no: str, **extra) -> dict:
    body = EvaluationPayloadFactory(case_no=case_no, level=level, reasons=[REASON[level]], **extra)
    r = await api.post(
        "/api/v1/evaluations", json=body, headers={"X-Api-Key": world.keys["hall_a_pad"]}
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
async def published(live_server, live_world, committing):
    """Six ratings at window W-A1 of the live world, one bad and rectified."""
    async with live_server.api() as api:
        for level in (5, 5, 4, 5, 4):
            case = await live_case(committing, live_world)
            await rate(api, live_world, level, case["case_no"])
        case = await live_case(committing, live_world)
        bad = await rate(
            api, live_world, 1, case["case_no"], comment="等了两个小时，电话13812345678"
        )
        token = await api.post(
            "/api/v1/auth/token",
            data={"username": live_world.users["unit_a"], "password": "pass-word-123"},
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        orders = await api.get(
            "/api/v1/work-orders",
            params={"org_code": live_world.code("HALL-A")},
            headers=headers,
        )
        order = next(o for o in orders.json()["items"] if o["evaluation"]["id"] == bad["id"])
        for body in (
            {"action": "verify", "note": "属实"},
            {"action": "report_rectified", "note": "已调整叫号规则，高峰期增开两个窗口"},
        ):
            r = await api.post(
                f"/api/v1/work-orders/{order['id']}/actions", json=body, headers=headers
            )
            assert r.status_code == 200, r.text
    return live_world


async def no_horizontal_scroll(page) -> None:
    width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


async def test_public_pages_on_a_phone(new_page, live_server, published):
    world = published
    pages = [
        (f"/public/orgs/{world.code('W-A1')}", "综合受理1号窗口"),
        (f"/public/orgs/{world.code('HALL-A')}", "上城区市民之家"),
        (f"/public/items/{world.code('ITEM-A1')}", "营业执照核发"),
        ("/public?region=330102", "上城区政务服务“好差评”公示"),
    ]
    for font in ("normal", "xlarge"):
        page = await new_page(PHONE)
        if font != "normal":
            await page.goto(f"/font?size={font}&next=/public")
        for path, heading in pages:
            answer = await page.goto(path)
            assert answer is not None and answer.status == 200, path
            await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            await expect(page.locator("#trend-table tbody tr")).to_have_count(12)
            # The chart is drawn from the table (canvas, so the CSP's style-src holds).
            await expect(page.locator("#trend-chart canvas")).to_have_count(1)
            await no_horizontal_scroll(page)
            assert page.errors == [], (path, page.errors)
        await page.goto(f"/public/orgs/{world.code('W-A1')}")
        await expect(page.get_by_text("已调整叫号规则，高峰期增开两个窗口")).to_be_visible()
        await expect(page.get_by_text("等了两个小时，电话138****5678")).to_be_visible()
        await page.screenshot(path=f"{SCREENSHOTS}/hcp-public-{font}.png", full_page=True)
        axe_page = await new_page(PHONE, bypass_csp=True)
        if font != "normal":
            await axe_page.goto(f"/font?size={font}&next=/public")
        for path, _ in [*pages, ("/public", "")]:
            await axe_page.goto(path)
            await axe_page.wait_for_load_state("load")
            assert await axe_violations(axe_page) == [], (font, path)


async def test_the_404_page_on_a_phone(new_page, live_server):
    page = await new_page(PHONE, bypass_csp=True)
    answer = await page.goto("/public/orgs/NO-SUCH-UNIT")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_text("NO-SUCH-UNIT", exact=False)).to_be_visible()
    await no_horizontal_scroll(page)
    assert await axe_violations(page) == []
