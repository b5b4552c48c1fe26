"""The same question gives the same number on every surface (issue 10): one hall's 好评率,
number of ratings and score for one month, read from the statistics API (summary, time
series, breakdown, rankings), the console's dashboard and rankings pages (their table views),
their CSV and Excel downloads, and the public pages, all equal to the figure counted by hand.

The month is the last complete one, so that the public pages (the last twelve months and
last month's rankings) show it; the hall has enough ratings to be ranked (`min_sample`, 30 by
default) and its staff cell enough to be published (`public_min_cell`, 5)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from fractions import Fraction
from urllib.parse import urlencode

import pytest
from openpyxl import load_workbook

from haochaping.analytics import periods as P
from haochaping.analytics import rollups
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, set_standing
from tests.factories import add_rating, bearer_headers
from tests.pages.helpers import sign_in
from tests.pages.tables import parse

# HALL-A's counted ratings in the month, by level; 33 of them, so that no rate falls on a
# rounding tie (a surface that rounds differently would show it).
HALL_A = {5: 15, 4: 8, 3: 5, 2: 3, 1: 2}
HALL_B = {5: 20, 4: 10}
POINTS = {5: 10, 4: 8, 3: 6, 2: 3, 1: 0}  # the national default formula (DOMAIN.md §8)


def hand_counted(levels: dict[int, int]) -> dict:
    """The figures of DOMAIN.md §8, computed here from the planted levels."""
    total = sum(levels.values())
    good = sum(n for level, n in levels.items() if level >= 3)
    points = sum(POINTS[level] * n for level, n in levels.items())
    return {
        "total": total,
        "bad": total - good,
        "good_rate": Fraction(good, total),
        "score": Fraction(points, total),
    }


A = hand_counted(HALL_A)
# As the API and the Excel cells carry them (6 and 3 decimals) ...
RAW = {"total": A["total"], "good_rate": round(float(A["good_rate"]), 6)}
RAW["score"] = round(float(A["score"]), 3)
# ... and as people read them on the pages and in the CSV (2 decimals).
TEXT = {
    "total": str(A["total"]),
    "good_rate": f"{float(A['good_rate']) * 100:.2f}%",
    "score": f"{float(A['score']):.2f}",
}


def test_the_hand_counted_figures():
    # Written out, so that the fixture cannot drift from what this file checks.
    assert (A["total"], A["bad"]) == (33, 5)
    assert RAW == {"total": 33, "good_rate": 0.848485, "score": 7.667}
    assert TEXT == {"total": "33", "good_rate": "84.85%", "score": "7.67"}


@pytest.fixture
async def month(db, world) -> P.Period:
    """The last complete month: HALL-A's counted ratings (levels as HALL_A, at two windows,
    with and without staff), and beside them ratings that must not count (a default, a held,
    an invalid rating, a follow-up rating) and ratings just outside the month; HALL-B 30
    ratings that rank it first."""
    period = P.current_period("month", utcnow()).previous()
    since, until = period.bounds()
    mid = since + timedelta(days=9, hours=2)
    n = 0
    for level, count in HALL_A.items():
        for _ in range(count):
            at_w2 = n % 4 == 3
            await add_rating(
                db,
                world,
                level=level,
                at=mid + timedelta(minutes=7 * n),
                window="W-A2" if at_w2 else "W-A1",
                staff=None if at_w2 else "S-A1",
                channel=("pad", "qrcode", "sms")[n % 3],
            )
            n += 1
    for level, count in HALL_B.items():
        for i in range(count):
            await add_rating(
                db,
                world,
                level=level,
                at=mid + timedelta(hours=1, minutes=i),
                org="HALL-B",
                window="W-B1",
                staff="S-B1",
                item="ITEM-B1",
            )
    # Not counted: a system default rating, a follow-up rating, a held and an invalid one.
    await add_rating(db, world, level=3, at=mid, is_default=True)
    await add_rating(db, world, level=1, at=mid, eval_count=2)
    for standing, level in ((Standing.HELD, 1), (Standing.INVALID, 2)):
        row = await add_rating(db, world, level=level, at=mid)
        await set_standing(
            db=db, evaluation_id=row.id, standing=standing, reason="detector", actor="test"
        )
    # Outside the month by a second either way (Beijing midnights).
    await add_rating(db, world, level=1, at=since - timedelta(seconds=1))
    await add_rating(db, world, level=1, at=until)
    await db.commit()
    return period


def api_range(period: P.Period) -> dict[str, str]:
    since, until = period.bounds()
    return {"since": since.isoformat(), "until": until.isoformat()}


def console_range(period: P.Period) -> dict[str, str]:
    since, until = period.bounds()
    first, last = P.local_day(since), P.local_day(until - timedelta(microseconds=1))
    return {"preset": "custom", "since": first.isoformat(), "until": last.isoformat()}


def row_of(rows: list[list], code: str, column: int) -> list:
    found = [r for r in rows if r[column] == code]
    assert len(found) == 1, rows
    return found[0]


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def xlsx_rows(content: bytes) -> list[list]:
    ws = load_workbook(io.BytesIO(content)).active
    return [list(r) for r in ws.iter_rows(values_only=True)]


@pytest.mark.parametrize("folded", [False, True], ids=["from-ratings", "from-rollups"])
async def test_every_surface_gives_the_hand_counted_figure(
    client, world, month, sessionmaker, folded
):
    if folded:  # the periodic job has folded the month into the rollups (and the standings)
        report = await rollups.refresh(sessionmaker, now=utcnow() + timedelta(days=1))
        assert report.folded >= sum(HALL_A.values()) + sum(HALL_B.values())
    headers = await bearer_headers(client, world.users["office"])

    async def api(path: str, **params) -> dict:
        r = await client.get("/api/v1/stats/" + path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    def raw(row: dict) -> dict:
        return {k: row[k] for k in RAW}

    rng = api_range(month)
    # --- the statistics API ------------------------------------------------------------------
    summary = await api("summary", org_code="HALL-A", **rng)
    assert raw(summary) == RAW
    assert summary["bad"] == A["bad"]
    # The four left out are reported apart, not hidden.
    assert (summary["default_ratings"], summary["held"], summary["invalid"]) == (1, 1, 1)
    series = await api("timeseries", granularity="month", org_code="HALL-A", **rng)
    assert [(p["period"], p["total"], p["good_rate"], p["score"]) for p in series["items"]] == [
        (month.label, RAW["total"], RAW["good_rate"], RAW["score"])
    ]
    children = await api("breakdown", by="child", org_code="OFFICE", **rng)
    assert raw(row_of([[r["code"], r] for r in children["rows"]], "HALL-A", 0)[1]) == RAW
    ranking = await api("rankings", tier="hall", period=month.label)
    assert [(r["code"], r["rank"]) for r in ranking["items"]] == [("HALL-B", 1), ("HALL-A", 2)]
    hall_a = row_of([[r["code"], r] for r in ranking["items"]], "HALL-A", 0)[1]
    assert raw(hall_a) == RAW

    # --- the console: the dashboard's and the rankings' table views --------------------------
    await sign_in(client, world.users["office"])
    dash = console_range(month)
    query = {**dash, "node": "org:HALL-A", "granularity": "month"}
    r = await client.get("/console/dashboard?" + urlencode(query))
    assert r.status_code == 200, r.text[-2000:]
    page = parse(r.text)
    assert [page.kpis[k] for k in TEXT] == list(TEXT.values())
    trend = row_of(page.tables["trend"], month.label, 0)
    assert [trend[1], trend[2], trend[4]] == list(TEXT.values())
    r = await client.get("/console/dashboard?" + urlencode({**dash, "node": "org:OFFICE"}))
    child = row_of(parse(r.text).tables["children"], "HALL-A", 1)
    assert [child[2], child[3], child[5]] == list(TEXT.values())
    rank_query = {"tier": "hall", "period": month.label}
    r = await client.get("/console/rankings?" + urlencode(rank_query))
    assert r.status_code == 200, r.text[-2000:]
    ranked = row_of(parse(r.text).tables["ranked"], "HALL-A", 2)
    assert [ranked[0], ranked[3], ranked[4], ranked[6]] == ["2", *TEXT.values()]

    # --- the downloads: CSV as read on the page, Excel as numbers ----------------------------
    async def download(path: str, query: dict, fmt: str) -> bytes:
        got = await client.get(f"{path}/export?" + urlencode({**query, "format": fmt}))
        assert got.status_code == 200, got.text[-2000:]
        return got.content

    summary_query = {**dash, "node": "org:HALL-A", "what": "summary"}
    values = dict(csv_rows(await download("/console/dashboard", summary_query, "csv"))[1:])
    assert [values["评价数"], values["好评率"], values["平均分"]] == list(TEXT.values())
    values = dict(xlsx_rows(await download("/console/dashboard", summary_query, "xlsx"))[1:])
    assert [values["评价数"], values["好评率"], values["平均分"]] == list(TEXT.values())

    child_query = {**dash, "node": "org:OFFICE", "what": "children"}
    got = row_of(csv_rows(await download("/console/dashboard", child_query, "csv")), "HALL-A", 1)
    assert [got[2], got[3], got[5]] == list(TEXT.values())
    got = row_of(xlsx_rows(await download("/console/dashboard", child_query, "xlsx")), "HALL-A", 1)
    assert [got[2], got[3], got[5]] == list(RAW.values())

    ranked_query = {**rank_query, "what": "ranked"}
    got = row_of(csv_rows(await download("/console/rankings", ranked_query, "csv")), "HALL-A", 2)
    assert [got[0], got[3], got[4], got[6]] == ["2", *TEXT.values()]
    got = row_of(xlsx_rows(await download("/console/rankings", ranked_query, "xlsx")), "HALL-A", 2)
    assert [got[0], got[3], got[4], got[6]] == [2, *RAW.values()]

    # --- the public pages (no sign-in) -------------------------------------------------------
    client.cookies.clear()
    r = await client.get("/public/orgs/HALL-A")
    assert r.status_code == 200, r.text[-2000:]
    row = re.search(
        rf'<tr data-month="{month.label}" data-total="(\d+)" data-good-rate="([\d.]+)" '
        rf'data-score="([\d.]+)">(.*?)</tr>',
        r.text,
        re.S,
    )
    assert row is not None, r.text
    assert [row[1], row[2] + "%", row[3]] == list(TEXT.values())
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row[4])]
    assert cells == list(TEXT.values())
    # Last month's hall ranking of the province's overview.
    r = await client.get("/public?" + urlencode({"region": "330000"}))
    assert r.status_code == 200, r.text[-2000:]
    block = r.text.split(f'<h3 class="ranking__title">服务大厅 · {month.label}</h3>', 1)[1]
    block = block.split("</table>", 1)[0]
    lines = re.findall(r"<tr>(.*?)</tr>", block, re.S)
    hall = [ln for ln in lines if 'href="/public/orgs/HALL-A"' in ln]
    assert len(hall) == 1, lines
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", hall[0])]
    assert cells[1:] == list(TEXT.values())
