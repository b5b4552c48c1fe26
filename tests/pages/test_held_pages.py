"""The review of held ratings (待复核评价) in the console over HTTP: the queue of ratings held
for a reason other than the detectors, the decision form (PRG, refusals with what was typed),
its effect on the statistics and the work order, who may see it, and the standing badge of
the rating list."""

from __future__ import annotations

import re
import uuid

import pytest

from haochaping.evaluations.standing import Standing, set_standing, standing_of
from tests import factories
from tests.factories import EvaluationPayloadFactory, bearer_headers, make_case
from tests.pages.helpers import alert, csrf_of, sign_in
from tests.workorders.conftest import rate_badly

HELD = "/console/held"
STATS = "/api/v1/stats/summary"


def held_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="card held" data-id="(\d+)"', html)]


async def hold(db, evaluation_id: int, reason: str = "malicious_rater") -> None:
    await set_standing(
        db=db,
        evaluation_id=evaluation_id,
        standing=Standing.HELD,
        reason=reason,
        actor="系统",
        note="评价人在恶意评价人员信息库中，待复核",
    )
    await db.commit()


@pytest.fixture
async def held(client, db, world):
    """A 不满意 at HALL-A with its work order, held as a registered rater's."""
    ev, order = await rate_badly(client, db, world)
    await hold(db, ev["id"])
    return ev, order


async def decide(client, evaluation_id: int, **fields):
    """Post the rating's form on the queue page, as the browser would."""
    page = await client.get(HELD)
    assert page.status_code == 200, page.text[-2000:]
    return await client.post(
        f"{HELD}/{evaluation_id}/review",
        data={"csrf_token": csrf_of(page.text), "back": HELD, **fields},
    )


async def bad_count(client, world) -> int:
    headers = await bearer_headers(client, world.users["office"])
    r = await client.get(STATS, params={"org_code": "HALL-A"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["bad"]


async def test_queue_lists_held_ratings_of_the_reviewers_area_only(client, db, world, held):
    ev, order = held
    # A detector's hold has its own queue; another area's held rating is not ours.
    flagged, _ = await rate_badly(client, db, world)
    await hold(db, flagged["id"], reason="detector")
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    far = await factories.make_case(db, other)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": other.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(case_no=far["case_no"], level=1, reasons=[], comment="差"),
    )
    assert r.status_code == 201, r.text
    far_id = r.json()["id"]
    await hold(db, far_id)
    await sign_in(client, world.users["office"])
    page = await client.get(HELD)
    assert page.status_code == 200
    assert held_ids(page.text) == [ev["id"]]
    card = page.text[page.text.index(f'data-id="{ev["id"]}"') :]
    card = card[: card.index("</li>\n")]
    for text in (
        "评价人在恶意评价人员信息库中",
        "上城区市民之家",
        "HALL-A",
        "不满意",
        "评价器",
        f'<a href="/console/work-orders/{order.id}">工单 #{order.id}</a>（核实中）',
        "计入统计（有效）",
        "不计入（无效）",
        "138****5678",
    ):
        assert text in card, text
    assert "13812345678" not in page.text
    assert 'id="held-waiting">1</span>' in page.text
    assert 'href="/console/held" aria-current="page">待复核评价</a>' in page.text
    queue = await client.get("/console/integrity")  # the fake-rating queue points here
    assert "另有 1 条评价因评价人在恶意评价人员信息库中等原因待复核" in queue.text
    # The unit filter (htmx gets the fragment), a refused one (404, said in Chinese).
    r = await client.get(HELD, params={"org_code": "HALL-B"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and held_ids(r.text) == []
    assert "已更新：本页 0 条待复核评价" in r.text
    r = await client.get(HELD, params={"org_code": "NOPE"})
    assert r.status_code == 404 and "机构 NOPE 不存在" in r.text
    await sign_in(client, other.users["admin"])
    assert held_ids((await client.get(HELD)).text) == [far_id]


async def test_queue_pages_newest_first_with_a_cursor(client, db, world, held, monkeypatch):
    from haochaping.console import views

    ev, _order = held
    newer, _ = await rate_badly(client, db, world)
    await hold(db, newer["id"])
    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    await sign_in(client, world.users["office"])
    page = await client.get(HELD, params={"org_code": "HALL-A"})
    assert held_ids(page.text) == [newer["id"]]
    link = re.search(r'<a class="button" rel="next" href="([^"]+)"', page.text)
    assert link and "org_code=HALL-A" in link.group(1)
    page = await client.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200 and held_ids(page.text) == [ev["id"]]
    assert 'rel="next"' not in page.text and "回到第一页" in page.text
    # A decision from the second page comes back to it.
    r = await client.post(
        f"{HELD}/{ev['id']}/review",
        data={
            "csrf_token": csrf_of(page.text),
            "standing": "valid",
            "note": "核实有效",
            "back": link.group(1).replace("&amp;", "&"),
        },
    )
    assert r.status_code == 303 and r.headers["location"].startswith(HELD + "?")
    assert "cursor=" in r.headers["location"]


async def test_register_expiry_shown_for_a_registered_rater(client, db, world, held):
    ev, order = held
    office = await bearer_headers(client, world.users["office"])
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await client.post(
        "/api/v1/appeals",
        headers=unit,
        json={
            "evaluation_id": ev["id"],
            "category": "malicious",
            "reasons": "评价人多次无理差评，已有录音为证，请求认定为恶意差评",
        },
    )
    assert r.status_code == 201, r.text
    # The held first rating may not be decided while its appeal is pending.
    await sign_in(client, world.users["office"])
    r2 = await decide(client, ev["id"], standing="invalid", note="恶意差评，经核实")
    assert r2.status_code == 409 and "该差评正在申诉复核中" in alert(r2.text)
    assert await standing_of(db, ev["id"]) == Standing.HELD
    r = await client.post(
        f"/api/v1/appeals/{r.json()['id']}/decision",
        headers=office,
        json={
            "decision": "uphold",
            "note": "经核查属实",
            "register_rater": True,
            "register_days": 180,
        },
    )
    assert r.status_code == 200, r.text
    from haochaping.evaluations.models import Evaluation

    rater = await db.get(Evaluation, ev["id"])
    applicant = {
        "type": "person",
        "name": "张三",
        "cert_type": "id_card",
        "cert_no": rater.rater_cert_no,
        "phone": rater.rater_phone,
    }
    case = await make_case(db, world, applicant=applicant)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(
            case_no=case["case_no"], level=1, reasons=[], comment="再给差评"
        ),
    )
    assert r.status_code == 201
    again = r.json()["id"]
    page = await client.get(HELD)
    assert held_ids(page.text) == [again]  # the first one is invalid now (appeal upheld)
    card = page.text[page.text.index(f'data-id="{again}"') :]
    assert "信息库登记有效至 " in card[: card.index("</li>\n")]


async def test_valid_makes_the_rating_count(client, db, world, held):
    ev, _order = held
    before = await bad_count(client, world)
    await sign_in(client, world.users["office"])
    r = await decide(client, ev["id"], standing="valid", note="经电话核实，确为真实诉求")
    assert r.status_code == 303 and r.headers["location"] == HELD
    assert await standing_of(db, ev["id"]) == Standing.VALID
    assert await bad_count(client, world) == before + 1
    page = await client.get(HELD)
    assert f"评价 #{ev['id']} 已复核为有效：计入统计" in page.text  # the one-time message
    assert held_ids(page.text) == [] and "本单位及下级单位目前没有待复核的评价" in page.text
    assert "已复核为有效" not in (await client.get(HELD)).text


async def test_invalid_needs_a_note_and_keeps_what_was_typed(client, db, world, held):
    ev, order = held
    await sign_in(client, world.users["office"])
    r = await decide(client, ev["id"], standing="invalid", note="   ")
    assert r.status_code == 422 and alert(r.text) == "请填写复核意见（核实经过和依据）"
    assert f'aria-describedby="held-error-{ev["id"]}"' in r.text
    r = await decide(client, ev["id"], note="没有选择决定")
    assert r.status_code == 422 and alert(r.text) == "请选择复核决定"
    assert ">没有选择决定</textarea>" in r.text
    r = await decide(client, ev["id"], standing="maybe", note="取值不对")
    assert r.status_code == 422 and "复核决定" in alert(r.text)
    assert ">取值不对</textarea>" in r.text
    r = await decide(client, ev["id"], standing="invalid", note="核" * 2001)
    assert r.status_code == 422 and "复核意见" in alert(r.text)
    assert await standing_of(db, ev["id"]) == Standing.HELD
    await db.refresh(order)
    assert order.state == "verifying"


async def test_invalid_ends_the_work_order_and_a_second_decision_is_refused(
    client, db, world, held
):
    ev, order = held
    before = await bad_count(client, world)
    await sign_in(client, world.users["office"])
    page = await client.get(HELD)
    r = await client.post(
        f"{HELD}/{ev['id']}/review",
        data={
            "csrf_token": csrf_of(page.text),
            "back": HELD,
            "standing": "invalid",
            "note": "恶意差评，经核实无事实依据",
        },
    )
    assert r.status_code == 303
    assert await standing_of(db, ev["id"]) == Standing.INVALID
    await db.refresh(order)
    assert order.state == "invalidated"
    assert await bad_count(client, world) == before
    shown = await client.get(r.headers["location"])
    assert f"评价 #{ev['id']} 已复核为无效" in shown.text
    # The same form again (a second tab): 409, said at the top, what was typed not saved.
    r = await client.post(
        f"{HELD}/{ev['id']}/review",
        data={"csrf_token": csrf_of(page.text), "standing": "valid", "note": "改判"},
    )
    assert r.status_code == 409 and alert(r.text) == "该评价不在待复核状态"
    assert 'id="page-error"' in r.text
    assert await standing_of(db, ev["id"]) == Standing.INVALID
    # A rating that was never held, and one that does not exist.
    plain, _ = await rate_badly(client, db, world)
    r = await client.post(
        f"{HELD}/{plain['id']}/review",
        data={"csrf_token": csrf_of(page.text), "standing": "valid", "note": "核实"},
    )
    assert r.status_code == 409 and "该评价不在待复核状态" in r.text
    r = await client.post(
        f"{HELD}/999999999/review",
        data={"csrf_token": csrf_of(page.text), "standing": "valid", "note": "核实"},
    )
    assert r.status_code == 404 and "评价不存在" in r.text
    r = await client.post(f"{HELD}/abc/review", data={"csrf_token": csrf_of(page.text)})
    assert 400 <= r.status_code < 500


async def test_decisions_need_the_csrf_token(client, db, world, held):
    ev, _order = held
    await sign_in(client, world.users["office"])
    r = await client.post(f"{HELD}/{ev['id']}/review", data={"standing": "valid", "note": "核实"})
    assert r.status_code == 403 and "请返回刷新页面后重试" in r.text
    r = await client.post(
        f"{HELD}/{ev['id']}/review",
        data={"csrf_token": "forged", "standing": "valid", "note": "核实"},
    )
    assert r.status_code == 403
    assert await standing_of(db, ev["id"]) == Standing.HELD


async def test_units_may_not_review(client, db, world, held):
    ev, _order = held
    await sign_in(client, world.users["unit_a"])
    home = await client.get("/console/evaluations")
    assert 'href="/console/held"' not in home.text
    r = await client.get(HELD)
    assert r.status_code == 403 and "仅供政务服务管理机构" in r.text
    assert "138****5678" not in r.text
    r = await client.post(
        f"{HELD}/{ev['id']}/review",
        data={"csrf_token": csrf_of(home.text), "standing": "valid", "note": "核实"},
    )
    assert r.status_code == 403
    assert await standing_of(db, ev["id"]) == Standing.HELD


async def test_rating_list_shows_the_standing(client, db, world, held):
    ev, _order = held
    plain, _ = await rate_badly(client, db, world)
    gone, _ = await rate_badly(client, db, world)
    await set_standing(
        db=db,
        evaluation_id=gone["id"],
        standing=Standing.INVALID,
        reason="review",
        actor="office",
        note="无效",
    )
    await db.commit()
    await sign_in(client, world.users["office"])
    page = await client.get("/console/evaluations")
    assert page.status_code == 200

    def row(evaluation_id: int) -> str:
        rows = re.findall(r"<tr class=\"[^\"]*\" data-level=.*?</tr>", page.text, re.S)
        # The list is newest first: the rows follow the ratings' order.
        return rows[[gone["id"], plain["id"], ev["id"]].index(evaluation_id)]

    assert 'data-standing="held">待复核</span>' in row(ev["id"])
    assert 'data-standing="invalid">无效（不计入统计）</span>' in row(gone["id"])
    assert "data-standing" not in row(plain["id"])


# --- in a real browser ------------------------------------------------------------------------


@pytest.mark.browser
async def test_review_a_held_rating_in_the_browser_with_accessibility_checks(
    new_page, live_server, live_world, committing
):
    from playwright.async_api import expect

    from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case
    from tests.pages.test_loop_browser import console_sign_in

    # Two committed bad ratings of the live world, held as a registered rater's.
    ids = []
    for _ in range(2):
        case = await live_case(committing, live_world)
        async with live_server.api() as api:
            r = await api.post(
                "/api/v1/evaluations",
                headers={"X-Api-Key": live_world.keys["hall_a_pad"]},
                json=EvaluationPayloadFactory(
                    case_no=case["case_no"],
                    level=2,
                    reasons=["213"],
                    comment="窗口人员让我跑了三趟，电话13812345678",
                ),
            )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    async with committing() as db:
        for evaluation_id in ids:
            await hold(db, evaluation_id)
    first, second = ids

    found: dict[str, list] = {}
    # The reviewer, on a phone with the page's CSP enforced.
    phone = await new_page(PHONE)
    await console_sign_in(phone, live_world.users["office"])
    await phone.get_by_role("link", name="待复核评价").click()
    await expect(phone.get_by_role("heading", level=1)).to_have_text("待复核评价")
    card = phone.locator(f'li[data-id="{first}"]')
    await expect(card).to_contain_text("评价人在恶意评价人员信息库中")
    await expect(card).to_contain_text("138****5678")
    # 不计入 without a note: refused, said beside the form.
    await card.get_by_role("button", name="不计入（无效）").click()
    card = phone.locator(f'li[data-id="{first}"]')
    await expect(card.get_by_role("alert")).to_have_text("请填写复核意见（核实经过和依据）")
    await card.get_by_label("复核意见（必填）").fill("经电话核实，确为本人真实诉求")
    await card.get_by_role("button", name="计入统计（有效）").click()
    await expect(phone.locator("#flash")).to_have_text(f"评价 #{first} 已复核为有效：计入统计")
    await expect(phone.locator(f'li[data-id="{first}"]')).to_have_count(0)
    await expect(phone.locator(f'li[data-id="{second}"]')).to_have_count(1)
    await phone.screenshot(path="/tmp/hcp-held-phone.png", full_page=True)
    # Large-font mode (特大): the queue still fits the phone's width.
    await phone.get_by_role("link", name="特大", exact=True).click()
    await phone.goto(HELD)
    assert (
        await phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        <= 0
    )
    await phone.get_by_role("link", name="标准", exact=True).click()
    assert phone.errors == []
    async with committing() as db:
        assert await standing_of(db, first) == Standing.VALID
        assert await standing_of(db, second) == Standing.HELD

    # axe-core, on the desktop and at a phone's width (CSP bypassed to inject axe).
    desk = await new_page(DESKTOP, bypass_csp=True)
    await console_sign_in(desk, live_world.users["admin"])
    await desk.goto(HELD)
    found["queue"] = await axe_violations(desk)
    await desk.screenshot(path="/tmp/hcp-held-desktop.png", full_page=True)
    await (
        desk.locator(f'li[data-id="{second}"]').get_by_role("button", name="不计入（无效）").click()
    )
    await expect(desk.get_by_role("alert")).to_have_text("请填写复核意见（核实经过和依据）")
    found["queue, refused (422)"] = await axe_violations(desk)
    await desk.goto(HELD + "?org_code=NOPE")
    found["queue, refused filter (404)"] = await axe_violations(desk)
    await desk.goto("/console/evaluations")
    found["rating list with badges"] = await axe_violations(desk)
    await desk.set_viewport_size(PHONE["viewport"])
    await desk.goto(HELD)
    found["queue, narrow"] = await axe_violations(desk)
    assert {k: v for k, v in found.items() if v} == {}
