"""The closed loop in the console over HTTP: queues, the work-order page, its action forms
(CSRF, PRG, refusals with the form kept), evidence uploads, appeals and their decision."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from haochaping.appeals.models import Appeal
from haochaping.workorders.models import Attachment, WorkOrder, WorkOrderEvent
from tests.factories import now, statements_sent
from tests.pages.helpers import act, alert, csrf_of, page_form, sign_in
from tests.workorders.conftest import rate_badly

QUEUE = "/console/work-orders"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def order_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="[^"]*" data-state="\w+" data-id="(\d+)"', html)]


@pytest.fixture
async def bad(client, db, world):
    return await rate_badly(client, db, world)


async def state_of(db, order) -> str:
    await db.refresh(order)
    return order.state


async def test_queue_needs_a_signed_in_user(client):
    r = await client.get(QUEUE)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_queue_lists_the_units_orders_with_working_days_left(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await client.get(QUEUE)
    assert r.status_code == 200
    assert order.id in order_ids(r.text)
    row = r.text[r.text.index(f'data-id="{order.id}"') :]
    row = row[: row.index("</tr>")]
    assert "核实中" in row and "营业执照核发" in row and "上城区市民之家" in row
    assert re.search(
        r"核实期限</span>\s*<span class=\"deadline__text\">(剩余 \d+ 个工作日|今日到期)", row
    )
    assert "已超期" not in row
    # The nav shows the closed loop; the supervision queue only to offices.
    assert 'href="/console/work-orders" aria-current="page"' in r.text
    assert 'href="/console/supervision"' not in r.text
    await sign_in(client, world.users["unit_b"])
    assert order.id not in order_ids((await client.get(QUEUE)).text)


async def test_overdue_orders_are_marked_in_words_not_only_red(client, db, world, bad):
    _ev, order = bad
    await db.execute(
        update(WorkOrder)
        .where(WorkOrder.id == order.id)
        .values(verify_due_at=now() - timedelta(days=8), deadlines_verified=False)
    )
    await db.commit()
    await sign_in(client, world.users["unit_a"])
    r = await client.get(QUEUE)
    row = r.text[r.text.index(f'data-id="{order.id}"') :]
    row = row[: row.index("</tr>")]
    assert 'class="is-bad"' in r.text.split(f'data-id="{order.id}"')[0][-80:]
    assert '<span class="tag-bad">已超期</span>' in row
    assert re.search(r"已超期 \d+ 个工作日", row) and "（日历未核实）" in row
    assert order.id in order_ids((await client.get(QUEUE, params={"overdue": "yes"})).text)
    assert order.id not in order_ids((await client.get(QUEUE, params={"overdue": "no"})).text)


async def test_queue_filters_htmx_and_bad_values(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["office"])
    assert order.id in order_ids((await client.get(QUEUE, params={"state": "verifying"})).text)
    assert order.id not in order_ids((await client.get(QUEUE, params={"state": "closed"})).text)
    assert order.id in order_ids((await client.get(QUEUE, params={"org_code": "HALL-A"})).text)
    assert order.id not in order_ids((await client.get(QUEUE, params={"org_code": "HALL-B"})).text)
    far = (now() + timedelta(days=60)).date().isoformat()
    assert order.id in order_ids((await client.get(QUEUE, params={"due_before": far})).text)
    assert order.id not in order_ids(
        (await client.get(QUEUE, params={"due_before": "2000-01-01"})).text
    )
    r = await client.get(QUEUE, params={"state": "verifying"}, headers={"HX-Request": "true"})
    assert "<html" not in r.text and 'hx-swap-oob="true">已更新：本页' in r.text
    r = await client.get(QUEUE, params={"state": "flying", "due_before": "soon"})
    assert r.status_code == 200 and "工单状态取值无效" in r.text and "到期日期格式应为" in r.text
    assert (await client.get(QUEUE, params={"cursor": "junk"})).status_code == 400


async def test_queue_pages_with_a_cursor(client, db, world):
    for _ in range(21):
        await rate_badly(client, db, world)
    await sign_in(client, world.users["unit_a"])
    first = await client.get(QUEUE, params={"state": "verifying"})
    assert len(order_ids(first.text)) == 20
    link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert link
    second = await client.get(link.group(1).replace("&amp;", "&"))
    ids = order_ids(second.text)
    assert len(ids) >= 1 and min(ids) > max(order_ids(first.text))
    assert "回到第一页" in second.text


async def test_supervision_queue_is_for_offices_and_holds_supervised_or_overdue(client, db, world):
    _e1, quiet = await rate_badly(client, db, world)
    _e2, late = await rate_badly(client, db, world)
    _e3, supervised = await rate_badly(client, db, world)
    await db.execute(
        update(WorkOrder)
        .where(WorkOrder.id == late.id)
        .values(verify_due_at=now() - timedelta(days=3))
    )
    await db.execute(
        update(WorkOrder).where(WorkOrder.id == supervised.id).values(state="supervising")
    )
    await db.commit()
    await sign_in(client, world.users["unit_a"])
    r = await client.get("/console/supervision")
    assert r.status_code == 403 and "仅供政务服务管理机构" in r.text
    await sign_in(client, world.users["office"])
    r = await client.get("/console/supervision")
    assert r.status_code == 200 and "<h1>督办</h1>" in r.text
    assert 'href="/console/supervision" aria-current="page"' in r.text
    ids = order_ids(r.text)
    assert late.id in ids and supervised.id in ids and quiet.id not in ids


async def test_work_order_page_shows_the_rating_case_units_deadlines_and_forms(
    client, db, world, bad
):
    ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await client.get(f"{QUEUE}/{order.id}")
    assert r.status_code == 200
    html = r.text
    assert f"<h1>差评工单 #{order.id}</h1>" in html and "核实中" in html
    assert "不满意" in html and "窗口人员业务不熟练" in html
    assert "138****5678" in html and "13812345678" not in html  # masked inside the comment
    assert "营业执照核发" in html and "上城区市民之家 · 综合受理1号窗口" in html
    assert ev["case_no"] in html and "核实期限" in html and "整改期限" in html
    assert "生成工单" in html and "系统" in html  # the timeline's first event
    forms = re.findall(r'name="action" value="(\w+)"', html)
    assert forms == ["verify", "transfer", "explain"]
    assert f'action="/console/work-orders/{order.id}/appeal"' in html
    assert f'name="version" value="{order.version}"' in html
    await sign_in(client, world.users["office"])
    html = (await client.get(f"{QUEUE}/{order.id}")).text
    assert re.findall(r'name="action" value="(\w+)"', html) == [
        "verify",
        "transfer",
        "explain",
        "escalate",
    ]
    assert '/appeal"' not in html  # offices decide appeals, they do not file them
    await sign_in(client, world.users["unit_b"])
    r = await client.get(f"{QUEUE}/{order.id}")
    assert r.status_code == 403 and "不属于本单位" in r.text
    assert (await client.get(f"{QUEUE}/999999")).status_code == 404
    assert (await client.get(f"{QUEUE}/abc")).status_code == 422


async def test_verify_upload_and_report_rectified_redirect_back(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await act(client, order.id, "verify", note="已电话联系评价人，情况属实")
    assert r.status_code == 303 and r.headers["location"] == f"{QUEUE}/{order.id}"
    page = await client.get(r.headers["location"])
    assert "已完成“核实”，工单状态：整改中" in page.text
    assert re.findall(r'name="action" value="(\w+)"', page.text) == [
        "transfer",
        "explain",
        "report_rectified",
    ]
    # The flash shows once.
    assert "已完成“核实”" not in (await client.get(f"{QUEUE}/{order.id}")).text

    csrf = csrf_of(page.text)
    r = await client.post(
        f"{QUEUE}/{order.id}/attachments",
        data={"csrf_token": csrf},
        files={"file": ("整改照片.png", PNG, "image/png")},
    )
    assert r.status_code == 303
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "附件“整改照片.png”已上传" in page.text and "已上传、待提交的附件" in page.text
    file_id = (
        await db.execute(select(Attachment.id).where(Attachment.work_order_id == order.id))
    ).scalar_one()
    assert f'name="attachment_ids" value="{file_id}"' in page.text

    r = await act(
        client,
        order.id,
        "report_rectified",
        note="已培训窗口人员，并公开材料清单",
        attachment_ids=str(file_id),
    )
    assert r.status_code == 303
    assert await state_of(db, order) == "callback"
    page = await client.get(f"{QUEUE}/{order.id}")
    link = f"/api/v1/work-orders/{order.id}/attachments/{file_id}"
    assert f'href="{link}">附件：整改照片.png' in page.text
    assert "核实 → 整改中" not in page.text and "核实中 → 整改中" in page.text
    assert "已培训窗口人员" in page.text and world.users["unit_a"] in page.text
    download = await client.get(link)
    assert download.status_code == 200 and download.content == PNG
    events = (
        (
            await db.execute(
                select(WorkOrderEvent.action)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id)
            )
        )
        .scalars()
        .all()
    )
    assert events == ["open", "verify", "report_rectified"]


async def test_a_disguised_upload_is_refused_on_the_page(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    csrf, _ = await page_form(client, f"{QUEUE}/{order.id}")
    r = await client.post(
        f"{QUEUE}/{order.id}/attachments",
        data={"csrf_token": csrf},
        files={"file": ("report.pdf", b"MZ\x90 not a pdf", "application/pdf")},
    )
    assert r.status_code == 422 and "只接受 PDF、PNG、JPEG、WebP 格式的附件" in alert(r.text)
    r = await client.post(f"{QUEUE}/{order.id}/attachments", data={"csrf_token": csrf})
    assert r.status_code == 422 and "请选择要上传的文件" in r.text
    assert (
        await db.execute(select(Attachment).where(Attachment.work_order_id == order.id))
    ).first() is None


async def test_actions_need_the_sessions_csrf_token(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await client.post(
        f"{QUEUE}/{order.id}/actions", data={"action": "verify", "note": "属实", "version": "1"}
    )
    assert r.status_code == 403 and "请返回刷新页面后重试" in r.text
    r = await client.post(
        f"{QUEUE}/{order.id}/actions",
        data={"csrf_token": "forged", "action": "verify", "note": "属实"},
    )
    assert r.status_code == 403
    assert await state_of(db, order) == "verifying"


async def test_missing_fields_are_422_and_the_form_keeps_what_was_typed(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await act(client, order.id, "transfer", note="  ", lead_org_other="HALL-B")
    assert r.status_code == 422
    assert alert(r.text) == "请填写转办理由"
    assert '<details class="action" id="action-transfer" open>' in r.text
    assert 'name="lead_org_other" type="text" value="HALL-B"' in r.text
    r = await act(client, order.id, "transfer", note="不属于本单位职责", lead_org_other="NOPE")
    assert r.status_code == 404 and "NOPE" in alert(r.text) and "不属于本单位职责" in r.text
    r = await act(client, order.id, "fly", note="x")
    assert r.status_code == 422 and "未知的操作类型" in r.text
    assert await state_of(db, order) == "verifying"


async def test_an_illegal_action_is_409_in_words(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await act(client, order.id, "report_rectified", note="已整改")
    assert r.status_code == 409
    assert "工单当前状态为“核实中”，不能执行“报告整改完成”" in alert(r.text)
    assert "已整改" in r.text  # what was typed is shown again


async def test_roles_are_refused_with_403(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["assessor"])
    r = await act(client, order.id, "verify", note="属实")
    assert r.status_code == 403 and "当前角色无权执行此操作" in r.text
    await sign_in(client, world.users["unit_a"])
    r = await act(client, order.id, "escalate", note="督办")
    assert r.status_code == 403
    assert await state_of(db, order) == "verifying"


async def test_two_handlers_at_once_one_wins(app, client, db, world, bad):
    _ev, order = bad
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await sign_in(client, world.users["unit_a"])
        await sign_in(other, world.users["office"])
        mine, _ = await page_form(client, f"{QUEUE}/{order.id}")
        theirs, _ = await page_form(other, f"{QUEUE}/{order.id}")
        first = await other.post(
            f"{QUEUE}/{order.id}/actions",
            data={
                "csrf_token": theirs,
                "action": "verify",
                "version": "1",
                "note": "管理机构已核实",
            },
        )
        assert first.status_code == 303
        second = await client.post(
            f"{QUEUE}/{order.id}/actions",
            data={"csrf_token": mine, "action": "verify", "version": "1", "note": "单位已核实"},
        )
    assert second.status_code == 409
    assert "工单已被他人同时处理，请刷新" in alert(second.text)
    assert "单位已核实" in second.text  # kept, so it is not lost
    assert await state_of(db, order) == "rectifying"
    notes = (
        (
            await db.execute(
                select(WorkOrderEvent.note).where(
                    WorkOrderEvent.work_order_id == order.id, WorkOrderEvent.action == "verify"
                )
            )
        )
        .scalars()
        .all()
    )
    assert notes == ["管理机构已核实"]


async def test_transfer_by_code_hands_the_order_over(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    r = await act(client, order.id, "transfer", note="属不动产登记职责", lead_org_other="HALL-B")
    assert r.status_code == 303 and r.headers["location"] == QUEUE
    assert f"工单 #{order.id} 已转办" in (await client.get(QUEUE)).text
    await sign_in(client, world.users["unit_b"])
    page = await client.get(f"{QUEUE}/{order.id}")
    assert page.status_code == 200 and "已转办" in page.text and "杭州市民中心" in page.text


async def test_office_transfers_with_the_select_and_names_co_units(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["office"])
    page = await client.get(f"{QUEUE}/{order.id}")
    assert (
        '<option value="HALL-B">' in page.text
        and 'value="HALL-A">'
        not in page.text.split('id="transfer-lead_org_code"')[1].split("</select>")[0]
    )
    assert 'name="lead_org_other"' not in page.text
    csrf = csrf_of(page.text)
    r = await client.post(
        f"{QUEUE}/{order.id}/actions",
        data={
            "csrf_token": csrf,
            "action": "transfer",
            "version": str(order.version),
            "lead_org_code": "HALL-B",
            "co_org_codes": ["DEPT-M", "HALL-A"],
            "note": "转办",
        },
    )
    assert r.status_code == 303
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "协办单位" in page.text and "市场监督管理局" in page.text
    assert "协办单位：DEPT-M、HALL-A" in page.text


async def test_a_unit_chooses_units_outside_its_subtree_by_name(client, db, world, bad):
    """The transfer form's pickers (issue 11): a unit names the lead and the co-handling
    units by name among any unit of its region, not only its own subtree."""
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    page = await client.get(f"{QUEUE}/{order.id}")
    for field in ('name="lead_org_other"', 'id="transfer-co-other-0"', 'id="transfer-co-other-1"'):
        assert field in page.text
    assert "scope=region" in page.text and "kind=unit" in page.text
    r = await client.get(
        "/console/pickers/orgs", params={"scope": "region", "kind": "unit", "q": "市场监督"}
    )
    assert '<option value="DEPT-M"' in r.text  # not in hall A's subtree, but in its region
    r = await act(
        client,
        order.id,
        "transfer",
        note="属市场监管职责",
        lead_org_other="HALL-B",
        co_org_codes=["DEPT-M"],
    )
    assert r.status_code == 303, alert(r.text)
    await sign_in(client, world.users["office"])
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "协办单位：DEPT-M" in page.text


async def test_callback_supervision_and_the_office_forms(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    await act(client, order.id, "verify", note="属实")
    await act(client, order.id, "report_rectified", note="已整改")
    r = await act(client, order.id, "callback", method="phone", reached="yes", note="打通了")
    assert r.status_code == 422 and "联系上评价人时须记录其评价" in r.text
    assert (
        'value="phone" selected' in r.text
        and 'id="callback-reached-yes" required checked' in r.text
    )
    r = await act(client, order.id, "callback", method="phone", reached="no")
    assert r.status_code == 303 and await state_of(db, order) == "callback"
    r = await act(
        client,
        order.id,
        "callback",
        method="phone",
        reached="yes",
        verdict="dissatisfied",
        note="仍不满意",
    )
    assert r.status_code == 303 and await state_of(db, order) == "supervising"
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "当前环节您没有可执行的操作" in page.text
    assert "评价人意见：不满意" in page.text and "回访方式：电话" in page.text

    await sign_in(client, world.users["office"])
    page = await client.get(f"{QUEUE}/{order.id}")
    assert re.findall(r'name="action" value="(\w+)"', page.text) == [
        "redispatch",
        "hold_accountable",
        "close",
    ]
    r = await act(client, order.id, "redispatch", note="限期整改", rectify_days="99")
    assert r.status_code == 422 and "整改期限不能大于 60" in r.text
    r = await act(client, order.id, "redispatch", note="限 5 个工作日整改", rectify_days="5")
    assert r.status_code == 303 and await state_of(db, order) == "rectifying"
    assert "整改期限：5 个工作日" in (await client.get(f"{QUEUE}/{order.id}")).text
    await act(client, order.id, "escalate", note="再次督办")
    await act(client, order.id, "hold_accountable", note="不作为，启动问责")
    r = await act(client, order.id, "close", note="问责完毕")
    assert r.status_code == 303 and await state_of(db, order) == "closed"
    page = await client.get(f"{QUEUE}/{order.id}")
    assert (
        "工单已结束，无需继续办理" in page.text
        and 'action="/console/work-orders'
        not in page.text.replace(f'action="/console/work-orders/{order.id}/attachments"', "")
    )


async def test_appeal_filed_on_the_page_and_decided_in_the_queue(client, db, world, bad):
    ev, order = bad
    await sign_in(client, world.users["unit_a"])
    csrf, version = await page_form(client, f"{QUEUE}/{order.id}")
    r = await client.post(
        f"{QUEUE}/{order.id}/appeal",
        data={"csrf_token": csrf, "version": version, "category": "mistaken", "reasons": " "},
    )
    assert r.status_code == 422 and "请填写申诉理由" in alert(r.text)
    r = await client.post(
        f"{QUEUE}/{order.id}/appeal",
        data={
            "csrf_token": csrf,
            "version": version,
            "category": "mistaken",
            "reasons": "该事项依法由不动产登记中心受理，窗口已正确引导",
        },
    )
    assert r.status_code == 303
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "已提出申诉" in page.text and "申诉（待复核）" in page.text and "误评" in page.text
    assert await state_of(db, order) == "appealing"
    # Units see their appeals but do not decide them.
    queue = await client.get("/console/appeals")
    assert queue.status_code == 200 and f"工单 #{order.id}" in queue.text
    assert "复核决定</h3>" not in queue.text
    appeal_id = (
        await db.execute(select(Appeal.id).where(Appeal.work_order_id == order.id))
    ).scalar_one()
    r = await client.post(
        f"/console/appeals/{appeal_id}/decision",
        data={"csrf_token": csrf, "decision": "uphold", "note": "核查属实"},
    )
    assert r.status_code == 403 and "申诉由政务服务管理机构复核决定" in r.text

    await sign_in(client, world.users["office"])
    queue = await client.get("/console/appeals")
    assert "复核决定</h3>" in queue.text
    assert 'name="register_rater"' not in queue.text  # only for a malicious appeal
    csrf = csrf_of(queue.text)
    r = await client.post(
        f"/console/appeals/{appeal_id}/decision",
        data={"csrf_token": csrf, "decision": "uphold", "note": "核查属实", "register_rater": "on"},
    )
    assert r.status_code == 422 and "只有认定为恶意差评的申诉" in alert(r.text)
    assert "核查属实" in r.text
    r = await client.post(
        f"/console/appeals/{appeal_id}/decision",
        data={
            "csrf_token": csrf,
            "decision": "uphold",
            "note": "核查属实",
            "next": "/console/appeals",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/appeals"
    assert await state_of(db, order) == "invalidated"
    done = await client.get("/console/appeals", params={"state": "upheld"})
    assert "已作出复核决定：申诉成立" in done.text and f"工单 #{order.id}" in done.text
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "申诉（申诉成立）" in page.text and "核查属实" in page.text


async def test_a_malicious_appeal_is_decided_on_the_work_order_page(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    csrf, version = await page_form(client, f"{QUEUE}/{order.id}")
    await client.post(
        f"{QUEUE}/{order.id}/appeal",
        data={
            "csrf_token": csrf,
            "version": version,
            "category": "malicious",
            "reasons": "同一号码在一周内对本窗口打出 12 个差评，均无具体内容",
        },
    )
    await sign_in(client, world.users["office"])
    page = await client.get(f"{QUEUE}/{order.id}")
    assert 'name="register_rater"' in page.text
    appeal_id = (
        await db.execute(select(Appeal.id).where(Appeal.work_order_id == order.id))
    ).scalar_one()
    r = await client.post(
        f"/console/appeals/{appeal_id}/decision",
        data={
            "csrf_token": csrf_of(page.text),
            "decision": "reject",
            "note": " ",
            "next": f"{QUEUE}/{order.id}",
        },
    )
    assert r.status_code == 422 and "请填写复核意见" in alert(r.text) and "<h1>差评工单" in r.text
    r = await client.post(
        f"/console/appeals/{appeal_id}/decision",
        data={
            "csrf_token": csrf_of(page.text),
            "decision": "reject",
            "note": "证据不足",
            "next": f"{QUEUE}/{order.id}",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == f"{QUEUE}/{order.id}"
    assert await state_of(db, order) == "rectifying"


async def test_close_after_the_configured_failed_callbacks(client, db, world, bad):
    _ev, order = bad
    await sign_in(client, world.users["unit_a"])
    await act(client, order.id, "explain", note="该诉求无法律依据，已解释")
    page = await client.get(f"{QUEUE}/{order.id}")
    assert "已回访 0 次，满 3 次仍联系不上可办结" in page.text
    r = await act(client, order.id, "close_unreachable", note="联系不上")
    assert r.status_code == 422 and "回访未满 3 次" in alert(r.text)
    for _ in range(3):
        r = await act(client, order.id, "callback", method="sms", reached="no")
        assert r.status_code == 303
    r = await act(client, order.id, "callback", method="sms", reached="no", verdict="satisfied")
    assert r.status_code == 422 and "未联系上评价人时不能记录评价" in r.text
    r = await act(client, order.id, "close_unreachable", note="三次联系不上，办结")
    assert r.status_code == 303 and await state_of(db, order) == "closed"
    page = await client.get(f"{QUEUE}/{order.id}")
    assert page.text.count("未联系上评价人") == 3 and "多次联系不上，办结" in page.text


async def test_ids_past_the_integer_range_are_422_on_every_console_route(client, db, world):
    """0, negatives and numbers past BIGINT name no row: 422, never a 500."""
    await sign_in(client, world.users["admin"])
    csrf = csrf_of((await client.get(QUEUE)).text)
    for bad_id in ("0", "-1", str(2**63)):
        routes = [
            ("GET", f"{QUEUE}/{bad_id}"),
            ("POST", f"{QUEUE}/{bad_id}/actions"),
            ("POST", f"{QUEUE}/{bad_id}/attachments"),
            ("POST", f"{QUEUE}/{bad_id}/appeal"),
            ("POST", f"/console/appeals/{bad_id}/decision"),
            ("POST", f"/console/outbox/{bad_id}/retry"),
        ]
        for method, path in routes:
            data = (
                {"csrf_token": csrf, "action": "verify", "note": "属实"}
                if method == "POST"
                else None
            )
            r = await client.request(method, path, data=data)
            assert r.status_code == 422 and "请求参数不符合要求" in r.text, (path, r.status_code)


async def test_queue_page_query_count_does_not_grow_with_the_rows(client, db, world, engine):
    for _ in range(3):
        await rate_badly(client, db, world)
    await sign_in(client, world.users["office"])
    await client.get(QUEUE)  # warms what is cached per app
    with statements_sent(engine) as few:
        r = await client.get(QUEUE)
    assert len(order_ids(r.text)) == 3
    for _ in range(20):
        await rate_badly(client, db, world)
    with statements_sent(engine) as full:
        r = await client.get(QUEUE)
    assert len(order_ids(r.text)) == 20 and 'rel="next"' in r.text
    assert len(full) == len(few), (len(few), len(full))
