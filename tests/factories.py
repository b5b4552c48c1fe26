"""Factories: request payloads (factory_boy) and a small world of reference data."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import factory
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts import service as account_service
from haochaping.cases import service as case_service
from haochaping.cases.schemas import CaseUpsert
from haochaping.core.auth import Principal
from haochaping.db.session import engine_keys
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service

ALL_CHANNELS = ["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms", "review", "inspection"]


def iso(dt: datetime) -> str:
    return dt.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


class ApplicantFactory(factory.DictFactory):
    type = "person"
    name = "张三"
    cert_type = "id_card"
    cert_no = factory.Sequence(lambda n: f"330102199001{n % 100:02d}{n % 10000:04d}")
    phone = factory.Sequence(lambda n: f"138{n % 100000000:08d}")


class CasePayloadFactory(factory.DictFactory):
    """A completed offline case served yesterday at window W_A1."""

    case_no = factory.LazyFunction(lambda: f"HZ-{uuid.uuid4().hex[:16]}")
    item_code = "ITEM-A1"
    org_code = "HALL-A"
    window_code = "W-A1"
    staff_no = "S-A1"
    mode = "offline"
    case_type = "immediate"
    applicant = factory.SubFactory(ApplicantFactory)
    status = "completed"
    received_at = factory.LazyFunction(lambda: iso(now() - timedelta(days=1, hours=1)))
    accepted_at = factory.LazyFunction(lambda: iso(now() - timedelta(days=1)))
    completed_at = factory.LazyFunction(lambda: iso(now() - timedelta(hours=20)))


class EvaluationPayloadFactory(factory.DictFactory):
    """A 非常满意 rating at the window pad."""

    stage = "whole"
    channel = "pad"
    level = 5
    reasons = factory.LazyFunction(lambda: ["517"])
    comment = "办事很快"


@dataclass
class World:
    """Reference data and credentials of one test province."""

    keys: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # username -> password
    suffix: str = ""

    def code(self, base: str) -> str:
        return f"{base}{self.suffix}"


ADMIN = Principal(kind="user", id=0, name="factory", org_id=0, org_path="/", role="admin")
# An administrator over the test world only (its office and below): the figures it reads leave
# out the suffixed live world that browser tests commit beside it.
WORLD_ADMIN = Principal(
    kind="user", id=0, name="factory", org_id=0, org_path="/OFFICE/", role="admin"
)
PASSWORD = "pass-word-123"


async def build_world(db: AsyncSession, suffix: str = "") -> World:
    """Province 330000 → city 330100 → county 330102; an office with two halls and a
    department; windows, staff, items; API keys and users of every role."""
    w = World(suffix=suffix)
    s = suffix
    regions = [
        ("330000", "浙江省", None),
        ("330100", "杭州市", "330000"),
        ("330102", "上城区", "330100"),
    ]
    for code, name, parent in regions:
        await org_service.create_region(
            db=db,
            actor=ADMIN,
            data=org_schemas.RegionCreate(code=code, name=name, parent_code=parent),
        )
    orgs = [
        (f"OFFICE{s}", "省政务服务管理办公室", "department", None, "330000"),
        (f"HALL-A{s}", "上城区市民之家", "hall", f"OFFICE{s}", "330102"),
        (f"W-A1{s}", "综合受理1号窗口", "window", f"HALL-A{s}", "330102"),
        (f"W-A2{s}", "综合受理2号窗口", "window", f"HALL-A{s}", "330102"),
        (f"HALL-B{s}", "杭州市民中心", "hall", f"OFFICE{s}", "330100"),
        (f"W-B1{s}", "不动产登记窗口", "window", f"HALL-B{s}", "330100"),
        (f"DEPT-M{s}", "市场监督管理局", "department", f"OFFICE{s}", "330100"),
    ]
    for code, name, kind, parent, region in orgs:
        await org_service.create_org(
            db=db,
            actor=ADMIN,
            data=org_schemas.OrgCreate(
                code=code, name=name, kind=kind, parent_code=parent, region_code=region
            ),
        )
    for staff_no, name, org in [(f"S-A1{s}", "李娜", f"W-A1{s}"), (f"S-B1{s}", "王强", f"W-B1{s}")]:
        await org_service.create_staff(
            db=db,
            actor=ADMIN,
            data=org_schemas.StaffCreate(staff_no=staff_no, name=name, org_code=org),
        )
    for code, name, org in [
        (f"ITEM-A1{s}", "营业执照核发", f"HALL-A{s}"),
        (f"ITEM-B1{s}", "不动产登记", f"HALL-B{s}"),
    ]:
        await org_service.create_item(
            db=db, actor=ADMIN, data=org_schemas.ItemCreate(code=code, name=name, org_code=org)
        )
    for name, org, channels in [
        ("all", f"OFFICE{s}", ALL_CHANNELS),
        ("hall_a_pad", f"HALL-A{s}", ["pad", "qrcode"]),
        ("hall_b", f"HALL-B{s}", ALL_CHANNELS),
    ]:
        _, key = await account_service.create_client(
            db=db, name=f"{name}{s}", org_code=org, channels=channels
        )
        w.keys[name] = key
    for username, role, org in [
        ("admin", "admin", f"OFFICE{s}"),
        ("office", "office", f"OFFICE{s}"),
        ("unit_a", "unit", f"HALL-A{s}"),
        ("unit_b", "unit", f"HALL-B{s}"),
        ("assessor", "assessor", f"OFFICE{s}"),
    ]:
        await account_service.create_user(
            db=db, username=f"{username}{s}", password=PASSWORD, role=role, org_code=org
        )
        w.users[username] = f"{username}{s}"
    return w


async def make_case(db: AsyncSession, world: World, **overrides) -> dict:
    """A case stored through the service, as a business system would push it."""
    payload = CasePayloadFactory(**overrides)
    s = world.suffix
    for k in ("item_code", "org_code", "window_code", "staff_no"):
        if k not in overrides and payload.get(k):
            payload[k] = payload[k] + s
    await case_service.upsert_case(
        db=db, actor=ADMIN, data=CaseUpsert.model_validate(payload), keys=engine_keys(db)
    )
    await db.commit()
    return payload


# --- reference-data payloads (added for the API suite; existing factories unchanged) ------


class RegionPayloadFactory(factory.DictFactory):
    """A village-level (12-digit) region under the county 330102."""

    code = factory.Sequence(lambda n: f"330102{n % 1000:03d}{n // 1000 % 1000:03d}")
    name = factory.Sequence(lambda n: f"测试社区{n}")
    parent_code = None


class OrgPayloadFactory(factory.DictFactory):
    """A window in hall HALL-A."""

    code = factory.LazyFunction(lambda: f"W-{uuid.uuid4().hex[:10]}")
    name = "新设窗口"
    kind = "window"
    parent_code = "HALL-A"
    region_code = "330102"


class StaffPayloadFactory(factory.DictFactory):
    staff_no = factory.LazyFunction(lambda: f"S-{uuid.uuid4().hex[:10]}")
    name = "赵敏"
    org_code = "W-A1"


class ItemPayloadFactory(factory.DictFactory):
    code = factory.LazyFunction(lambda: f"IT-{uuid.uuid4().hex[:12]}")
    name = "食品经营许可"
    org_code = "HALL-A"
    basic_code = None


# --- assertions shared by the API tests ------------------------------------------------

INTAKE_TABLES = (
    "region",
    "org",
    "staff",
    "item",
    "service_case",
    "evaluation",
    "invitation",
    "idempotency_record",
    "api_client",
    "app_user",
    "reason_tag",
    "work_order",
    "inspection_visit",
    "inspection_photo",
    "inspection_checklist",
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The refusal has the contract's error body: stable code, Chinese message, details list."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    if code is not None:
        assert err["code"] == code, err
    assert isinstance(err["details"], list)
    assert _CJK.search(err["message"]), f"message is not for people: {err['message']!r}"
    return err


async def table_counts(db: AsyncSession) -> dict[str, int]:
    """Row counts of the intake tables: compared before and after a refused request."""
    from haochaping.models import metadata

    counts = {}
    for name in INTAKE_TABLES:
        counts[name] = (
            await db.execute(select(func.count()).select_from(metadata.tables[name]))
        ).scalar_one()
    return counts


def key_headers(world: World, name: str = "all") -> dict[str, str]:
    return {"X-Api-Key": world.keys[name]}


async def bearer_headers(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign in through the OAuth2 password form and return the Authorization header."""
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


STAGES_ACCEPT_COMPLETE = [{"code": "whole"}, {"code": "accept"}, {"code": "complete"}]


async def publish_policy(client, world: World, values: dict, region_code: str = "330102") -> dict:
    """A policy version for a region, published by the admin through the API (which also
    refreshes the app's policy cache)."""
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies", headers=headers, json={"region_code": region_code, "values": values}
    )
    assert r.status_code == 201, r.text
    return r.json()


@contextmanager
def statements_sent(engine) -> Iterator[list[str]]:
    """The SQL statements the engine sends to the database inside the block."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


# --- ratings and work orders at fixed times, for hand-computed statistics ------------------


async def add_rating(
    db: AsyncSession,
    world: World,
    *,
    level: int,
    at: datetime,
    org: str = "HALL-A",
    window: str | None = "W-A1",
    staff: str | None = "S-A1",
    item: str | None = "ITEM-A1",
    channel: str = "pad",
    reasons: list[str] | None = None,
    is_default: bool = False,
    eval_count: int = 1,
    comment: str | None = None,
    **columns,
):
    """One stored rating received at `at` (set-based fixtures, as a bench loader writes them;
    intake's own rules are tested in tests/evaluations); `columns` sets others (the rater's)."""
    from haochaping.evaluations.models import Evaluation
    from haochaping.orgs.models import Item, Org, Staff

    s = world.suffix
    org_row = (await db.execute(select(Org).where(Org.code == org + s))).scalar_one()
    window_id = (
        (await db.execute(select(Org.id).where(Org.code == window + s))).scalar_one()
        if window
        else None
    )
    staff_id = (
        (await db.execute(select(Staff.id).where(Staff.staff_no == staff + s))).scalar_one()
        if staff
        else None
    )
    item_id = (
        (await db.execute(select(Item.id).where(Item.code == item + s))).scalar_one()
        if item
        else None
    )
    row = Evaluation(
        channel=channel,
        level=level,
        reasons=reasons if reasons is not None else {1: ["108"], 2: ["207"]}.get(level, []),
        tagset_version="national-2020",
        org_id=org_row.id,
        window_id=window_id,
        staff_id=staff_id,
        item_id=item_id,
        region_code=org_row.region_code,
        is_default=is_default,
        eval_count=eval_count,
        comment=comment,
        evaluated_at=at,
        received_at=at,
        **columns,
    )
    db.add(row)
    await db.flush()
    return row


async def add_work_order(db: AsyncSession, rating, **fields):
    """The work order of a bad rating, with the timestamps a test needs."""
    from haochaping.workorders.models import WorkOrder

    order = WorkOrder(
        evaluation_id=rating.id,
        org_id=rating.org_id,
        region_code=rating.region_code,
        policy={},
        opened_at=rating.received_at,
        **fields,
    )
    db.add(order)
    await db.flush()
    return order


# Comments of the text analysis (topics): routine complaints, and a planted matter (预约号) with
# a phone and an ID-card number in some of its comments.
TOPIC_PHONE = "13812345678"
TOPIC_ID_NO = "330102199001014021"
TOPIC_ROUTINE = ["排队时间太长", "窗口人员态度差", "材料要求重复提交", "叫号系统卡顿"]
TOPIC_PLANTED = [
    "预约号总是抢不到",
    f"网上的预约号一放出就没了，电话{TOPIC_PHONE}",
    "预约号太少，约不上",
    f"天天蹲预约号，身份证{TOPIC_ID_NO}",
    "预约号被黄牛抢光",
]


async def add_weeks_of_comments(
    db,
    world,
    item: str,
    weekly: list[int],
    *,
    planted: list[int] | None = None,
    now: datetime | None = None,
):
    """Weeks of ratings of one item, oldest first: per week 20 good ones, `weekly[w]`
    routine complaints, and `planted[w]` complaints about booking numbers (预约号)."""
    now = now or datetime.now(UTC)
    for w in range(len(weekly)):
        start = now - timedelta(days=7 * (len(weekly) - w) - 1)
        for n in range(20):
            await add_rating(
                db, world, level=5, at=start + timedelta(hours=n), item=item, comment="办事很快"
            )
        for n in range(weekly[w]):
            await add_rating(
                db,
                world,
                level=2 if n % 2 else 3,
                at=start + timedelta(days=1, hours=n),
                item=item,
                comment=TOPIC_ROUTINE[(w + n) % len(TOPIC_ROUTINE)],
            )
        for n in range(planted[w] if planted else 0):
            await add_rating(
                db,
                world,
                level=1,
                at=start + timedelta(days=2, hours=n),
                item=item,
                comment=TOPIC_PLANTED[n % len(TOPIC_PLANTED)],
            )
    await db.flush()
