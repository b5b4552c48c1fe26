"""The review queue of suspected fake ratings (疑似刷评复核) in the console over HTTP: the queue
and its filters, a flag with its evidence, the decision form (PRG, refusals with what was
typed), who may see it, and the staff identity register."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from haochaping.evaluations.standing import Standing, standing_of
from haochaping.integrity import detectors, queries, service
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs.models import Item, Org, Staff
from haochaping.workorders.models import WorkOrder
from tests import factories
from tests.integrity.conftest import T0, Builder, Ids
from tests.pages.helpers import alert, csrf_of, sign_in
from tests.workorders.conftest import rate_badly

QUEUE = "/console/integrity"
STAFF = "/console/integrity/staff"


def flag_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="[^"]*" data-id="(\d+)"', html)]


def finding(
    row,
    check="source_burst",
    reason="同一手机号（137****1111）在 6 小时内评价了 4 件不同办件，涉及 3 个不同评价人",
):
    return detectors.Finding(
        evaluation_id=row["id"],
        org_id=row["org_id"],
        check=check,
        subject="手机号 137****1111",
        reason=reason,
        evidence={
            "source": "phone",
            "value": "137****1111",
            "window_hours": 6.0,
            "cases": 4,
            "raters": 3,
            "evaluation_ids": [row["id"], 7, 8, 9],
        },
    )


async def builder(db, world: factories.World) -> Builder:
    """Stores flagged-to-be ratings in the world's halls (the detector tests' builder)."""
    c = world.code
    codes = dict((await db.execute(select(Org.code, Org.id))).all())
    staff = dict((await db.execute(select(Staff.staff_no, Staff.id))).all())
    items = dict((await db.execute(select(Item.code, Item.id))).all())
    ids = Ids(
        office=codes[c("OFFICE")],
        hall_a=codes[c("HALL-A")],
        w_a1=codes[c("W-A1")],
        w_a2=codes[c("W-A2")],
        hall_b=codes[c("HALL-B")],
        w_b1=codes[c("W-B1")],
        s_a1=staff[c("S-A1")],
        s_b1=staff[c("S-B1")],
        item_a1=items[c("ITEM-A1")],
        item_b1=items[c("ITEM-B1")],
    )
    # A region that exists: ratings committed for the browser test meet the deadline job,
    # which looks up the policy of their region.
    return Builder(db, world, ids, region="330102")


@pytest.fixture
async def build(db, world) -> Builder:
    return await builder(db, world)


@pytest.fixture
async def flagged(db, build):
    """A rating at HALL-A held by one open flag."""
    (row,) = await build.store([build.spec(at=T0)])
    (flag_id,) = await service.raise_flags(db=db, findings=[finding(row)], stage="intake")
    await db.commit()
    return row, flag_id


async def flag_state(db, flag_id: int) -> str:
    return (await db.get(IntegrityFlag, flag_id, populate_existing=True)).state


async def review(client, flag_id: int, **fields):
    """Post the decision form of the flag page, as the browser would."""
    page = await client.get(f"{QUEUE}/{flag_id}")
    assert page.status_code == 200, page.text[-2000:]
    return await client.post(
        f"{QUEUE}/{flag_id}/review", data={"csrf_token": csrf_of(page.text), **fields}
    )


# --- the queue -------------------------------------------------------------------------------


async def test_queue_needs_a_signed_in_user(client):
    r = await client.get(QUEUE)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_queue_lists_flags_of_the_reviewers_area_only(client, db, world, flagged):
    _row, flag_id = flagged
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    far = await builder(db, other)
    (far_row,) = await far.store([far.spec(at=T0)])
    (far_flag,) = await service.raise_flags(db=db, findings=[finding(far_row)], stage="batch")
    await db.commit()
    await sign_in(client, world.users["office"])
    r = await client.get(QUEUE)
    assert r.status_code == 200
    assert flag_ids(r.text) == [flag_id] and far_flag not in flag_ids(r.text)
    line = r.text[r.text.index(f'data-id="{flag_id}"') :]
    line = line[: line.index("</tr>")]
    for text in (
        f'href="/console/integrity/{flag_id}">标记 #{flag_id}</a>',
        "同一来源短时评价多件",
        "上城区市民之家",
        "HALL-A",
        "非常满意",
        "评价器",
        "2024-03-01 16:00",
        "同一手机号（137****1111）在 6 小时内评价了",
        "待复核",
    ):
        assert text in line, text
    assert re.search(r"INT-[0-9a-f]{8}-0", line)  # the case number
    # The open flags are counted, by check; the nav shows the queue to offices.
    assert re.search(r'counts__num">1</span><span class="counts__label">全部待复核', r.text)
    assert 'href="/console/integrity" aria-current="page">疑似刷评复核' in r.text
    await sign_in(client, other.users["admin"])
    assert flag_ids((await client.get(QUEUE)).text) == [far_flag]


async def test_queue_filters_htmx_and_refused_values(client, db, world, build):
    rows = await build.store(
        [build.spec(at=T0), build.spec(at=T0, window="w_b1"), build.spec(at=T0)]
    )
    a, b, c = await service.raise_flags(
        db=db,
        findings=[
            finding(rows[0]),
            finding(rows[1]),
            finding(rows[2], "instant_pad", "办结后 1 秒即评价"),
        ],
        stage="batch",
    )
    await service.review(
        db=db, actor=factories.ADMIN, flag_id=a, decision=service.Decision.CLEAR, note=None
    )
    await db.commit()
    await sign_in(client, world.users["office"])

    async def listed(**params) -> list[int]:
        r = await client.get(QUEUE, params=params)
        assert r.status_code == 200, r.text[-1500:]
        return flag_ids(r.text)

    assert await listed() == [b, c]  # 待复核 by default
    assert await listed(state="cleared") == [a]
    assert await listed(state="invalidated") == []
    # Open flags are a work queue (raised first, first); every state a record, newest first.
    assert await listed(state="all") == [c, b, a]
    assert await listed(check="instant_pad") == [c]
    assert await listed(state="all", check="source_burst") == [b, a]
    assert await listed(org_code="HALL-B") == [b]
    assert await listed(org_code="HALL-A", check="instant_pad") == [c]
    r = await client.get(QUEUE, params={"check": "instant_pad"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and flag_ids(r.text) == [c]
    assert 'hx-swap-oob="true">已更新：本页 1 条标记' in r.text
    # Values the form cannot send are refused with a message, never a 500.
    r = await client.get(QUEUE, params={"state": "maybe", "check": "astrology"})
    assert r.status_code == 422 and flag_ids(r.text) == []
    assert "复核状态取值无效" in alert(r.text) and "检测类型取值无效" in r.text
    r = await client.get(QUEUE, params={"org_code": "NO-SUCH-ORG"})
    assert r.status_code == 404 and "机构 NO-SUCH-ORG 不存在" in alert(r.text)
    # htmx swaps only 2xx: the fragment says what is wrong instead.
    r = await client.get(QUEUE, params={"org_code": "NO-SUCH-ORG"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and "机构 NO-SUCH-ORG 不存在" in r.text
    r = await client.get(QUEUE, params={"cursor": "junk"})
    assert r.status_code == 400 and "分页游标无效" in r.text
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    await db.commit()
    r = await client.get(QUEUE, params={"org_code": other.code("HALL-A")})
    assert r.status_code == 403 and "超出本账号的机构权限范围" in r.text


async def test_queue_pages_with_a_cursor(client, db, world, build):
    rows = await build.store([build.spec(at=T0) for _ in range(21)])
    made = await service.raise_flags(db=db, findings=[finding(r) for r in rows], stage="batch")
    await db.commit()
    await sign_in(client, world.users["admin"])
    first = await client.get(QUEUE)
    assert flag_ids(first.text) == made[:20]
    link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert link and "更多" in first.text
    second = await client.get(link.group(1).replace("&amp;", "&"))
    assert flag_ids(second.text) == made[20:]
    assert "回到第一页" in second.text and 'rel="next"' not in second.text


# --- one flag ----------------------------------------------------------------------------------


async def test_flag_page_lays_out_evidence_and_the_masked_rating(client, flagged, world):
    row, flag_id = flagged
    await sign_in(client, world.users["office"])
    r = await client.get(f"{QUEUE}/{flag_id}")
    assert r.status_code == 200
    assert f"<h1>疑似刷评标记 #{flag_id}</h1>" in r.text
    evidence = r.text[r.text.index('class="facts facts--wide evidence"') :]
    evidence = evidence[: evidence.index("</dl>")]
    pairs = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", evidence))
    assert pairs == {
        "检测类型": "同一来源短时评价多件",
        "指向": "手机号 137****1111",
        "来源类型": "手机号",
        "来源（已脱敏）": "137****1111",
        "时间窗口": "6 小时",
        "评价的办件": "4 件",
        "涉及评价人": "3 人",
        "同一来源的评价": f"共 4 条：#{row['id']}、#7、#8、#9",
    }
    assert "[" not in evidence and "{" not in evidence  # no raw JSON
    # The rating, personal data masked; its standing and the history of it.
    assert "张*" in r.text and row["rater_cert_no"] not in r.text
    assert row["rater_phone"] not in r.text
    assert 'id="rating-standing">待复核</span>' in r.text
    assert "有效 → 待复核" in r.text and "疑似刷评检测" in r.text
    assert "排除（评价有效）</button>" in r.text and "判定无效</button>" in r.text


async def test_flag_page_shows_the_other_flags_of_the_rating(client, db, world, build):
    (row,) = await build.store([build.spec(at=T0)])
    first, second = await service.raise_flags(
        db=db,
        findings=[finding(row), finding(row, "instant_pad", "办结后 1 秒即评价")],
        stage="batch",
    )
    await db.commit()
    await sign_in(client, world.users["office"])
    r = await client.get(f"{QUEUE}/{first}")
    assert f'<a href="/console/integrity/{second}">标记 #{second}</a>：评价器办结即评' in r.text


async def test_unknown_bad_and_foreign_flag_ids(client, db, world, flagged):
    _row, flag_id = flagged
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    await db.commit()
    await sign_in(client, other.users["office"])
    r = await client.get(f"{QUEUE}/{flag_id}")
    assert r.status_code == 403 and "该评价不属于本单位或下级单位" in r.text
    assert "张*" not in r.text
    r = await client.get(f"{QUEUE}/999999999")
    assert r.status_code == 404 and "该疑似刷评标记不存在" in r.text
    for bad in ("abc", "0", str(2**63)):
        r = await client.get(f"{QUEUE}/{bad}")
        assert r.status_code == 422 and "请求参数不符合要求" in r.text, bad


# --- the decision -----------------------------------------------------------------------------


async def test_clear_makes_the_rating_count_again(client, db, world, flagged):
    row, flag_id = flagged
    await sign_in(client, world.users["office"])
    r = await review(client, flag_id, decision="clear", note="经电话回访，确为本人评价")
    assert r.status_code == 303 and r.headers["location"] == f"{QUEUE}/{flag_id}"
    assert await flag_state(db, flag_id) == "cleared"
    assert await standing_of(db, row["id"]) == Standing.VALID
    page = await client.get(r.headers["location"])
    assert "已排除：评价有效" in page.text  # the one-time message
    outcome = page.text[page.text.index('id="review-outcome"') :]
    assert "已排除（评价有效）" in outcome and world.users["office"] in outcome
    assert "经电话回访，确为本人评价" in outcome
    assert 'id="rating-standing">有效</span>' in page.text
    assert "疑似刷评复核：排除" in page.text and 'name="decision"' not in page.text
    assert flag_ids((await client.get(QUEUE)).text) == []


async def test_invalidate_needs_a_note_and_keeps_what_was_typed(client, db, world, flagged):
    row, flag_id = flagged
    await sign_in(client, world.users["office"])
    r = await review(client, flag_id, decision="invalidate", note="   ")
    assert r.status_code == 422 and alert(r.text) == "判定无效须填写复核意见"
    assert 'aria-describedby="review-error"' in r.text
    long = "核" * 1001
    r = await review(client, flag_id, decision="invalidate", note=long)
    assert r.status_code == 422 and "复核意见" in alert(r.text)
    assert f">{long}</textarea>" in r.text
    r = await review(client, flag_id, note="没有选择决定")
    assert r.status_code == 422 and alert(r.text) == "请选择复核决定"
    assert ">没有选择决定</textarea>" in r.text
    r = await review(client, flag_id, decision="approve", note="x")
    assert r.status_code == 422 and "复核决定" in alert(r.text)
    assert await flag_state(db, flag_id) == "open"
    assert await standing_of(db, row["id"]) == Standing.HELD


async def test_invalidate_with_a_note_then_a_second_decision_is_refused(client, db, world, flagged):
    row, flag_id = flagged
    await sign_in(client, world.users["office"])
    r = await review(client, flag_id, decision="invalidate", note="窗口人员代按评价器，已核实")
    assert r.status_code == 303
    assert await standing_of(db, row["id"]) == Standing.INVALID
    page = await client.get(r.headers["location"])
    assert "已判定无效：评价保留记录，不计入统计和排名" in page.text
    assert 'id="flag-state">已判定无效</span>' in page.text
    assert 'id="rating-standing">无效评价</span>' in page.text
    assert "待复核 → 无效评价" in page.text and "疑似刷评复核：判定无效" in page.text
    assert "窗口人员代按评价器，已核实" in page.text
    # The same flag again (a second tab still showing the form): 409, nothing changes.
    csrf = csrf_of(page.text)
    r = await client.post(
        f"{QUEUE}/{flag_id}/review", data={"csrf_token": csrf, "decision": "clear", "note": "改判"}
    )
    assert r.status_code == 409 and alert(r.text).startswith("该标记已复核，不能重复处理")
    assert "改判" in r.text  # what was typed is shown, not saved
    assert await flag_state(db, flag_id) == "invalidated"
    assert await standing_of(db, row["id"]) == Standing.INVALID


async def test_invalidating_a_flagged_bad_rating_ends_its_work_order(client, db, world):
    ev, order = await rate_badly(client, db, world)
    row = {"id": ev["id"], "org_id": order.org_id}
    (flag_id,) = await service.raise_flags(
        db=db,
        findings=[finding(row, "coordinated_bad", "3 条差评集中指向上城区市民之家")],
        stage="batch",
    )
    await db.commit()
    await sign_in(client, world.users["office"])
    page = await client.get(f"{QUEUE}/{flag_id}")
    assert f'<a href="/console/work-orders/{order.id}">工单 #{order.id}</a>（核实中）' in page.text
    assert "差评工单随之结束" in page.text
    assert "13812345678" not in page.text and "138****5678" in page.text  # the comment, masked
    # While the unit's appeal is pending, the appeal decides: 409, nothing changes.
    await db.execute(update(WorkOrder).where(WorkOrder.id == order.id).values(state="appealing"))
    await db.commit()
    r = await review(client, flag_id, decision="invalidate", note="组织差评，已核实")
    assert r.status_code == 409 and "该差评正在申诉复核中" in alert(r.text)
    assert await flag_state(db, flag_id) == "open"
    await db.execute(update(WorkOrder).where(WorkOrder.id == order.id).values(state="verifying"))
    await db.commit()
    r = await review(client, flag_id, decision="invalidate", note="组织差评，已核实")
    assert r.status_code == 303
    await db.refresh(order)
    assert order.state == "invalidated"
    page = await client.get(r.headers["location"])
    assert f"工单 #{order.id}</a>（差评无效（不计入统计））" in page.text


async def test_decisions_need_the_csrf_token(client, db, world, flagged):
    _row, flag_id = flagged
    await sign_in(client, world.users["office"])
    r = await client.post(f"{QUEUE}/{flag_id}/review", data={"decision": "clear"})
    assert r.status_code == 403 and "请返回刷新页面后重试" in r.text
    r = await client.post(
        f"{QUEUE}/{flag_id}/review", data={"decision": "clear", "csrf_token": "forged"}
    )
    assert r.status_code == 403
    r = await client.post(STAFF, data={"staff_no": "S-A1", "phone": "13900000001"})
    assert r.status_code == 403
    assert await flag_state(db, flag_id) == "open"


async def test_units_may_not_review(client, db, world, flagged):
    _row, flag_id = flagged
    await sign_in(client, world.users["unit_a"])
    home = await client.get("/console/evaluations")
    assert 'href="/console/integrity"' not in home.text
    for path in (QUEUE, f"{QUEUE}/{flag_id}", STAFF):
        r = await client.get(path)
        assert r.status_code == 403 and "当前角色无权执行此操作" in r.text, path
        assert "张*" not in r.text
    r = await client.post(
        f"{QUEUE}/{flag_id}/review", data={"csrf_token": csrf_of(home.text), "decision": "clear"}
    )
    assert r.status_code == 403 and "当前角色无权执行此操作" in r.text
    r = await client.post(
        STAFF, data={"csrf_token": csrf_of(home.text), "staff_no": "S-A1", "phone": "13900000001"}
    )
    assert r.status_code == 403
    assert await flag_state(db, flag_id) == "open"


# --- the staff identity register --------------------------------------------------------------


async def test_staff_identity_form_records_and_rescans(client, app, db, world, build):
    # A rating at W-A1 whose rater is the window's own staff member, given by ID number.
    cert = "330102198001010033"
    (row,) = await build.store([build.spec(at=datetime.now(UTC), rater_cert_no=cert)])
    await db.commit()
    guard = app.state.integrity_guard
    await guard.identities.get(db)
    assert guard.identities._expires > 0
    await sign_in(client, world.users["office"])
    page = await client.get(STAFF)
    assert page.status_code == 200 and "<h1>登记工作人员身份信息</h1>" in page.text
    csrf = csrf_of(page.text)

    async def post(**fields):
        return await client.post(STAFF, data={"csrf_token": csrf, **fields})

    r = await post(staff_no="S-A1")
    assert r.status_code == 422 and alert(r.text) == "须至少填写身份证号或手机号之一"
    assert 'value="S-A1"' in r.text
    r = await post(cert_no=cert)
    assert r.status_code == 422 and alert(r.text) == "请填写工号"
    r = await post(staff_no="S-A1", phone="call me")
    assert r.status_code == 422 and alert(r.text).startswith("手机号")
    r = await post(staff_no="S-NOBODY", cert_no=cert)
    assert r.status_code == 404 and "工作人员 S-NOBODY 不存在" in alert(r.text)
    r = await post(staff_no="S-A1", cert_no=cert, phone="13900000033")
    assert r.status_code == 303 and r.headers["location"] == STAFF
    assert guard.identities._expires == 0  # the intake check reloads the identities
    flags = (
        (await db.execute(select(IntegrityFlag).where(IntegrityFlag.evaluation_id == row["id"])))
        .scalars()
        .all()
    )
    assert [f.check_name for f in flags] == ["staff_self_rating"]
    page = await client.get(STAFF)
    assert "已登记工作人员 S-A1 的身份证号、手机号" in page.text
    assert "发现并标记疑似自评 1 条" in page.text
    listed = page.text[page.text.index("staff-identities") :]
    assert "李娜" in listed and "身份证号、手机号" in listed and world.users["office"] in listed
    assert cert not in page.text and "13900000033" not in page.text
    # The flag reads as evidence on its page.
    r = await client.get(f"{QUEUE}/{flags[0].id}")
    assert "<dt>一致的对象</dt><dd>办理该件的工作人员本人</dd>" in r.text
    assert "<dt>一致的信息</dt><dd>身份证号</dd>" in r.text


# --- evidence as people read it --------------------------------------------------------------


def test_every_check_has_labelled_evidence():
    assert set(queries.EVIDENCE_FIELDS) == set(detectors.REGISTRY)
    rows = queries.evidence_rows(
        "instant_pad",
        {
            "window_code": "W-A1",
            "device": "PAD****01",
            "ratings": 12,
            "instant": 9,
            "share": 0.75,
            "instant_seconds": 3.0,
            "days": 7,
            "seconds": 1.2,
            "new_key": [1, 2],
        },
    )
    assert [(r["label"], r["text"]) for r in rows] == [
        ("窗口编码", "W-A1"),
        ("评价器（已脱敏）", "PAD****01"),
        ("本条评价距办结", "1.2 秒"),
        ("该评价器评价总数", "12 条"),
        ("办结即评", "9 条"),
        ("办结即评占比", "75%"),
        ("“办结即评”的标准", "办结后 3 秒内"),
        ("统计范围", "近 7 天"),
        ("new_key", "1、2"),
    ]
    rows = queries.evidence_rows(
        "coordinated_bad", {"linked_by": ["phone", "ip"], "first": "2024-03-01T08:00:00+00:00"}
    )
    assert [(r["label"], r["text"]) for r in rows] == [
        ("评价人之间的关联", "手机号、IP 地址"),
        ("第一条差评", "2024-03-01 16:00"),
    ]
    rows = queries.evidence_rows("perfect_unit", {"p_value": 1.234e-9, "share": 0.9912})
    assert [r["text"] for r in rows] == ["99.1%", "约 1.2e-09"]


# --- in a real browser ------------------------------------------------------------------------


@pytest.mark.browser
async def test_review_in_the_browser_with_accessibility_checks(
    new_page, live_server, live_world, committing
):
    from playwright.async_api import expect

    from tests.pages.conftest import DESKTOP, PHONE, axe_violations
    from tests.pages.test_loop_browser import console_sign_in

    # Two committed flags in the live world (rated now: away from the batch tests' T0).
    async with committing() as db:
        live = await builder(db, live_world)
        # At hall B, where the other browser tests (rating at hall A) raise no flags.
        first, second = await live.store(
            [
                live.spec(at=datetime.now(UTC), window="w_b1"),
                live.spec(at=datetime.now(UTC), window="w_b1"),
            ]
        )
        (burst,) = await service.raise_flags(db=db, findings=[finding(first)], stage="intake")
        (pad,) = await service.raise_flags(
            db=db,
            findings=[
                detectors.Finding(
                    evaluation_id=second["id"],
                    org_id=second["org_id"],
                    check="instant_pad",
                    subject="窗口 W-B1 评价器 PAD****01",
                    reason="窗口 W-B1 评价器 PAD****01近 7 天 12 条评价中有 9 条（75%）"
                    "在办结后 3 秒内提交，疑似工作人员代按评价器",
                    evidence={
                        "window_code": "W-B1",
                        "device": "PAD****01",
                        "ratings": 12,
                        "instant": 9,
                        "share": 0.75,
                        "instant_seconds": 3.0,
                        "days": 7,
                        "seconds": 1.2,
                    },
                )
            ],
            stage="batch",
        )
        await db.commit()

    found: dict[str, list] = {}
    # The reviewer, on a phone with the page's CSP enforced.
    phone = await new_page(PHONE)
    await console_sign_in(phone, live_world.users["office"])
    await phone.get_by_role("link", name="疑似刷评复核").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text("疑似刷评复核")
    # Other browser tests rate through the live server too (at hall A): their flags may be
    # listed. The unit filter, then the check filter, both swapped in by htmx.
    await phone.get_by_label("被评价单位", exact=True).fill(live_world.code("HALL-B"))
    await phone.get_by_role("button", name="查询").click()
    await expect(phone.locator("#results-status")).to_have_text("已更新：本页 2 条标记")
    await expect(phone.locator("tr[data-id]")).to_have_count(2)
    await phone.get_by_label("检测类型").select_option(label="同一来源短时评价多件")
    await expect(phone.locator("#results-status")).to_have_text("已更新：本页 1 条标记")
    await expect(phone.locator("tr[data-id]")).to_have_count(1)
    assert "check=source_burst" in phone.url and "org_code=HALL-B" in phone.url
    row = phone.locator(f'tr[data-id="{burst}"]')
    await expect(row).to_contain_text("同一来源短时评价多件")
    await row.get_by_role("link", name=f"标记 #{burst}").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text(f"疑似刷评标记 #{burst}")
    await expect(phone.locator(".evidence")).to_contain_text("评价的办件")
    # 判定无效 without a note: refused, said beside the form.
    await phone.get_by_role("button", name="判定无效").click()
    await expect(phone.get_by_role("alert")).to_have_text("判定无效须填写复核意见")
    await phone.get_by_label("复核意见").fill("同一手机号一天内评价多件，经核实为工作人员代评")
    await phone.get_by_role("button", name="判定无效").click()
    await expect(phone.locator("#flash")).to_have_text("已判定无效：评价保留记录，不计入统计和排名")
    await expect(phone.locator("#flag-state")).to_have_text("已判定无效")
    await expect(phone.locator("#review-outcome")).to_contain_text("经核实为工作人员代评")
    await expect(phone.locator("#rating-standing")).to_have_text("无效评价")
    await expect(phone.get_by_role("button", name="判定无效")).to_have_count(0)
    await phone.screenshot(path="/tmp/hcp-flag-reviewed-phone.png", full_page=True)
    # Large-font mode (特大): queue and flag still fit the phone's width.
    await phone.get_by_role("link", name="特大", exact=True).click()
    for path in (phone.url, "/console/integrity?state=all", f"/console/integrity/{pad}"):
        await phone.goto(path)
        assert (
            await phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            <= 0
        )
    await phone.get_by_role("link", name="标准", exact=True).click()
    assert phone.errors == []

    # axe-core, on the desktop and at a phone's width (CSP bypassed to inject axe).
    desk = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(desk, live_world.users["admin"])
    await desk.goto("/console/integrity?state=all")
    found["queue"] = await axe_violations(desk)
    await desk.screenshot(path="/tmp/hcp-flag-queue-desktop.png", full_page=True)
    await desk.goto("/console/integrity?state=maybe")
    found["queue, refused filter (422)"] = await axe_violations(desk)
    await desk.goto(f"/console/integrity/{pad}")
    found["open flag with the form"] = await axe_violations(desk)
    await desk.screenshot(path="/tmp/hcp-flag-desktop.png", full_page=True)
    await desk.get_by_role("button", name="判定无效").click()
    await expect(desk.get_by_role("alert")).to_have_text("判定无效须填写复核意见")
    found["open flag, refused (422)"] = await axe_violations(desk)
    await desk.goto(f"/console/integrity/{burst}")
    found["reviewed flag"] = await axe_violations(desk)
    await desk.goto("/console/integrity/staff")
    found["staff identity form"] = await axe_violations(desk)
    await desk.set_viewport_size(PHONE["viewport"])
    for name, path in (
        ("queue, narrow", "/console/integrity?state=all"),
        ("open flag, narrow", f"/console/integrity/{pad}"),
        ("reviewed flag, narrow", f"/console/integrity/{burst}"),
    ):
        await desk.goto(path)
        found[name] = await axe_violations(desk)
    assert {k: v for k, v in found.items() if v} == {}
