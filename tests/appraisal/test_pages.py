"""The console's appraisal pages: who sees them, the scheme form (weights and CR as chosen,
refused with its CR), bonus items with their file, the scores table and its download."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from tests.appraisal.conftest import PDF
from tests.appraisal.test_scores import NOVEMBER, _rate
from tests.pages.helpers import csrf_of, sign_in

BASE = "/console/appraisal"
PAGES = [BASE, f"{BASE}/adjustments", f"{BASE}/scores", f"{BASE}/schemes/new"]


def _form(n: int = 2, pairs: dict[str, str] | None = None, **extra) -> dict[str, str]:
    data = {"n": str(n), "region_code": "330000", "year": "2026", "note": ""}
    metrics = ["good_rate", "score", "rectified_on_time_rate", "active_rating_rate"]
    for i in range(n):
        data |= {
            f"ind-{i}-code": f"I{i + 1}",
            f"ind-{i}-metric": metrics[i],
            f"ind-{i}-label": f"指标{i + 1}",
            f"ind-{i}-direction": "",
        }
    return data | (pairs or {}) | extra


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("assessor", set(PAGES)),
        ("office", set(PAGES) - {f"{BASE}/schemes/new"}),
        ("admin", set()),
        ("unit_a", set()),
        ("staff_x", set()),
    ],
)
async def test_who_sees_the_pages(client, halls, username, allowed):
    await sign_in(client, halls.users.get(username, username))
    home = await client.get("/console/evaluations")
    assert ('href="/console/appraisal"' in home.text) == bool(allowed)
    for path in PAGES:
        r = await client.get(path)
        assert r.status_code == (200 if path in allowed else 403), (username, path, r.status_code)


async def test_scheme_form_shows_cr_and_refuses_an_inconsistent_matrix(client, halls):
    await sign_in(client, halls.users["assessor"])
    form = await client.get(f"{BASE}/schemes/new?n=4")
    assert form.text.count('name="pair-') == 6  # 4 × 3 / 2 pairs
    csrf = csrf_of(form.text)
    light = {"pair-0-1": "5", "pair-0-2": "6", "pair-0-3": "7", "pair-1-2": "4", "pair-1-3": "6",
             "pair-2-3": "4"}  # fmt: skip  # Saaty's light-intensity matrix, CR 0.145
    preview = await client.post(
        f"{BASE}/schemes/preview",
        data={"csrf_token": csrf, **_form(4, light)},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200
    assert re.search(r'id="cr-value">0\.14\d\d<', preview.text)
    assert "一致性不足" in preview.text
    refused = await client.post(f"{BASE}/schemes", data={"csrf_token": csrf, **_form(4, light)})
    assert refused.status_code == 422
    assert "CR = 0.14" in refused.text and 'role="alert"' in refused.text
    assert 'value="5" selected' in refused.text  # the choices are kept
    ok = await client.post(
        f"{BASE}/schemes", data={"csrf_token": csrf, **_form(2, {"pair-0-1": "3"})}
    )
    assert ok.status_code == 303, ok.text
    listed = await client.get(ok.headers["location"])
    assert "第 1 版" in listed.text and "75.00%" in listed.text and "25.00%" in listed.text


async def test_bonus_items_and_scores_pages(client, db, halls):
    await _rate(db, halls, "2026-11", NOVEMBER)
    await sign_in(client, halls.users["assessor"])
    page = await client.get(f"{BASE}/schemes/new?n=2")
    csrf = csrf_of(page.text)
    r = await client.post(
        f"{BASE}/schemes", data={"csrf_token": csrf, **_form(2, {"pair-0-1": "3"})}
    )
    assert r.status_code == 303
    item = {"csrf_token": csrf, "org_code": "HALL-B", "month": "2026-11", "points": "2",
            "note": "省级表彰"}  # fmt: skip
    r = await client.post(
        f"{BASE}/adjustments", data=item, files={"file": ("表彰.pdf", PDF, "application/pdf")}
    )
    assert r.status_code == 303, r.text
    bad = await client.post(
        f"{BASE}/adjustments",
        data={**item, "points": "30"},
        files={"file": ("表彰.pdf", PDF, "application/pdf")},
    )
    assert bad.status_code == 422 and "-20 至 20" in bad.text
    listed = await client.get(f"{BASE}/adjustments?period=2026-11")
    assert "省级表彰" in listed.text and "+2" in listed.text
    link = re.search(r'href="(/console/appraisal/adjustments/\d+/file)"', listed.text)
    assert link and (await client.get(link.group(1))).content == PDF
    scores = await client.get(f"{BASE}/scores?region_code=330000&period=2026-11&tier=hall")
    assert scores.status_code == 200
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>(HALL-\w)</td>", scores.text)
    assert rows == [("1", "HALL-B"), ("2", "HALL-A"), ("3", "HALL-C"), ("3", "HALL-D")]
    assert "102.00" in scores.text
    x = await client.get(f"{BASE}/scores/download?region_code=330000&period=2026-11&tier=hall")
    ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
    first = list(ws.iter_rows(values_only=True))[1]
    assert first[:2] == (1, "HALL-B") and first[-1] == pytest.approx(102.0)
    missing = await client.get(f"{BASE}/scores?region_code=330000&period=2025-11")
    assert missing.status_code == 200 and "2025 年尚无考核方案" in missing.text
    wrong = await client.get(f"{BASE}/scores?region_code=330000&period=2026-13")
    assert wrong.status_code == 422 and "统计周期格式不正确" in wrong.text
