"""Scores by hand on a small fixture: normalisation, weights, bonus items, ties, the unscored
unit, versions reproduced, and the Excel download equal to the API's numbers."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import select

from haochaping.analytics.periods import parse_period
from haochaping.core.models import AuditEvent
from tests.appraisal.conftest import PDF, PNG
from tests.factories import add_rating, assert_error

SCHEMES = "/api/v1/appraisal/schemes"
SCORES = "/api/v1/appraisal/scores"
ADJUSTMENTS = "/api/v1/appraisal/adjustments"
TWO = [
    {"code": "Q", "metric": "good_rate", "weight_label": "好评率"},
    {"code": "S", "metric": "score", "weight_label": "平均分"},
]
# November's counted ratings per hall (level-points 10, 8, 6, 3, 0).
NOVEMBER = {
    "HALL-A": [5, 5, 4, 2],  # good 0.75, score 7.75
    "HALL-B": [5, 5],  # good 1.0, score 10
    "HALL-C": [3, 2],  # good 0.5, score 4.5
    "HALL-D": [2, 3],  # the same as HALL-C: a tie
    "HALL-E": [5],  # one rating: below min_sample 2, unscored
}


async def _rate(db, world, month: str, data: dict[str, list[int]]) -> None:
    start, _ = parse_period(month).bounds()
    for hall, levels in data.items():
        for n, level in enumerate(levels):
            await add_rating(
                db,
                world,
                level=level,
                at=start + timedelta(days=3, hours=n),
                org=hall,
                window=None,
                staff=None,
                item=None,
            )
    await db.commit()


async def _adjust(
    client, headers, org_code, month, points, file=("表彰.pdf", PDF, "application/pdf")
):
    return await client.post(
        ADJUSTMENTS,
        data={"org_code": org_code, "month": month, "points": str(points), "note": "市级表彰"},
        files={"file": file},
        headers=headers,
    )


async def test_scores_by_hand(client, db, halls, assessor, office):
    await _rate(db, halls, "2026-11", NOVEMBER)
    r = await client.post(
        SCHEMES,
        json={
            "region_code": "330000",
            "year": 2026,
            "indicators": TWO,
            "judgements": [[1, 3], ["1/3", 1]],  # weights 0.75 and 0.25
        },
        headers=assessor,
    )
    assert r.status_code == 201, r.text
    for org, month, points in (
        ("HALL-B", "2026-11", 2),
        ("HALL-A", "2026-11", -3),
        ("HALL-A", "2026-10", 5),
    ):
        a = await _adjust(client, assessor, org, month, points)
        assert a.status_code == 201, a.text
    r = await client.get(
        SCORES,
        params={"region_code": "330000", "period": "2026-11", "tier": "hall"},
        headers=office,
    )
    assert r.status_code == 200, r.text
    got = r.json()
    rows = [(u["rank"], u["code"], u["score"], u["adjustment"]) for u in got["items"]]
    # HALL-A: good (0.75 − 0.5) / (1 − 0.5) = 0.5; score (7.75 − 4.5) / (10 − 4.5) = 0.590909;
    # 100 × (0.75 × 0.5 + 0.25 × 0.590909) = 52.2727, −3 = 49.2727.
    assert rows == [
        (1, "HALL-B", pytest.approx(102.0), 2.0),
        (2, "HALL-A", pytest.approx(49.2727, abs=1e-4), -3.0),
        (3, "HALL-C", 0.0, 0.0),
        (3, "HALL-D", 0.0, 0.0),  # ties alike: 1, 2, 3, 3
    ]
    a = got["items"][1]["contributions"]
    assert [(c["code"], c["value"], c["normalised"], c["weight"]) for c in a] == [
        ("Q", 0.75, 0.5, 0.75),
        ("S", 7.75, pytest.approx(0.590909, abs=1e-6), 0.25),
    ]
    assert [c["contribution"] for c in a] == [37.5, pytest.approx(14.7727, abs=1e-4)]
    assert [(u["code"], u["ratings"], u["score"]) for u in got["unscored"]] == [("HALL-E", 1, None)]
    # The quarter adds October's item too (no October ratings: the same figures).
    q = await client.get(
        SCORES,
        params={"region_code": "330000", "period": "2026-Q4", "tier": "hall"},
        headers=assessor,
    )
    hall_a = next(u for u in q.json()["items"] if u["code"] == "HALL-A")
    assert hall_a["adjustment"] == 2.0
    assert hall_a["score"] == pytest.approx(54.2727, abs=1e-4)
    # The Excel download carries the same numbers.
    x = await client.get(
        f"{SCORES}/download",
        params={"region_code": "330000", "period": "2026-11", "tier": "hall"},
        headers=office,
    )
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
    table = list(ws.iter_rows(values_only=True))
    assert table[0][:3] == ("排名", "单位代码", "单位名称")
    assert table[0][-1] == "总分"
    by_code = {row[1]: row for row in table[1:]}
    for unit in got["items"]:
        row = by_code[unit["code"]]
        assert row[0] == unit["rank"]
        assert row[-1] == pytest.approx(unit["score"])
        assert row[-2] == pytest.approx(unit["adjustment"])
        assert row[4] == pytest.approx(unit["contributions"][0]["value"])
        assert row[5] == pytest.approx(unit["contributions"][0]["contribution"])
    assert by_code["HALL-E"][0] is None and by_code["HALL-E"][-1] is None


async def test_an_older_version_reproduces_its_scores(client, db, halls, assessor):
    await _rate(db, halls, "2026-11", NOVEMBER)
    body = {"region_code": "330000", "year": 2026, "indicators": TWO}
    await client.post(SCHEMES, json={**body, "judgements": [[1, 3], ["1/3", 1]]}, headers=assessor)
    params = {"region_code": "330000", "period": "2026-11", "tier": "hall"}
    v1 = (await client.get(SCORES, params=params, headers=assessor)).json()
    await client.post(SCHEMES, json={**body, "judgements": [[1, "1/5"], [5, 1]]}, headers=assessor)
    v2 = (await client.get(SCORES, params=params, headers=assessor)).json()
    assert v2["scheme"]["version"] == 2
    hall_a = next(u for u in v2["items"] if u["code"] == "HALL-A")
    # 100 × (1/6 × 0.5 + 5/6 × 0.590909) = 57.5758
    assert hall_a["score"] == pytest.approx(57.5758, abs=1e-3)
    again = (await client.get(SCORES, params={**params, "version": 1}, headers=assessor)).json()
    assert again["scheme"]["version"] == 1
    assert again["items"] == v1["items"]


async def test_score_refusals(client, halls, assessor):
    params = {"region_code": "330000", "period": "2026-11", "tier": "hall"}
    assert_error(await client.get(SCORES, params=params, headers=assessor), 404, "scheme_not_found")
    bad = {**params, "period": "2026-13"}
    assert_error(await client.get(SCORES, params=bad, headers=assessor), 422, "invalid_period")
    assert_error(
        await client.get(SCORES, params={**params, "tier": "staff"}, headers=assessor), 422
    )
    assert_error(
        await client.get(SCORES, params={**params, "region_code": "990000"}, headers=assessor),
        404,
        "region_not_found",
    )


async def test_bonus_items_are_on_record_with_their_file(client, db, halls, assessor, office):
    r = await _adjust(client, assessor, "HALL-A", "2026-11", -3, ("约谈.png", PNG, "image/png"))
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["org_code"], item["month"], item["points"]) == ("HALL-A", "2026-11", -3.0)
    f = await client.get(f"{ADJUSTMENTS}/{item['id']}/file", headers=office)
    assert f.status_code == 200 and f.content == PNG
    listed = await client.get(
        ADJUSTMENTS, params={"region_code": "330000", "period": "2026-Q4"}, headers=office
    )
    assert [i["id"] for i in listed.json()["items"]] == [item["id"]]
    audit = (
        await db.execute(
            select(AuditEvent).where(
                AuditEvent.action == "add_appraisal_adjustment", AuditEvent.target_id == item["id"]
            )
        )
    ).scalar_one()
    assert audit.detail["points"] == -3.0 and audit.detail["sha256"] == item["sha256"]


@pytest.mark.parametrize(
    ("org", "month", "points", "file", "status", "code"),
    [
        ("HALL-A", "2026-13", 2, None, 422, "invalid_month"),
        ("HALL-A", "2026-Q4", 2, None, 422, "invalid_month"),
        ("HALL-A", "2026-11", 0, None, 422, "invalid_points"),
        ("HALL-A", "2026-11", 25, None, 422, "invalid_points"),
        ("HALL-A", "2026-11", 1.25, None, 422, "invalid_points"),
        ("NOPE", "2026-11", 2, None, 404, "org_not_found"),
        (
            "HALL-A",
            "2026-11",
            2,
            ("a.exe", b"MZ\x90\x00", "application/pdf"),
            422,
            "attachment_type",
        ),
        ("HALL-A", "2026-11", 2, ("a.pdf", PNG, "application/pdf"), 422, "attachment_disguised"),
    ],
)
async def test_bonus_item_refusals(client, halls, assessor, org, month, points, file, status, code):
    r = await _adjust(
        client, assessor, org, month, points, file or ("a.pdf", PDF, "application/pdf")
    )
    assert_error(r, status, code)
