"""The lists an office works from, in the order people care about, and their Excel downloads:
each download holds exactly the rows the list shows over all its pages for the same filters,
in the same order and scope, masked; it is read in batches, so its memory stays bounded."""

from __future__ import annotations

import html
import io
import re
import tracemalloc
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select

from haochaping.appeals.models import Appeal
from haochaping.core.security import mask_name
from haochaping.core.timeutil import fmt_local
from haochaping.evaluations.models import Evaluation
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs.models import Item, Org
from haochaping.workorders.models import SpotCheck, WorkOrderUnit
from tests.factories import add_rating, add_work_order, now
from tests.pages.helpers import sign_in

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NEXT = re.compile(r'rel="next" href="([^"]+)"')
ROW_ID = r'data-id="(\d+)"'
APPEAL_ID = r'<li class="card appeal" id="appeal-(\d+)">'
RATER = "欧阳娜娜"
PHONE = "13812345678"


def spread(i: int) -> timedelta:
    """Times out of id order, with ties (13 distinct minutes over many rows)."""
    return timedelta(minutes=(i * 7) % 13)


@pytest.fixture
async def lists(db, world):
    """Ratings at both halls at times out of id order (many sharing a minute), with work
    orders for the bad ones, appeals, flags and spot checks likewise out of id order."""
    base = now() - timedelta(days=3)
    out: dict[str, list] = {"a": [], "b": [], "orders": [], "orders_b": []}
    hall = {
        code: (await db.execute(select(Org).where(Org.code == code))).scalar_one()
        for code in ("HALL-A", "HALL-B")
    }
    for i in range(64):
        at_b = i % 8 == 0
        ev = await add_rating(
            db,
            world,
            level=(i % 5) + 1,
            at=base + spread(i),
            org="HALL-B" if at_b else "HALL-A",
            window="W-B1" if at_b else "W-A1",
            staff="S-B1" if at_b else "S-A1",
            item="ITEM-B1" if at_b else "ITEM-A1",
            # The first one names its rater (ratings are append-only: set at insert).
            **(
                {"rater_name": RATER, "rater_phone": PHONE, "comment": f"请回电 {PHONE}"}
                if i == 1
                else {}
            ),
        )
        (out["b"] if at_b else out["a"]).append(ev)
    for n, ev in enumerate(e for e in out["a"] + out["b"] if e.level <= 2):
        order = await add_work_order(db, ev, state="supervising" if n % 4 == 0 else "verifying")
        order.opened_at = base + spread(n)
        db.add(WorkOrderUnit(work_order_id=order.id, org_id=ev.org_id, role="lead"))
        (out["orders_b"] if ev.org_id == hall["HALL-B"].id else out["orders"]).append(order)
        db.add(
            Appeal(
                work_order_id=order.id,
                evaluation_id=ev.id,
                org_id=ev.org_id,
                category="mistaken",
                reasons=f"非本单位事项，联系人电话 {PHONE}",
                state="pending" if n % 3 else "upheld",
                from_state="verifying",
                filed_by="unit_a",
                filed_at=base + spread(n + 5),
                decide_due_at=base + timedelta(days=10),
            )
        )
    for n, ev in enumerate(out["a"] + out["b"]):
        db.add(
            IntegrityFlag(
                evaluation_id=ev.id,
                org_id=ev.org_id,
                check_name="source_burst",
                stage="batch",
                subject="pad",
                reason="同一来源短时评价多件",
                evidence={},
                state="open" if n % 4 else "cleared",
                created_at=base + spread(n + 3),
            )
        )
        if ev.level >= 3:
            db.add(
                SpotCheck(
                    evaluation_id=ev.id,
                    org_id=ev.org_id,
                    state="done" if n % 5 == 0 else "pending",
                    verdict="satisfied" if n % 5 == 0 else None,
                    created_at=base + spread(n + 1),
                    done_at=base + timedelta(days=1) if n % 5 == 0 else None,
                )
            )
    await db.commit()
    return out


async def listed(client, path: str, params: dict, pattern: str = ROW_ID) -> list[int]:
    """The ids a list shows for its filters, page after page (its "下一页" links)."""
    r = await client.get(path, params=params)
    ids: list[int] = []
    for _ in range(100):
        assert r.status_code == 200, r.text[-1500:]
        ids += [int(i) for i in re.findall(pattern, r.text)]
        more = NEXT.search(r.text)
        if more is None:
            return ids
        r = await client.get(html.unescape(more.group(1)))
    raise AssertionError("the list never ended")


async def exported(client, path: str, params: dict) -> tuple[list[str], list[tuple]]:
    """The download of a list for its filters: the header and the rows."""
    r = await client.get(path + "/export", params=params)
    assert r.status_code == 200, r.text[-1500:]
    assert r.headers["content-type"] == XLSX
    assert r.headers["cache-control"] == "no-store"
    assert "attachment;" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    return list(rows[0]), rows[1:]


async def same_rows(client, path: str, params: dict, pattern: str = ROW_ID) -> list[int]:
    """The list's ids over all its pages equal the download's first column, in order."""
    ids = await listed(client, path, params, pattern)
    _header, rows = await exported(client, path, params)
    assert [r[0] for r in rows] == ids
    return ids


def by_time(rows, time: str, *, newest_first: bool) -> list[int]:
    """Ids ordered by a time attribute with the id breaking ties."""
    keyed = sorted(rows, key=lambda r: (getattr(r, time), r.id), reverse=newest_first)
    return [r.id for r in keyed]


async def test_ratings_by_rating_time_across_pages_and_their_download(client, db, world, lists):
    await sign_in(client, world.users["office"])
    everything = lists["a"] + lists["b"]
    ids = await same_rows(client, "/console/evaluations", {})
    # More than two pages, newest rating time first, ties by id, none repeated or skipped.
    assert ids == by_time(everything, "evaluated_at", newest_first=True)
    assert ids != sorted(ids, reverse=True)  # not the row order
    r = await client.get("/console/evaluations")
    assert "排序：按评价时间倒序（最近的在前）" in r.text
    assert 'href="/console/evaluations/export"' in r.text
    bad = await same_rows(client, "/console/evaluations", {"level": "2"})
    assert bad == [i for i in ids if i in {e.id for e in everything if e.level == 2}]
    narrowed = await same_rows(
        client, "/console/evaluations", {"org_code": "HALL-A", "item_code": "ITEM-A1"}
    )
    assert narrowed == [i for i in ids if i in {e.id for e in lists["a"]}]
    # A unit downloads its own subtree only, whatever it asks for.
    await sign_in(client, world.users["unit_a"])
    assert await same_rows(client, "/console/evaluations", {}) == narrowed
    assert await same_rows(client, "/console/evaluations", {"org_code": "HALL-B"}) == []


async def test_rating_download_is_masked_like_the_list(client, db, world, lists):
    await sign_in(client, world.users["office"])
    header, rows = await exported(client, "/console/evaluations", {})
    assert header[:3] == ["评价编号", "评价时间", "等级"]
    cells = [str(c) for row in rows for c in row if c is not None]
    assert not any(PHONE in c or RATER in c for c in cells)
    first = next(r for r in rows if r[0] == lists["a"][0].id)
    assert first[header.index("评价人")] == mask_name(RATER)
    assert PHONE not in first[header.index("评价内容")]
    # The rating time is a time cell in Shanghai wall-clock time, as the page shows it.
    assert first[1].strftime("%Y-%m-%d %H:%M") == fmt_local(lists["a"][0].evaluated_at)


async def test_work_order_queues_by_opened_time_and_their_download(client, db, world, lists):
    await sign_in(client, world.users["office"])
    orders = lists["orders"] + lists["orders_b"]
    ids = await same_rows(client, "/console/work-orders", {})
    assert ids == by_time(orders, "opened_at", newest_first=False) and len(ids) > 20
    r = await client.get("/console/work-orders")
    assert "排序：按生成时间顺序（最早的在前）" in r.text
    assert await same_rows(client, "/console/work-orders", {"state": "supervising"}) == [
        i for i in ids if i in {o.id for o in orders if o.state == "supervising"}
    ]
    assert await same_rows(client, "/console/supervision", {}) == [
        i for i in ids if i in {o.id for o in orders if o.state == "supervising"}
    ]
    await sign_in(client, world.users["unit_a"])
    assert await same_rows(client, "/console/work-orders", {}) == [
        i for i in ids if i in {o.id for o in lists["orders"]}
    ]
    r = await client.get("/console/supervision/export")
    assert r.status_code == 403  # offices only, as the queue


async def test_appeals_by_filed_time_and_their_download(client, db, world, lists):
    await sign_in(client, world.users["office"])
    appeals = (await db.execute(select(Appeal))).scalars().all()
    mine = [a for a in appeals if a.work_order_id in {o.id for o in lists["orders"]}]
    theirs = [a for a in appeals if a.work_order_id in {o.id for o in lists["orders_b"]}]
    everything = mine + theirs
    pending = await same_rows(client, "/console/appeals", {}, APPEAL_ID)
    expected = [a for a in everything if a.state == "pending"]
    assert pending == by_time(expected, "filed_at", newest_first=False)
    all_ids = await same_rows(client, "/console/appeals", {"state": "all"}, APPEAL_ID)
    assert all_ids == by_time(everything, "filed_at", newest_first=True) and len(all_ids) > 20
    r = await client.get("/console/appeals", params={"state": "all"})
    assert "排序：按提出时间倒序（最近的在前）" in r.text
    # The unit picker's filter: a hall and its subtree.
    assert await same_rows(
        client, "/console/appeals", {"state": "all", "org_code": "HALL-B"}, APPEAL_ID
    ) == by_time(theirs, "filed_at", newest_first=True)
    _header, rows = await exported(client, "/console/appeals", {"state": "all"})
    assert not any(PHONE in str(c) for row in rows for c in row)  # free text masked
    await sign_in(client, world.users["unit_a"])
    assert await same_rows(client, "/console/appeals", {"state": "all"}, APPEAL_ID) == by_time(
        mine, "filed_at", newest_first=True
    )


async def test_flags_by_raised_time_and_their_download(client, db, world, lists):
    await sign_in(client, world.users["office"])
    flags = (
        (
            await db.execute(
                select(IntegrityFlag).where(
                    IntegrityFlag.evaluation_id.in_([e.id for e in lists["a"] + lists["b"]])
                )
            )
        )
        .scalars()
        .all()
    )
    open_ids = await same_rows(client, "/console/integrity", {})
    assert open_ids == by_time(
        [f for f in flags if f.state == "open"], "created_at", newest_first=False
    )
    all_ids = await same_rows(client, "/console/integrity", {"state": "all"})
    assert all_ids == by_time(flags, "created_at", newest_first=True)
    hall_b = await same_rows(client, "/console/integrity", {"state": "all", "org_code": "HALL-B"})
    assert set(hall_b) == {f.id for f in flags if f.evaluation_id in {e.id for e in lists["b"]}}
    # Units do not review flags: their download is refused like the queue.
    await sign_in(client, world.users["unit_a"])
    assert (await client.get("/console/integrity/export")).status_code == 403


async def test_spot_checks_by_sampled_time_and_their_download(client, db, world, lists):
    await sign_in(client, world.users["office"])
    checks = (await db.execute(select(SpotCheck))).scalars().all()
    checks = [c for c in checks if c.evaluation_id in {e.id for e in lists["a"] + lists["b"]}]
    pending = await same_rows(client, "/console/spot-checks", {})
    assert pending == by_time(
        [c for c in checks if c.state == "pending"], "created_at", newest_first=False
    )
    assert len(pending) > 20
    done = await same_rows(client, "/console/spot-checks", {"state": "done"})
    finished = [c for c in checks if c.state == "done"]
    assert done == by_time(finished, "created_at", newest_first=True)
    r = await client.get("/console/spot-checks", params={"state": "done"})
    assert "排序：按抽取时间倒序（最近的在前）" in r.text
    header, rows = await exported(client, "/console/spot-checks", {})
    assert "评价人" in header and not any(RATER in str(c) for row in rows for c in row)
    await sign_in(client, world.users["unit_a"])
    own = {c.id for c in checks if c.org_id == lists["a"][0].org_id and c.state == "pending"}
    assert set(await same_rows(client, "/console/spot-checks", {})) == own


async def test_a_download_of_refused_filters_is_a_4xx_and_a_bad_cursor_a_400(client, world):
    await sign_in(client, world.users["office"])
    r = await client.get("/console/evaluations/export", params={"level": "9"})
    assert r.status_code == 422 and "评价等级取值无效" in r.text
    r = await client.get("/console/work-orders/export", params={"state": "nonsense"})
    assert r.status_code == 422 and "工单状态取值无效" in r.text
    r = await client.get("/console/appeals/export", params={"state": "nonsense"})
    assert r.status_code == 422
    r = await client.get("/console/integrity/export", params={"org_code": "NO-SUCH-ORG"})
    assert r.status_code == 404
    for cursor in ("garbage", "azoxMjM", "azoyMDI2LTAxLTAxVDAwOjAwOjAwfDE"):
        # not base64 of ours; "k:123" (an id, not a time); a naive time
        r = await client.get("/console/evaluations", params={"cursor": cursor})
        assert r.status_code == 400 and "分页游标无效" in r.text, cursor


async def test_item_picker_offers_items_by_name(client, world):
    await sign_in(client, world.users["unit_a"])
    params = {"field": "item_code", "list": "f-item", "item_code": "执照"}
    r = await client.get("/console/pickers/items", params=params)
    assert r.status_code == 200
    assert '<option value="ITEM-A1"' in r.text and "营业执照核发（ITEM-A1）" in r.text
    assert "ITEM-B1" not in r.text
    # Other tests' worlds (suffixed codes) commit items of the same name in the same region.
    assert re.search(r"找到 \d+ 个事项", r.text)
    r = await client.get("/console/pickers/items", params={"q": "没有这个事项"})
    assert "<option" not in r.text
    r = await client.get("/console/pickers/items", params={"list": "Bad List"})
    assert r.status_code == 422
    page = (await client.get("/console/evaluations")).text
    assert 'hx-get="/console/pickers/items?field=item_code&amp;list=f-item"' in page
    assert 'hx-get="/console/pickers/orgs?scope=own' in page


async def test_a_long_download_keeps_memory_bounded(client, db, world):
    """20,000 ratings exported: the peak of Python allocations stays far below what the rows
    would take held at once (each row of the list is a dict of some 30 values, > 2 KB)."""
    n = 20_000
    org = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
    item = (await db.execute(select(Item.id).where(Item.code == "ITEM-A1"))).scalar_one()
    start = now() - timedelta(days=40)
    rows = [
        {
            "channel": "pad",
            "level": 1 + i % 5,
            "reasons": [],
            "comment": "窗口人员态度很好，办理很快" if i % 3 else None,
            "tagset_version": "national-2020",
            "org_id": org.id,
            "item_id": item,
            "region_code": org.region_code,
            "is_default": False,
            "eval_count": 1,
            "anonymous": True,
            "is_public": True,
            "evaluated_at": start + timedelta(seconds=i * 7),
            "received_at": start + timedelta(seconds=i * 7),
        }
        for i in range(n)
    ]
    for k in range(0, n, 2000):
        await db.execute(insert(Evaluation), rows[k : k + 2000])
    await db.commit()
    await sign_in(client, world.users["unit_a"])
    tracemalloc.start()
    try:
        r = await client.get("/console/evaluations/export")
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    assert sum(1 for _ in ws.iter_rows(values_only=True)) == n + 1
    # Rows held at once would be > 40 MB; batches of 1,000 and a write-only workbook stay
    # under 16 MB, the finished file (~1 MB) included.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
