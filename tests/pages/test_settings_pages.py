"""The console's settings pages over HTTP: policies per region, the working-day calendar
(with the missing-year banner), and the delivery of notifications."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from sqlalchemy import select, update

from haochaping.accounts import service as account_service
from haochaping.core import outbox
from haochaping.core.outbox_models import OutboxMessage
from haochaping.policies.models import PolicySet
from tests.factories import PASSWORD, build_world
from tests.pages.helpers import alert, csrf_of, sign_in
from tests.workorders.conftest import rate_badly

SAMPLE_2027 = Path(__file__).parent.parent / "core" / "data" / "sample-calendar-2027.csv"
BANNER = "2027 年的工作日历缺失"


def effective(html: str, key: str) -> tuple[str, str]:
    """(value, source) of one row of the effective-values table."""
    m = re.search(
        rf'<tr data-key="{key}"><th scope="row">[^<]+</th><td>([^<]+)</td>'
        r'<td class="muted">([^<]+)</td>',
        html,
    )
    assert m, key
    return m.group(1), m.group(2)


async def publish(client, **fields):
    page = await client.get("/console/policies")
    data = {"csrf_token": csrf_of(page.text), **fields}
    return await client.post("/console/policies", data=data)


async def test_policy_page_shows_effective_values_and_their_source(client, world):
    await sign_in(client, world.users["unit_a"])
    r = await client.get("/console/policies")
    assert r.status_code == 200 and "<h1>政策参数</h1>" in r.text
    assert "上城区现行参数" in r.text  # the unit's own region first
    assert effective(r.text, "rectify_days") == ("15 个工作日", "全国默认")
    assert effective(r.text, "spot_check_rate") == ("5%", "全国默认")
    assert "发布新版本" not in r.text  # units read, offices publish
    r = await client.get("/console/policies", params={"region": "999999"})
    assert r.status_code == 404


async def test_publishing_a_version_inherits_down_and_clears_the_cache(client, db, world):
    _ev, before = await rate_badly(client, db, world)  # the policy of 330102 is now cached
    assert before.policy["verify_days"] == 1
    await sign_in(client, world.users["admin"])
    r = await publish(
        client,
        region_code="330100",
        verify_days="2",
        rectify_days="",
        spot_check_rate="10",
        default_enabled="on",
        default_level="5",
        note="杭州市好差评实施细则",
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/policies?region=330100"
    page = await client.get(r.headers["location"])
    assert "已发布 330100 的政策参数第 1 版" in page.text
    assert effective(page.text, "verify_days") == ("2 个工作日", "杭州市")
    assert effective(page.text, "spot_check_rate") == ("10%", "杭州市")
    assert effective(page.text, "default_rating")[0] == "办结 7 天内未评价的，记为“非常满意”"
    assert effective(page.text, "rectify_days") == ("15 个工作日", "全国默认")
    assert "杭州市 第 1 版" in page.text and "杭州市好差评实施细则" in page.text
    # The county below inherits it; a new bad rating there is opened under it at once.
    county = await client.get("/console/policies", params={"region": "330102"})
    assert effective(county.text, "verify_days") == ("2 个工作日", "杭州市")
    _ev, after = await rate_badly(client, db, world)
    assert after.policy["verify_days"] == 2 and after.policy["spot_check_rate"] == 0.1


async def test_invalid_policy_values_are_422_in_chinese(client, db, world):
    await sign_in(client, world.users["office"])
    r = await publish(client, region_code="330102", verify_days="abc", spot_check_rate="150")
    assert r.status_code == 422
    assert "核实期限（工作日）须为整数" in alert(r.text)
    assert "好评抽查回访比例须为 0 到 100 之间的数字" in alert(r.text)
    assert 'value="abc"' in r.text  # kept for correction
    r = await publish(client, region_code="330102", rectify_days="400")
    assert r.status_code == 422 and alert(r.text) == "整改期限（工作日）不能大于 365"
    r = await publish(client, region_code="330102", max_contact_attempts="0")
    assert r.status_code == 422 and alert(r.text) == "回访最多联系次数不能小于 1"
    r = await publish(client, region_code="330102")
    assert r.status_code == 422 and "请至少填写一项" in alert(r.text)
    r = await publish(client, region_code="330102", default_enabled="on", default_level="1")
    assert r.status_code == 422 and "默认评价等级不能小于 3" in alert(r.text)
    assert (await db.execute(select(PolicySet))).first() is None


async def test_only_offices_and_admins_publish(client, db, world):
    await sign_in(client, world.users["unit_a"])
    r = await publish(client, region_code="330102", verify_days="2")
    assert r.status_code == 403 and "当前角色无权执行此操作" in r.text
    page = await client.get("/console/policies")
    r = await client.post("/console/policies", data={"region_code": "330102", "verify_days": "2"})
    assert r.status_code == 403 and "请返回刷新页面后重试" in r.text
    assert page.status_code == 200
    assert (await db.execute(select(PolicySet))).first() is None


async def test_calendar_banner_status_and_import(client, db, world):
    await sign_in(client, world.users["admin"])
    r = await client.get("/console/evaluations")
    assert BANNER in r.text and 'href="/console/calendar">前往工作日历' in r.text
    page = await client.get("/console/calendar")
    assert page.status_code == 200 and "缺失：期限暂按周一至周五推算" in page.text
    assert "2026-10-01（周四）" in page.text and "国庆节" in page.text
    form = {"csrf_token": csrf_of(page.text), "year": "2027", "source": "国办发明电〔2026〕"}
    r = await client.post(
        "/console/calendar",
        data=form,
        files={"file": ("2027.csv", SAMPLE_2027.read_bytes(), "text/csv")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/calendar?year=2027"
    page = await client.get(r.headers["location"])
    assert "已导入 2027 年工作日历" in page.text and BANNER not in page.text
    assert "导入：国办发明电〔2026〕" in page.text and "2027-10-01（周五）" in page.text
    assert BANNER not in (await client.get("/console/work-orders")).text


async def test_a_bad_calendar_file_names_its_lines_and_imports_nothing(client, world):
    await sign_in(client, world.users["admin"])
    page = await client.get("/console/calendar")
    bad = "date,type,name\n2027-02-30,holiday,春节\n2027-10-01,vacation,国庆节\n".encode("gbk")
    r = await client.post(
        "/console/calendar",
        data={"csrf_token": csrf_of(page.text), "year": "2027"},
        files={"file": ("bad.csv", bad, "text/csv")},
    )
    assert r.status_code == 422
    assert "日历文件有 2 处错误，未导入任何数据" in r.text
    assert "第 2 行：日期“2027-02-30”无效" in r.text and "第 3 行：类型“vacation”无效" in r.text
    assert 'name="year" type="number"' in r.text and 'value="2027"' in r.text
    r = await client.post(
        "/console/calendar", data={"csrf_token": csrf_of(page.text), "year": "2027"}
    )
    assert r.status_code == 422 and "请选择要导入的 CSV 文件" in r.text
    assert BANNER in (await client.get("/console/calendar")).text
    assert (await client.get("/console/calendar", params={"year": "1800"})).status_code == 422


async def test_only_a_root_administrator_imports_the_calendar(client, db, world):
    """The calendar sets every region's deadlines: a city office may read it, not rewrite it."""
    for username, role, org in [("staff_w", "staff", "W-A1"), ("admin_hall", "admin", "HALL-A")]:
        await account_service.create_user(
            db=db, username=username, password=PASSWORD, role=role, org_code=org
        )
    await db.commit()
    people = [world.users[n] for n in ("office", "unit_a", "unit_b", "assessor")]
    for username in [*people, "staff_w", "admin_hall"]:
        await sign_in(client, username)
        page = await client.get("/console/calendar")
        assert page.status_code == 200 and "导入日历" not in page.text, username
        assert 'enctype="multipart/form-data"' not in page.text, username
        r = await client.post(
            "/console/calendar",
            data={"csrf_token": csrf_of(page.text), "year": "2027"},
            files={"file": ("2027.csv", SAMPLE_2027.read_bytes(), "text/csv")},
        )
        assert r.status_code == 403 and "此操作仅限根机构的系统管理员" in r.text, username
        calendar = (await client.get("/console/calendar")).text
        assert "缺失：期限暂按周一至周五推算" in calendar  # nothing imported
    await sign_in(client, world.users["admin"])  # the administrator of the root (OFFICE)
    page = await client.get("/console/calendar")
    assert "导入日历" in page.text
    r = await client.post(
        "/console/calendar",
        data={"csrf_token": csrf_of(page.text), "year": "2027"},
        files={"file": ("2027.csv", SAMPLE_2027.read_bytes(), "text/csv")},
    )
    assert r.status_code == 303


async def _dead(db, **values) -> int:
    channel = values.pop("channel")
    subject = "" if channel == "sms" else "【差评工单】#1"
    body = "【好差评】办理进度：http://testserver/p/SECRET-TOKEN" if channel == "sms" else "正文"
    await outbox.enqueue(
        db,
        kind="workorder_opened",
        channel=channel,
        recipient=values.pop("recipient"),
        subject=subject,
        body=body,
    )
    message = (
        (await db.execute(select(OutboxMessage).order_by(OutboxMessage.id.desc())))
        .scalars()
        .first()
    )
    await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)
        .values(status="dead", attempts=8, last_error="短信网关拒绝：号码无效", **values)
    )
    await db.commit()
    return message.id


async def test_outbox_lists_failures_masked_and_retries(client, db, world):
    # Other suites may leave given-up messages behind in a shared database: count from here.
    dead_before = (await outbox.status_counts(db))["dead"]
    sms = await _dead(db, channel="sms", recipient="13912345678")
    mail = await _dead(db, channel="email", recipient="unit-a@hall.example")
    await sign_in(client, world.users["unit_a"])
    assert (await client.get("/console/outbox")).status_code == 403
    await sign_in(client, world.users["admin"])
    page = await client.get("/console/outbox")
    assert page.status_code == 200 and "<h1>通知投递</h1>" in page.text
    assert "139****5678" in page.text and "13912345678" not in page.text
    assert "unit-a@hall.example" in page.text and "短信网关拒绝：号码无效" in page.text
    assert "已停止重试（已尝试 8 次）" in page.text
    # A text message carries the rater's progress link: it is never shown to staff.
    assert "SECRET-TOKEN" not in page.text and "短信正文含评价人的个人链接" in page.text
    dead = re.search(r'counts__num">(\d+)</span><span class="counts__label">已停止重试', page.text)
    assert dead and int(dead.group(1)) == dead_before + 2
    r = await client.post(f"/console/outbox/{sms}/retry", data={"csrf_token": "nope"})
    assert r.status_code == 403
    r = await client.post(f"/console/outbox/{sms}/retry", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/outbox"
    page = await client.get("/console/outbox")
    assert f"通知 #{sms} 已重新排队" in page.text and f'data-id="{sms}"' not in page.text
    assert f'data-id="{mail}"' in page.text
    row = (await db.execute(select(OutboxMessage).where(OutboxMessage.id == sms))).scalar_one()
    await db.refresh(row)
    assert row.status == "pending" and row.attempts == 0
    r = await client.post("/console/outbox/999999/retry", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 404 and "通知消息不存在" in alert(r.text)


async def test_offices_neither_see_nor_retry_other_regions_messages(client, db, world):
    """Messages carry no organisation to scope them by: the outbox is the root
    administrator's page, and offices of two cities see and retry none of them."""
    sms = await _dead(db, channel="sms", recipient="13912345678")
    other = await build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    await db.commit()
    for username in (world.users["office"], other.users["office"], other.users["unit_a"]):
        await sign_in(client, username)
        home = await client.get("/console/evaluations")
        assert 'href="/console/outbox"' not in home.text, username
        page = await client.get("/console/outbox")
        assert page.status_code == 403 and "13912345678" not in page.text, username
        assert "139****5678" not in page.text, username
        r = await client.post(
            f"/console/outbox/{sms}/retry", data={"csrf_token": csrf_of(home.text)}
        )
        assert r.status_code == 403, username
    row = (await db.execute(select(OutboxMessage).where(OutboxMessage.id == sms))).scalar_one()
    await db.refresh(row)
    assert (row.status, row.attempts) == ("dead", 8)
    await sign_in(client, world.users["admin"])
    home = await client.get("/console/evaluations")
    assert 'href="/console/outbox"' in home.text
    r = await client.post(f"/console/outbox/{sms}/retry", data={"csrf_token": csrf_of(home.text)})
    assert r.status_code == 303
