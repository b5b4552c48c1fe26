"""The rater's progress page behind the progress link: public steps, the unit's answer, the
verdict and the one follow-up rating; the landing page."""

from __future__ import annotations

import re

from sqlalchemy import select

from haochaping.db.crypto import DataKeys
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder
from tests.factories import bearer_headers, make_case
from tests.portal.conftest import invite

WO = "/api/v1/work-orders"


async def rate_bad_by_link(client, link: str) -> str:
    """Rate 不满意 through the rating link; returns the progress path from the thank-you page."""
    r = await client.post(
        link, data={"level": "2", "reasons": ["213"], "comment": "等了两个小时，电话13812345678"}
    )
    assert r.status_code == 303, r.text
    thanks = await client.get(r.headers["location"])
    assert thanks.status_code == 200 and "查看办理进度" in thanks.text
    match = re.search(r'href="(/p/[^"]+)"', thanks.text)
    assert match
    return match.group(1)


async def order_of(db, progress: str, settings) -> WorkOrder:
    from haochaping.workorders.context import read_progress_token

    evaluation_id = read_progress_token(settings, progress.removeprefix("/p/"))
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == evaluation_id))
    ).scalar_one()
    await db.refresh(order)
    return order


async def act(client, headers, order_id, **body):
    r = await client.post(f"{WO}/{order_id}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_good_rating_has_no_progress_link(client, link):
    r = await client.post(link, data={"level": "5", "reasons": ["517"]}, follow_redirects=True)
    assert r.status_code == 200 and "谢谢您的评价" in r.text
    assert "/p/" not in r.text and "您现在可以关闭此页面" in r.text


async def test_a_forged_or_unknown_progress_link_is_404(client, settings):
    r = await client.get("/p/not-a-token")
    assert r.status_code == 404 and "进度链接无效" in r.text and "12345" in r.text
    # Genuinely signed, but for a rating without a work order.
    ctx = LoopContext(
        settings=settings,
        deadlines=None,  # type: ignore[arg-type]
        keys=DataKeys.from_settings(settings),
    )
    r = await client.get(f"/p/{ctx.progress_token(987654)}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


async def test_progress_shows_public_steps_and_the_units_answer_only(
    client, db, world, link, settings
):
    progress = await rate_bad_by_link(client, link)
    page = await client.get(progress)
    assert page.status_code == 200
    assert "您的评价办理进度" in page.text and "已受理，正在核实" in page.text
    assert "营业执照核发" in page.text and "您的评价</dt><dd>不满意" in page.text
    assert "您对整改结果满意吗" not in page.text and 'id="followup-heading"' not in page.text

    order = await order_of(db, progress, settings)
    unit = await bearer_headers(client, world.users["unit_a"])
    await act(client, unit, order.id, action="verify", note="内部：窗口人员李娜业务不熟，已约谈")
    await act(
        client,
        unit,
        order.id,
        action="report_rectified",
        note="已对窗口人员开展业务培训，材料清单已公开。如有疑问请致电13900001111",
    )
    page = await client.get(progress)
    html = page.text
    for step in ("已受理，正在核实", "正在整改", "整改完成，待回访"):
        assert step in html
    assert "整改情况" in html and "已对窗口人员开展业务培训" in html
    assert "139****1111" in html and "13900001111" not in html
    # Internal notes, staff and handlers' names never reach the rater.
    assert "约谈" not in html and "李娜" not in html and world.users["unit_a"] not in html
    assert "13812345678" not in html
    # The verdict first; the follow-up rating is offered too, folded until wanted.
    assert "您对整改结果满意吗" in html and "追加评价（选填）</span></summary>" in html
    order = await order_of(db, progress, settings)
    assert f'name="version" value="{order.version}"' in html


async def test_dissatisfied_verdict_goes_to_supervision(client, db, world, link, settings):
    progress = await rate_bad_by_link(client, link)
    order = await order_of(db, progress, settings)
    unit = await bearer_headers(client, world.users["unit_a"])
    await act(client, unit, order.id, action="explain", note="该诉求无法律依据，已向您解释")
    page = await client.get(progress)
    assert "解释说明" in page.text and "已向您解释说明" in page.text
    r = await client.post(f"{progress}/verdict", data={"note": "还是不满意"})
    assert r.status_code == 422 and "请选择您对整改结果的意见" in r.text
    assert "还是不满意" in r.text
    order = await order_of(db, progress, settings)
    r = await client.post(
        f"{progress}/verdict",
        data={"verdict": "dissatisfied", "note": "还是不满意", "version": str(order.version)},
    )
    assert r.status_code == 303 and r.headers["location"] == f"{progress}?done=verdict"
    page = await client.get(r.headers["location"])
    assert "您的意见已提交" in page.text and "您的回访意见：不满意" in page.text
    assert "管理机构督办中" in page.text and "您对整改结果满意吗" not in page.text
    order = await order_of(db, progress, settings)
    assert order.state == "supervising"
    r = await client.post(f"{progress}/verdict", data={"verdict": "satisfied"})
    assert r.status_code == 409 and "目前无需您评价整改结果" in r.text
    # The office sees the citizen's verdict in the work order's trail.
    office = await bearer_headers(client, world.users["office"])
    detail = (await client.get(f"{WO}/{order.id}", headers=office)).json()
    assert detail["events"][-1]["actor_kind"] == "citizen"
    assert detail["events"][-1]["data"]["method"] == "link"


async def test_a_stale_verdict_is_refused(client, db, world, link, settings):
    progress = await rate_bad_by_link(client, link)
    order = await order_of(db, progress, settings)
    unit = await bearer_headers(client, world.users["unit_a"])
    await act(client, unit, order.id, action="explain", note="已解释")
    seen = (await order_of(db, progress, settings)).version
    await act(client, unit, order.id, action="callback", method="phone", reached=False)
    r = await client.post(
        f"{progress}/verdict", data={"verdict": "satisfied", "version": str(seen)}
    )
    assert r.status_code == 409 and "办理进度已更新" in r.text


async def test_satisfied_verdict_then_one_follow_up(client, db, world, link, settings):
    progress = await rate_bad_by_link(client, link)
    order = await order_of(db, progress, settings)
    unit = await bearer_headers(client, world.users["unit_a"])
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    r = await client.post(f"{progress}/verdict", data={"verdict": "basic"})
    assert r.status_code == 303
    page = await client.get(progress)
    assert "已办结" in page.text and "您的回访意见：基本满意" in page.text
    assert "追加评价</h2>" in page.text  # still open after the verdict

    r = await client.post(f"{progress}/follow-up", data={"comment": "好多了"})
    assert r.status_code == 422 and "请选择您对整改后服务的满意程度" in r.text
    assert "好多了" in r.text
    r = await client.post(f"{progress}/follow-up", data={"level": "1"})
    assert r.status_code == 422 and 'id="followup-error"' in r.text
    assert "差评须至少选择一项原因或填写评价内容" in r.text
    assert re.search(r'id="level-1" value="1" required\s+checked', r.text)
    for reasons in (["a b"], ["x" * 17], ["999"], ["213"]):  # malformed, unknown, wrong level
        r = await client.post(f"{progress}/follow-up", data={"level": "5", "reasons": reasons})
        assert r.status_code == 422 and 'id="followup-error"' in r.text, reasons
    r = await client.post(
        f"{progress}/follow-up",
        data={"level": "5", "reasons": ["517"], "comment": "整改后办得很快"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"{progress}?done=followup"
    page = await client.get(r.headers["location"])
    assert "您的追加评价已提交" in page.text and "您追加了一次评价" in page.text
    assert "您已追加过评价（非常满意），每个差评只能追评一次" in page.text
    assert "追加评价</h2>" not in page.text
    r = await client.post(f"{progress}/follow-up", data={"level": "4"})
    assert r.status_code == 409 and "已追加过评价" in r.text
    first = await db.get(Evaluation, order.evaluation_id)
    rows = (
        await db.execute(
            select(Evaluation.eval_count, Evaluation.level, Evaluation.user_agent)
            .where(Evaluation.case_id == first.case_id)
            .order_by(Evaluation.id)
        )
    ).all()
    assert [tuple(r) for r in rows] == [(1, 2, rows[0][2]), (2, 5, "link")]


async def test_a_bad_follow_up_reopens_supervision(client, db, world, link, settings):
    progress = await rate_bad_by_link(client, link)
    order = await order_of(db, progress, settings)
    unit = await bearer_headers(client, world.users["unit_a"])
    await act(client, unit, order.id, action="verify", note="属实")
    await act(client, unit, order.id, action="report_rectified", note="已整改")
    r = await client.post(
        f"{progress}/follow-up", data={"level": "1", "reasons": ["113"], "comment": "根本没有改"}
    )
    assert r.status_code == 303, r.text
    page = await client.get(progress)
    assert "管理机构督办中" in page.text and "您对整改结果满意吗" not in page.text
    assert (await order_of(db, progress, settings)).state == "supervising"


async def test_follow_up_is_refused_before_the_unit_answers(client, db, world, link, settings):
    progress = await rate_bad_by_link(client, link)
    r = await client.post(f"{progress}/follow-up", data={"level": "4", "reasons": ["413"]})
    assert r.status_code == 422 and "整改完成后才能追加评价" in r.text


async def test_progress_page_for_a_rating_posted_by_a_channel(client, db, world, settings):
    case = await make_case(db, world)
    link = await invite(client, world, case["case_no"])
    progress = await rate_bad_by_link(client, link)
    assert (await client.get(progress + "?done=nonsense")).status_code == 200


async def test_landing_page(client):
    r = await client.get("/")
    assert r.status_code == 200 and '<html lang="zh-CN"' in r.text
    assert "政务服务“好差评”" in r.text and 'href="/login"' in r.text
    # The public ledger page is mounted in this app, so the landing page links it.
    assert 'href="/ledger"' in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
