"""The rating list in a real browser (issue 11): filtered by choosing an organisation and an
item by name with the pickers, stating its order, and downloaded as Excel with the rows it
shows; on a desk and on a phone, under the enforced CSP; every state passes axe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from playwright.async_api import expect

from tests.factories import add_rating, now
from tests.pages.conftest import DESKTOP, PHONE, axe_violations
from tests.pages.test_directory_browser import _pick, _sign_in

pytestmark = pytest.mark.browser


async def shown_ids(page) -> list[int]:
    rows = page.locator("#results tbody tr")
    ids = await rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
    return [int(i) for i in ids]


async def test_pick_by_name_filter_and_download_the_rating_list(
    new_page, live_world, committing, tmp_path
):
    async with committing() as db:
        ours = [
            await add_rating(
                db,
                live_world,
                level=level,
                at=now() - timedelta(hours=hours),
                org="HALL-B",
                window="W-B1",
                staff="S-B1",
                item="ITEM-B1",
            )
            for level, hours in ((2, 5), (5, 1), (4, 3))
        ]
        await db.commit()
    ours_ids = {r.id for r in ours}
    found: dict[str, list] = {}
    for screen, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await new_page(screen)
        await _sign_in(page, live_world.users["office"])
        await expect(page.locator("#list-order")).to_have_text("排序：按评价时间倒序（最近的在前）")
        filters = page.get_by_role("search", name="筛选评价")
        # The unit and the item, each chosen by a few characters of its name.
        await _pick(page, filters, "办理机构", "市民中心", live_world.code("HALL-B"))
        await _pick(page, filters, "服务事项", "不动产", live_world.code("ITEM-B1"))
        async with page.expect_response(lambda r: "item_code=" in r.url and "org_code=" in r.url):
            await filters.get_by_role("button", name="查询").click()
        await expect(page.locator("#results-status")).to_contain_text("已更新")
        ids = await shown_ids(page)
        assert ours_ids <= set(ids) and len(ids) <= 20
        # Newest rating time first (ours were rated 1, 3 and 5 hours ago).
        by_time = sorted(ours, key=lambda r: r.evaluated_at, reverse=True)
        assert [i for i in ids if i in ours_ids] == [r.id for r in by_time]
        assert "org_code=" in page.url and "item_code=" in page.url
        # axe is injected as a script: checked on a second page, the same URL, CSP bypassed.
        checked = await new_page(screen, bypass_csp=True)
        await _sign_in(checked, live_world.users["office"])
        await checked.goto(page.url)
        await expect(checked.locator("#list-order")).to_be_visible()
        found[f"rating list, filtered ({name})"] = await axe_violations(checked)
        # The download: every row the filters show, in the same order.
        link = page.get_by_role("link", name=re.compile("导出 Excel"))
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        assert download.suggested_filename.startswith("评价记录-")
        assert download.suggested_filename.endswith(".xlsx")
        path = tmp_path / f"{name}.xlsx"
        await download.save_as(path)
        ws = load_workbook(path, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        assert rows[0][:3] == ("评价编号", "评价时间", "等级")
        assert [r[0] for r in rows[1:]] == ids
        assert page.errors == []
    assert all(v == [] for v in found.values()), found
