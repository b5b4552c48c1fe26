"""The register of malicious raters (恶意评价人员信息库) in the console over HTTP: the list of
the office's area, the search by identity (the typed number hashed with the register's keyed
hash, never kept), an entry made outside an appeal with its evidence, the early revocation,
each act's audit row, the refusals in Chinese, and the notice a registered rater reads."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from haochaping.appeals.models import MaliciousRater
from haochaping.core.audit import AuditAction
from haochaping.core.models import AuditEvent
from haochaping.evaluations.standing import EvaluationStanding, Standing, standing_of
from tests import factories
from tests.factories import EvaluationPayloadFactory, make_case
from tests.pages.helpers import alert, csrf_of, sign_in
from tests.portal.conftest import invite

REGISTER = "/console/register"


def entry_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="card register" data-id="(\d+)"', html)]


def new_phone() -> str:
    return "139" + f"{uuid.uuid4().int % 10**8:08d}"


async def post_form(client, path: str, **fields):
    page = await client.get(REGISTER)
    assert page.status_code == 200, page.text[-2000:]
    return await client.post(path, data={"csrf_token": csrf_of(page.text), **fields})


async def add(client, phone: str, **fields):
    body = {
        "kind": "phone",
        "identifier": phone,
        "evidence": "2026年11月起多次电话辱骂窗口人员并以差评相威胁，有通话录音三段为证",
        "days": "90",
        **fields,
    }
    return await post_form(client, REGISTER, **body)


async def rate_as(client, db, world, phone: str) -> int:
    """A 不满意 at HALL-A by a rater with this phone; returns the rating's id."""
    applicant = {"type": "person", "name": "张三", "cert_type": "id_card", "phone": phone}
    applicant["cert_no"] = f"33010219900101{uuid.uuid4().int % 10000:04d}"
    case = await make_case(db, world, applicant=applicant)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(case_no=case["case_no"], level=2, reasons=[], comment="差"),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def audit_rows(db, action: AuditAction, actor: str) -> list[AuditEvent]:
    """The rows of one person (the browser test's live server commits rows of its own)."""
    stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.actor == actor)
    return list((await db.execute(stmt.order_by(AuditEvent.id))).scalars())


async def test_add_search_and_revoke_each_on_record_and_in_force_at_intake(client, db, world):
    phone = new_phone()
    masked = phone[:3] + "****" + phone[-4:]
    await sign_in(client, world.users["office"])
    page = await client.get(REGISTER)
    assert page.status_code == 200 and "<h1>恶意评价人名单</h1>" in page.text
    assert 'href="/console/register" aria-current="page">恶意评价人名单' in page.text
    # An entry outside an appeal, typed with spaces: normalised, hashed, masked.
    spaced = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    r = await add(client, spaced, org_code="HALL-A")
    assert r.status_code == 303 and r.headers["location"] == REGISTER, r.text[-1500:]
    page = await client.get(REGISTER)
    assert f"已将 {masked} 列入恶意评价人员信息库" in page.text
    [entry_id] = entry_ids(page.text)
    card = page.text[page.text.index(f'data-id="{entry_id}"') :]
    for text in (masked, "有效", "上城区市民之家", "有通话录音三段为证", "提前移出名单"):
        assert text in card, text
    assert phone not in page.text and spaced not in page.text
    entry = await db.get(MaliciousRater, entry_id)
    assert entry.appeal_id is None and entry.masked == masked and entry.kind == "phone"
    assert entry.identity_hash == client._transport.app.state.keys.identity_hash(phone, "phone")
    [added] = await audit_rows(db, AuditAction.REGISTER_ADD, world.users["office"])
    assert (added.actor, added.target_id) == (world.users["office"], entry_id)
    assert added.detail["masked"] == masked and phone not in str(added.detail)
    # The rater's next rating is held out of the statistics.
    held = await rate_as(client, db, world, phone)
    assert await standing_of(db, held) == Standing.HELD
    # The search finds the entry by the number, in the same format and with dashes.
    for typed in (phone, f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"):
        r = await post_form(client, REGISTER + "/search", kind="phone", identifier=typed)
        assert r.status_code == 200 and entry_ids(r.text) == [entry_id], typed
        assert "该号码共 <strong>1</strong> 条记录" in r.text
    r = await post_form(client, REGISTER + "/search", kind="phone", identifier=new_phone())
    assert r.status_code == 200 and entry_ids(r.text) == [] and "名单中没有这个号码" in r.text
    searches = await audit_rows(db, AuditAction.REGISTER_SEARCH, world.users["office"])
    assert len(searches) == 3 and all(phone not in str(s.detail) for s in searches)
    # Revoked early, with a note: the next rating counts.
    note = "经复查，录音中的来电号码并非此人"
    r = await post_form(client, f"{REGISTER}/{entry_id}/revoke", note=note, back=REGISTER)
    assert r.status_code == 303 and r.headers["location"] == REGISTER
    page = await client.get(REGISTER)
    assert f"记录 #{entry_id} 已移出信息库" in page.text and entry_ids(page.text) == []
    ended = await client.get(REGISTER, params={"state": "ended"})
    assert entry_ids(ended.text) == [entry_id]
    assert "已提前移出" in ended.text and "经复查，录音中的来电号码并非此人" in ended.text
    [revoked] = await audit_rows(db, AuditAction.REGISTER_REVOKE, world.users["office"])
    assert (revoked.actor, revoked.target_id) == (world.users["office"], entry_id)
    after = await rate_as(client, db, world, phone)
    assert await standing_of(db, after) != Standing.HELD
    held_row = await db.get(EvaluationStanding, held)
    assert held_row is not None and held_row.standing == Standing.HELD.value  # stays for review


async def test_refusals_are_4xx_in_chinese_and_write_nothing(client, db, world):
    await sign_in(client, world.users["office"])
    cases = [
        ({"identifier": "12345"}, 422, "手机号码须为 11 位数字"),
        ({"kind": "cert", "identifier": "33010219900101"}, 422, "身份证号码须为 15 位数字"),
        ({"kind": "fax"}, 422, "号码类型"),
        ({"evidence": "太短"}, 422, "列入依据"),
        ({"days": "0"}, 422, "期限（天）不能小于 1"),
        ({"days": "abc"}, 422, "期限（天）"),
        ({"org_code": "NOPE"}, 404, "机构 NOPE 不存在"),
    ]
    for fields, status, message in cases:
        r = await add(client, new_phone(), **fields)
        assert r.status_code == status, (fields, r.status_code)
        assert message in alert(r.text), (fields, alert(r.text))
    phone = new_phone()
    assert (await add(client, phone)).status_code == 303
    r = await add(client, phone)
    assert r.status_code == 409 and "已在恶意评价人员信息库中" in alert(r.text)
    # Outside the office's area: another province's unit.
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    r = await add(client, new_phone(), org_code=f"HALL-A{other.suffix}")
    assert r.status_code == 403
    assert len(await audit_rows(db, AuditAction.REGISTER_ADD, world.users["office"])) == 1
    r = await post_form(client, REGISTER + "/search", kind="phone", identifier="abc")
    assert r.status_code == 422 and "手机号码须为 11 位数字" in alert(r.text)
    entry_id = entry_ids((await client.get(REGISTER)).text)[0]
    r = await post_form(client, f"{REGISTER}/{entry_id}/revoke", note="")
    assert r.status_code == 422 and "请填写移出理由" in alert(r.text)
    r = await post_form(client, f"{REGISTER}/999999999/revoke", note="不存在的记录")
    assert r.status_code == 404 and "信息库中没有这条记录" in alert(r.text)
    r = await post_form(client, f"{REGISTER}/99999999999999999999/revoke", note="超出范围")
    assert r.status_code == 422
    r = await post_form(client, f"{REGISTER}/{entry_id}/revoke", note="核实有误")
    assert r.status_code == 303
    r = await post_form(client, f"{REGISTER}/{entry_id}/revoke", note="核实有误")
    assert r.status_code == 409 and "已被移出信息库" in alert(r.text)
    assert len(await audit_rows(db, AuditAction.REGISTER_REVOKE, world.users["office"])) == 1
    r = await client.get(REGISTER, params={"state": "nope"})
    assert r.status_code == 200 and "状态取值无效" in r.text and entry_ids(r.text) == []


async def test_scoped_to_the_area_and_only_for_offices(client, db, world):
    await sign_in(client, world.users["office"])
    assert (await add(client, new_phone(), org_code="HALL-B")).status_code == 303
    [mine] = entry_ids((await client.get(REGISTER)).text)
    r = await client.get(REGISTER, params={"org_code": "HALL-A"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and entry_ids(r.text) == []
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    await sign_in(client, other.users["office"])
    assert mine not in entry_ids((await client.get(REGISTER)).text)
    r = await post_form(client, f"{REGISTER}/{mine}/revoke", note="不是我辖区的记录")
    assert r.status_code == 403
    for role in ("unit_a", "assessor"):
        await sign_in(client, world.users[role])
        r = await client.get(REGISTER)
        assert r.status_code == 403, role
        assert 'href="/console/register"' not in r.text


async def test_register_notice_of_the_region_on_the_thank_you_page(client, db, world):
    phone = new_phone()
    await sign_in(client, world.users["office"])
    assert (await add(client, phone)).status_code == 303
    applicant = {
        "type": "person",
        "name": "张三",
        "cert_type": "id_card",
        "cert_no": f"33010219900101{uuid.uuid4().int % 10000:04d}",
        "phone": phone,
    }
    case = await make_case(db, world, applicant=applicant)
    link = await invite(client, world, case["case_no"])
    r = await client.post(link, data={"level": "2", "reasons": ["213"], "comment": "不满意"})
    assert r.status_code == 303
    thanks = await client.get(r.headers["location"])
    assert "您的评价暂不计入统计" in thanks.text
    assert "可向办理该事项的政务服务管理机构提出" in thanks.text  # the general sentence
    # The region sets its own notice in the policy form.
    notice = "如有异议，请于收到本通知 15 日内致电 0571-12345 或到上城区市民之家 3 号窗口申请复核。"
    page = await client.get("/console/policies")
    r = await client.post(
        "/console/policies",
        data={"csrf_token": csrf_of(page.text), "region_code": "330102", "register_notice": notice},
    )
    assert r.status_code == 303, alert(r.text)
    policies = await client.get(r.headers["location"])
    assert notice in policies.text
    case = await make_case(db, world, applicant=applicant)
    link = await invite(client, world, case["case_no"])
    r = await client.post(link, data={"level": "5"})
    thanks = await client.get(r.headers["location"])
    assert "您的评价暂不计入统计" in thanks.text and notice in thanks.text
    # A rater not on the register reads nothing of it.
    other = await make_case(db, world)
    link = await invite(client, world, other["case_no"])
    r = await client.post(link, data={"level": "5"})
    assert "暂不计入统计" not in (await client.get(r.headers["location"])).text


@pytest.mark.parametrize("kind", ["cert"])
async def test_a_certificate_number_matches_in_lower_case(client, db, world, kind):
    cert = f"33010219900101{uuid.uuid4().int % 1000:03d}X"
    await sign_in(client, world.users["office"])
    assert (await add(client, cert, kind=kind)).status_code == 303
    r = await post_form(client, REGISTER + "/search", kind=kind, identifier=cert.lower())
    assert len(entry_ids(r.text)) == 1 and cert not in r.text and "3301**********" in r.text


@pytest.mark.browser
async def test_the_register_in_a_browser_desk_phone_large_fonts_and_axe(
    new_page, live_server, live_world, committing
):
    from datetime import timedelta

    from playwright.async_api import expect

    from haochaping.core.timeutil import utcnow
    from haochaping.workorders.models import WorkOrder
    from tests.factories import PASSWORD
    from tests.pages.conftest import DESKTOP, PHONE, axe_violations, live_case

    # An overdue work order of the office's area: the navigation carries a to-do badge.
    case = await live_case(committing, live_world)
    async with live_server.api() as api:
        r = await api.post(
            "/api/v1/evaluations",
            headers={"X-Api-Key": live_world.keys["hall_a_pad"]},
            json=EvaluationPayloadFactory(
                case_no=case["case_no"], level=1, reasons=[], comment="差"
            ),
        )
    assert r.status_code == 201, r.text
    async with committing() as cdb:
        order = (
            await cdb.execute(select(WorkOrder).where(WorkOrder.evaluation_id == r.json()["id"]))
        ).scalar_one()
        order.verify_due_at = utcnow() - timedelta(hours=2)
        await cdb.commit()
    phone = new_phone()
    masked = phone[:3] + "****" + phone[-4:]
    page = await new_page(DESKTOP, bypass_csp=True)
    await page.goto("/login")
    await page.get_by_label("用户名").fill(live_world.users["office"])
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("评价记录")
    await page.get_by_role("link", name="恶意评价人名单").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("恶意评价人名单")
    found = {"register": await axe_violations(page)}
    # A refused entry keeps what was typed and says why, beside the form.
    add_form = page.locator("form[action='/console/register']")
    await add_form.get_by_label("号码", exact=True).fill(phone)
    await add_form.get_by_label("列入依据").fill("太短")
    await add_form.get_by_role("button", name="列入名单").click()
    await expect(page.locator("#add-error")).to_contain_text("列入依据")
    found["register, refused entry"] = await axe_violations(page)
    add_form = page.locator("form[action='/console/register']")
    await add_form.get_by_label("列入依据").fill(
        "多次以差评相威胁索要不当利益，有书面材料和录音为证"
    )
    await add_form.get_by_label("涉及单位", exact=True).fill(f"HALL-A{live_world.suffix}")
    await add_form.get_by_role("button", name="列入名单").click()
    await expect(page.locator("#flash")).to_contain_text(f"已将 {masked} 列入")
    # After an act the badges are read again (else they are kept 30 s: another test may have
    # shown this person's navigation a moment ago).
    badge = page.get_by_role("link", name=re.compile(r"差评工单\s*（待办 \d+ 项：已超期 [1-9]"))
    await expect(badge).to_be_visible()
    # The search by number, typed with spaces.
    search = page.locator("form[action='/console/register/search']")
    await search.get_by_label("号码", exact=True).fill(f"{phone[:3]} {phone[3:7]} {phone[7:]}")
    await search.get_by_role("button", name="查询").click()
    await expect(page.locator(".summary")).to_contain_text("该号码共 1 条记录")
    found["register, searched"] = await axe_violations(page)
    # On a phone, in the largest font, nothing is wider than the screen.
    await page.set_viewport_size(PHONE["viewport"])
    await page.goto("/console/register")
    found["register, narrow"] = await axe_violations(page)
    await page.get_by_role("link", name="特大", exact=True).click()
    await page.goto("/console/register")
    assert await page.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert await page.evaluate(overflow) <= 0
    found["register, narrow, large font"] = await axe_violations(page)
    # Revoked early from the list.
    card = page.locator("li.register", has_text=masked)
    await card.get_by_label("移出理由（必填）").fill("经复核，材料不足以认定")
    await card.get_by_role("button", name="提前移出名单").click()
    await expect(page.locator("#flash")).to_contain_text("已移出信息库")
    await expect(page.locator("li.register", has_text=masked)).to_have_count(0)
    await page.get_by_role("link", name="标准", exact=True).click()
    assert {name: v for name, v in found.items() if v} == {}
    assert page.errors == []
