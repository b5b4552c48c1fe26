"""Load the demo province (示范省) into a database: `haochaping demo` and `serve --demo`.

Reference data and a year of cases and ratings are generated in memory (`generate`) and
written with Core bulk inserts (executemany over chunks of rows) with ids assigned here, not
through the ORM (on SQLite straight to the driver, see `BulkWriter`). Everything that
follows a rating goes through the product's own services: accounts and the API client
(`accounts.service`), the closed loop of every bad rating lived through on a simulated clock
(`workflow`), spot checks, the fake-rating detectors and a review (`upkeep`), a few planted
patterns of abuse for the detectors to find (`plants`). The load is one transaction, and it
is idempotent: the root org's code marks the demo, and a second run finds it and changes
nothing. After it commits, `load` and `load_if_empty` seal the ratings into the ledger and
deliver the outbox, as the worker would.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from haochaping.accounts import service as account_service
from haochaping.accounts.choices import Role
from haochaping.accounts.models import ApiClient, User
from haochaping.analytics import snapshots
from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.cases.models import Case
from haochaping.config import Settings
from haochaping.core.auth import Principal
from haochaping.core.calendar import load_calendar
from haochaping.core.outbox_models import OutboxMessage
from haochaping.core.timeutil import utcnow
from haochaping.db.crypto import IdentityKind
from haochaping.db.session import engine_keys, make_engine, make_sessionmaker
from haochaping.db.types import dialect_keys
from haochaping.demo import generate, live, plants, topics_plant, upkeep, workflow
from haochaping.evaluations import partitions, tags
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding
from haochaping.integrity.detectors import check_labels
from haochaping.integrity.models import IntegrityFlag
from haochaping.ledger.models import LedgerBlock
from haochaping.orgs.models import Item, Org, Region, Staff
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders.context import Deadlines, LoopContext
from haochaping.workorders.models import SpotCheck, WorkOrder
from haochaping.workorders.states import State

CHUNK = 5000
# The load's page cache on SQLite (KiB), room for the whole default demo (~300 MB): at 128 MB
# the indexes of one big transaction spilled to the WAL and back (docs/benchmarks.md).
SQLITE_CACHE_KIB = 524288
CLIENT_NAME = "示范省演示客户端（全渠道）"


@dataclass(frozen=True)
class DemoAccount:
    """A demo account: where it sits and what it is for (printed by the loader)."""

    username: str
    password: str
    role: Role
    where: str  # root | office | hall | hall2 | dept | window
    purpose: str
    email: str | None = None


# Passwords are published: for trying the demo only (the demo is refused in production).
DEMO_USERS = [
    DemoAccount(
        "admin", "admin12345", Role.ADMIN, "root", "系统管理员：机构、人员、API 客户端、日历与通知"
    ),
    DemoAccount(
        "province",
        "province12345",
        Role.OFFICE,
        "root",
        "省级管理机构：全省督办、申诉复核、疑似刷评复核、恶意评价人员信息库",
    ),
    DemoAccount(
        "office",
        "office12345",
        Role.OFFICE,
        "office",
        "市级管理机构：本市差评督办、申诉复核；代本市无账号的单位办理工单",
    ),
    DemoAccount(
        "unit", "unit12345", Role.UNIT, "hall", "大厅负责人：本大厅差评核实、整改、回访、申诉"
    ),
    DemoAccount(
        "unit2", "unit12345", Role.UNIT, "hall2", "差评较多的大厅：超期、督办、问责的工单都在这里"
    ),
    DemoAccount(
        "dept",
        "dept12345",
        Role.UNIT,
        "dept",
        "部门经办人：接收转办的工单；邮箱少写了域名，发给它的通知投递失败（死信，可重试）",
        email="dept-handler",
    ),
    DemoAccount(
        "staff", "staff12345", Role.STAFF, "window", "窗口人员：本窗口的评价、发送评价邀请"
    ),
    DemoAccount("assessor", "assessor12345", Role.ASSESSOR, "root", "监督查评人员：录入监督查评"),
]

REGION: Table = Region.__table__  # type: ignore[assignment]
ORG: Table = Org.__table__  # type: ignore[assignment]
STAFF: Table = Staff.__table__  # type: ignore[assignment]
ITEM: Table = Item.__table__  # type: ignore[assignment]
CASE: Table = Case.__table__  # type: ignore[assignment]
EVALUATION: Table = Evaluation.__table__  # type: ignore[assignment]
# How far back the demo's ratings go: a year of cases (generate_activity), with room.
DEMO_HISTORY = timedelta(days=400)

Progress = Callable[[str, int, int], None]


@dataclass
class DemoUser:
    """A demo account as printed: its password is only shown when it was created now."""

    username: str
    password: str
    role: str
    org_name: str
    created: bool
    purpose: str = ""


@dataclass
class Summary:
    """What a demo load did (or found), printable for the command line."""

    already_loaded: bool
    root_code: str = generate.ROOT_CODE
    regions: Counter[int] = field(default_factory=Counter)
    orgs: Counter[str] = field(default_factory=Counter)
    staff: int = 0
    items: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    levels: Counter[int] = field(default_factory=Counter)
    users: list[DemoUser] = field(default_factory=list)
    client_name: str = CLIENT_NAME
    client_key: str | None = None
    hall_code: str = ""
    orders: Counter[str] = field(default_factory=Counter)
    overdue: int = 0
    appeals: Counter[str] = field(default_factory=Counter)
    registered: int = 0
    held: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    spot_checks: Counter[str] = field(default_factory=Counter)
    planted: dict[str, int] = field(default_factory=dict)
    showcase: int = 0
    outbox: Counter[str] = field(default_factory=Counter)
    newest: live.Live = field(default_factory=live.Live)
    blocks: int = 0
    sealed: int = 0
    seconds: float = 0.0

    @property
    def ratings(self) -> int:
        return sum(self.levels.values())

    @property
    def extra_cases(self) -> int:
        return sum(self.planted.values()) + self.showcase + self.newest.cases + self.newest.reported

    @property
    def good_share(self) -> float:
        return (
            (self.ratings - self.levels[1] - self.levels[2]) / self.ratings if self.ratings else 0.0
        )

    def __str__(self) -> str:
        if self.already_loaded:
            return (
                f"示范省演示数据已存在（根机构 {self.root_code}），未做任何改动。\n"
                "演示账号：admin / admin12345（系统管理员），其余账号见首次加载时的输出；"
                "API 密钥只在首次加载时显示。"
            )
        r, o = self.regions, self.orgs
        labels = check_labels()
        states = "，".join(
            f"{s.label} {self.orders[s.value]:,}" for s in State if self.orders[s.value]
        )
        lines = [
            f"示范省演示数据已加载，用时 {self.seconds:.1f} 秒。",
            f"  行政区划：省 {r[1]}，市 {r[2]}，县（区） {r[3]}，乡镇（街道） {r[4]}",
            f"  机构：部门 {o['department']}，大厅 {o['hall']}，窗口 {o['window']}；"
            f"工作人员 {self.staff}；服务事项 {self.items}",
            f"  办件 {sum(self.cases.values()):,}"
            f"（含演示工单、预置异常评价、今日评价器叫号和下级平台报送的 {self.extra_cases} 件）："
            f"已办结 {self.cases['completed']:,}，"
            f"办理中 {self.cases['accepted']:,}，已收件 {self.cases['received']:,}，"
            f"不予受理 {self.cases['rejected']:,}",
            f"  评价 {self.ratings:,}：好评率 {self.good_share:.2%}，"
            f"差评 {self.levels[1] + self.levels[2]:,}（不满意 {self.levels[2]:,}，"
            f"非常不满意 {self.levels[1]:,}）",
            "  渠道：" + "，".join(f"{c} {self.channels[c]:,}" for c in Channel),
            f"  差评工单 {sum(self.orders.values()):,}：{states}；"
            f"其中超期转督办过 {self.overdue:,}",
            f"  申诉 {sum(self.appeals.values()):,}：待复核 {self.appeals['pending']}，"
            f"成立 {self.appeals['upheld']}，驳回 {self.appeals['rejected']}；"
            f"恶意评价人员信息库 {self.registered} 条",
            f"  疑似刷评标记 {sum(self.flags.values())}（待复核 {self.flags['open']}，"
            f"已判定无效 {self.flags['invalidated']}），待复核评价 {self.held}；"
            "预置的异常评价："
            + "，".join(f"{labels.get(k, k)} {n}" for k, n in self.planted.items()),
            f"  演示工单 {self.showcase} 件：近三周内，每种工单状态至少一件",
            f"  抽查回访 {sum(self.spot_checks.values()):,}：已回访 {self.spot_checks['done']}，"
            f"待回访 {self.spot_checks['pending']:,}",
            f"  通知：已发送 {self.outbox['sent']:,}，待重试 {self.outbox['failed']}，"
            f"投递失败（死信） {self.outbox['dead']}，待发送 {self.outbox['pending']}",
            f"  评价器 {self.newest.pads['paired']} 台已配对（停用 {self.newest.pads['revoked']}，"
            f"待配对 {self.newest.pads['pending']}），今日叫号 {self.newest.services} 次、"
            f"评价器评价 {self.newest.pad_ratings}；窗口 {self.newest.serving_window} 正在服务",
            f"  综合点评（/c/机构代码）今日 {self.newest.comments} 条："
            + "，".join(self.newest.comment_orgs),
            f"  监督查评：近四周实地查评 {self.newest.visits} 次（照片 {self.newest.photos} 张），"
            f"本市检查项目清单（区划 {self.newest.checklist_region}）",
            f"  上报：本省未配置上级平台；下级平台“{self.newest.child}”"
            f"报送评价 {self.newest.reported} 条（近四周）",
            f"  存证账本：{self.blocks} 个区块，已封存评价 {self.sealed:,}",
            f"  根机构代码：{self.root_code}；示范大厅代码：{self.hall_code}",
            "演示账号（仅供体验，正式环境请删除或改密）：",
        ]
        for u in self.users:
            pw = u.password if u.created else "（账号已存在，未改动）"
            lines.append(f"  {u.username:<9} {pw:<14} {Role(u.role).label}，{u.org_name}")
            if u.purpose:
                lines.append(f"            {u.purpose}")
        if self.client_key:
            lines += [
                f"演示 API 客户端“{self.client_name}”（全部渠道），密钥只显示这一次：",
                f"  {self.client_key}",
            ]
        else:
            lines.append(f"演示 API 客户端“{self.client_name}”已存在，未改动。")
        return "\n".join(lines)


async def demo_present(db: AsyncSession) -> bool:
    """True when the demo province is already in the database."""
    found = await db.execute(select(Org.id).where(Org.code == generate.ROOT_CODE))
    return found.first() is not None


async def load_into(
    db: AsyncSession,
    *,
    cases: int = 200_000,
    seed: int = 2026,
    now: datetime | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Write the demo province into the session's transaction (the caller commits)."""
    started = time.perf_counter()
    if await demo_present(db):
        return Summary(already_loaded=True)
    settings = settings or Settings()
    conn = await db.connection()
    now = now or utcnow()
    rng = random.Random(seed)
    await tags.seed(db)
    # PostgreSQL: a partition for each month of the demo's year of ratings (else DEFAULT).
    await partitions.ensure_ahead(
        db, today=partitions.month_of(now), since=partitions.month_of(now - DEMO_HISTORY)
    )
    writer = BulkWriter(conn)

    ref = generate.build_reference(
        rng,
        now=now,
        org_id=await _next_id(conn, ORG),
        staff_id=await _next_id(conn, STAFF),
        item_id=await _next_id(conn, ITEM),
    )
    await writer.insert(REGION, ref.regions)
    await writer.insert(ORG, ref.orgs)
    await writer.insert(STAFF, ref.staff)
    await writer.insert(ITEM, ref.items)
    await _sync_sequences(conn, (ORG, STAFF, ITEM))

    summary = Summary(
        already_loaded=False,
        staff=len(ref.staff),
        items=len(ref.items),
        hall_code=ref.accounts.hall_code,
    )
    summary.regions.update(r["tier"] for r in ref.regions)
    summary.orgs.update(o["kind"] for o in ref.orgs)
    client_id = await _client(db, summary)

    stats = generate.ActivityStats()
    case_base = await _next_id(conn, CASE)
    written = 0
    for case_rows, eval_rows in generate.generate_activity(
        rng,
        ref,
        now=now,
        cases=cases,
        case_id=case_base,
        client_id=client_id,
        stats=stats,
        chunk=CHUNK,
    ):
        await writer.insert(CASE, case_rows)
        await writer.insert(EVALUATION, eval_rows)
        written += len(case_rows)
        if progress:
            progress("办件与评价", written, cases)
    await writer.insert(
        EVALUATION,
        generate.generate_free_ratings(
            rng, ref, now=now, cases=cases, client_id=client_id, stats=stats
        ),
    )
    planted = plants.plant(rng, ref, now=now, case_id=case_base + cases, client_id=client_id)
    # The emerging complaint topic (its own random numbers: the rest of the demo is unchanged).
    await writer.insert(
        EVALUATION,
        topics_plant.plant(
            random.Random(seed + 12), ref, now=now, client_id=client_id, stats=stats
        ),
    )
    await writer.insert(CASE, planted.cases)
    await writer.insert(EVALUATION, planted.ratings)
    for row in planted.ratings:
        stats.channels[row["channel"]] += 1
        stats.levels[row["level"]] += 1
    stats.cases["completed"] += len(planted.cases)
    await _sync_sequences(conn, (CASE,))
    summary.cases, summary.channels, summary.levels = stats.cases, stats.channels, stats.levels
    summary.planted = planted.kinds

    # The people, then a year of the closed loop, lived through by them.
    policy = PolicyValues()
    root_path = f"/{generate.ROOT_CODE}/"
    orgs = await workflow.org_infos(db, root_path)
    ids = orgs_by_code(orgs)
    where = _account_orgs(ref, orgs, await workflow.bad_ratings(db, policy.bad_levels, root_path))
    await _accounts(db, where, summary)
    calendar = await load_calendar(db)
    moments = workflow.showcase_moments(calendar, now)
    halls = {"hall": ids[where["hall"][0]], "hall2": ids[where["hall2"][0]]}
    shown = plants.showcase(
        rng,
        ref,
        opens=[
            (halls[hall], m[0][0])
            for (_, hall, _), m in zip(workflow.SHOWCASE, moments, strict=True)
        ],
        case_id=case_base + cases + len(planted.cases),
        client_id=client_id,
    )
    await writer.insert(CASE, shown.cases)
    await writer.insert(EVALUATION, shown.ratings)
    await _sync_sequences(conn, (CASE,))
    for row in shown.ratings:
        stats.channels[row["channel"]] += 1
        stats.levels[row["level"]] += 1
    stats.cases["completed"] += len(shown.cases)
    summary.showcase = len(shown.cases)

    names = [u.username for u in DEMO_USERS]
    users = (await db.execute(select(User).where(User.username.in_(names)))).scalars()
    cast = workflow.Cast(orgs, list(users))
    ctx = LoopContext(settings=settings, deadlines=Deadlines(calendar), keys=engine_keys(db))
    dept_id = ids[where["dept"][0]]
    sim = workflow.Simulation(
        db,
        ctx=ctx,
        rng=rng,
        now=now,
        cast=cast,
        dead_letter_org=dept_id,
        scripts={c["id"]: m for c, m in zip(shown.cases, moments, strict=True)},
        progress=progress,
    )
    await sim.run(await workflow.bad_ratings(db, policy.bad_levels, root_path))

    # The periodic jobs of a running province, and the people who follow them up.
    await upkeep.sample_spot_checks(db, progress)
    await upkeep.call_spot_checks(db, cast=cast, ctx=ctx, rng=rng, avoid_org=dept_id)
    await upkeep.detect(db, cast=cast, ctx=ctx, now=now)

    # The newest capabilities, through their services on the day of the load (its own random
    # numbers: the rest of the demo is unchanged).
    root_id = ids[generate.ROOT_CODE]
    summary.newest = await live.stage(
        db,
        cast=cast,
        ctx=ctx,
        rng=random.Random(seed + 29),
        settings=settings,
        client=Principal(
            kind="client",
            id=client_id,
            name=CLIENT_NAME,
            org_id=root_id,
            org_path=root_path,
            channels=frozenset(c.value for c in Channel),
        ),
        hall_code=ref.accounts.hall_code,
        window_code=ref.accounts.window_code,
        office_code=ref.accounts.office_code,
        avoid_org=dept_id,
        progress=progress,
    )
    stats.levels.update(summary.newest.levels)
    stats.channels.update(summary.newest.channels)
    stats.cases["accepted"] += summary.newest.cases
    stats.cases["completed"] += summary.newest.reported
    await _count(db, summary)
    # Ratings received in past months: a kept ranking of those months no longer holds.
    await snapshots.clear(db)
    summary.seconds = time.perf_counter() - started
    return summary


def orgs_by_code(orgs: dict[int, workflow.OrgInfo]) -> dict[str, int]:
    return {o.code: o.id for o in orgs.values()}


def _account_orgs(
    ref: generate.Reference, orgs: dict[int, workflow.OrgInfo], bad: list[dict[str, Any]]
) -> dict[str, tuple[str, str]]:
    """(code, name) of the organisation of each kind of demo account."""
    a = ref.accounts
    by_org = Counter(r["org_id"] for r in bad)
    halls = [o for o in orgs.values() if o.kind == "hall" and o.code != a.hall_code]
    hall2 = max(halls, key=lambda o: (by_org[o.id], -o.id))
    office = next(o for o in orgs.values() if o.code == a.office_code)
    # A department of the demo city with no bad rating of its own: what reaches it is the
    # one order transferred to it.
    depts = [
        o
        for o in orgs.values()
        if o.kind == "department"
        and o.parent_id == office.id
        and o.region_code == office.region_code
        and not by_org[o.id]
    ]
    dept = min(depts, key=lambda o: o.id)
    return {
        "root": (generate.ROOT_CODE, generate.ROOT_NAME),
        "office": (a.office_code, a.office_name),
        "hall": (a.hall_code, a.hall_name),
        "hall2": (hall2.code, hall2.name),
        "dept": (dept.code, dept.name),
        "window": (a.window_code, a.window_name),
        "staff_name": ("", a.staff_name),
    }


async def _count(db: AsyncSession, summary: Summary) -> None:
    """What the loop and the jobs left behind, counted from the tables."""

    async def grouped(column: Any) -> Counter[str]:
        rows = await db.execute(select(column, func.count()).group_by(column))
        return Counter({str(k): n for k, n in rows})

    summary.orders = await grouped(WorkOrder.state)
    summary.overdue = (
        await db.execute(
            select(func.count()).select_from(WorkOrder).where(WorkOrder.overdue_at.is_not(None))
        )
    ).scalar_one()
    summary.appeals = await grouped(Appeal.state)
    summary.registered = (
        await db.execute(select(func.count()).select_from(MaliciousRater))
    ).scalar_one()
    summary.held = (
        await db.execute(
            select(func.count())
            .select_from(EvaluationStanding)
            .where(EvaluationStanding.standing == "held")
        )
    ).scalar_one()
    summary.flags = await grouped(IntegrityFlag.state)
    summary.spot_checks = await grouped(SpotCheck.state)
    summary.outbox = await grouped(OutboxMessage.status)


async def load(
    settings: Settings,
    *,
    cases: int = 200_000,
    seed: int = 2026,
    progress: Progress | None = None,
) -> str:
    """Load the demo into the configured database in one transaction, then seal the ledger
    and deliver the notifications; returns the summary."""
    summary = await _in_own_transaction(
        settings,
        lambda db: load_into(db, cases=cases, seed=seed, settings=settings, progress=progress),
        progress,
    )
    return str(summary)


async def load_into_if_empty(
    db: AsyncSession,
    *,
    cases: int = 200_000,
    seed: int = 2026,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Summary | None:
    """Load the demo only into a database without any organisation; None otherwise."""
    if (await db.execute(select(Org.id).limit(1))).first() is not None:
        return None
    return await load_into(db, cases=cases, seed=seed, settings=settings, progress=progress)


async def load_if_empty(
    settings: Settings,
    *,
    cases: int = 200_000,
    seed: int = 2026,
    echo: Callable[[str], Any] | None = print,
    progress: Progress | None = None,
) -> str | None:
    """For `serve --demo`: load the demo when the database has no orgs at all, print what
    was loaded (the accounts and the key), and return it; None when nothing was done."""
    summary = await _in_own_transaction(
        settings,
        lambda db: load_into_if_empty(
            db, cases=cases, seed=seed, settings=settings, progress=progress
        ),
        progress,
    )
    if summary is None:
        return None
    if echo is not None:
        echo(str(summary))
    return str(summary)


async def after_load(
    maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    summary: Summary,
    progress: Progress | None = None,
) -> None:
    """Once the load has committed: seal the ledger, deliver the outbox, count both."""
    started = time.perf_counter()
    await upkeep.finish(maker, settings, progress)
    async with maker() as db:
        summary.outbox = Counter(
            {
                str(k): n
                for k, n in await db.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )
            }
        )
        summary.blocks, summary.sealed = (
            await db.execute(
                select(func.count(), func.coalesce(func.sum(LedgerBlock.entry_count), 0))
            )
        ).one()
    summary.seconds += time.perf_counter() - started


async def _in_own_transaction(
    settings: Settings,
    fn: Callable[[AsyncSession], Awaitable[Summary | None]],
    progress: Progress | None = None,
) -> Summary | None:
    """Run a load on an engine of its own and commit it; then seal and deliver."""
    engine = make_engine(settings)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _demo_sync)
    try:
        maker = make_sessionmaker(engine)
        async with maker() as db:
            if settings.is_sqlite:
                # The indexes of 200,000 cases outgrow SQLite's 2 MB default page cache.
                # (Allocated as pages are used: a small demo takes what it needs.)
                await db.execute(text(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))
            summary = await fn(db)
            await db.commit()
        if summary is not None and not summary.already_loaded:
            await after_load(maker, settings, summary, progress)
        return summary
    finally:
        await engine.dispose()


def _demo_sync(dbapi_conn: Any, _record: Any) -> None:
    """The demo's own engine only: SQLite's WAL synced at checkpoints, not at every commit
    (`synchronous=NORMAL`, after `make_engine`'s FULL). A crash of the machine may lose the
    last commits, never corrupt the file; a demo is loaded again, not restored. The outbox
    delivery after the load commits once per message as the worker does, and an fsync per
    commit was some 6 ms each on this machine's disk (docs/benchmarks.md)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


async def _client(db: AsyncSession, summary: Summary) -> int:
    """The all-channel API client, through the account service; its id."""
    if not (await db.execute(select(ApiClient.id).where(ApiClient.name == CLIENT_NAME))).first():
        _, summary.client_key = await account_service.create_client(
            db=db,
            name=CLIENT_NAME,
            org_code=generate.ROOT_CODE,
            channels=[c.value for c in Channel],
        )
    return (
        await db.execute(select(ApiClient.id).where(ApiClient.name == CLIENT_NAME))
    ).scalar_one()


async def _accounts(db: AsyncSession, where: dict[str, tuple[str, str]], summary: Summary) -> None:
    """The demo users, through the account service (an existing username is left alone)."""
    for account in DEMO_USERS:
        org_code, org_name = where[account.where]
        exists = (
            await db.execute(select(User.id).where(User.username == account.username))
        ).first()
        if not exists:
            display = where["staff_name"][1] if account.role == Role.STAFF else org_name
            await account_service.create_user(
                db=db,
                username=account.username,
                password=account.password,
                role=account.role.value,
                org_code=org_code,
                display_name=display,
                email=account.email,
            )
        summary.users.append(
            DemoUser(
                account.username,
                account.password,
                account.role.value,
                org_name,
                not exists,
                account.purpose,
            )
        )


# The keyed identity hashes that cases and ratings get as column defaults
# (`db.types.identity_hash_default`): (hash column, the column hashed, kind).
HASHED: dict[str, list[tuple[str, str, IdentityKind]]] = {
    CASE.name: [
        ("applicant_cert_hash", "applicant_cert_no", "cert"),
        ("applicant_phone_hash", "applicant_phone", "phone"),
    ],
    EVALUATION.name: [
        ("rater_cert_hash", "rater_cert_no", "cert"),
        ("rater_phone_hash", "rater_phone", "phone"),
    ],
}


class BulkWriter:
    """Writes the generated rows of one load in chunks, with the values the ORM's column
    types and defaults would give them.

    On SQLite the rows go to the driver's `executemany` as tuples, each value passed through
    its column type's bind processor (what SQLAlchemy does per row, encryption included)
    and the identity-hash and constant defaults filled in as the INSERT would: SQLAlchemy's
    own per-row parameter handling was about a third of the load's CPU (docs/benchmarks.md).
    The applicants of the demo repeat (a case's rater is its applicant), so each identifier
    is hashed once. PostgreSQL takes the Core insert as before."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.keys = dialect_keys(conn.dialect)
        self.hashes: dict[tuple[str, str], str | None] = {}

    def _hash(self, value: str | None, kind: IdentityKind) -> str | None:
        if not value:
            return None
        key = (value, kind)
        found = self.hashes.get(key, False)
        if found is False:
            found = self.hashes[key] = self.keys.identity_hash(value, kind)
        return found  # type: ignore[return-value]

    def _complete(self, table: Table, rows: list[dict[str, Any]]) -> list[str] | None:
        """Fill in the defaults the INSERT would compute; the columns to write, or None when
        a column left out has a default this writer cannot reproduce."""
        columns = list(rows[0])
        for target, source, kind in HASHED.get(table.name, []):
            if target not in columns and source in columns:
                for row in rows:
                    row[target] = self._hash(row[source], kind)
                columns.append(target)
        for column in table.c:
            if column.name in columns or column.default is None:
                continue
            if not column.default.is_scalar:
                return None
            for row in rows:
                row[column.name] = column.default.arg  # type: ignore[attr-defined]
            columns.append(column.name)
        return columns

    async def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert generated rows (every row with the same keys)."""
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            columns = self._complete(table, chunk) if self.conn.dialect.name == "sqlite" else None
            if columns is None:
                await self.conn.execute(table.insert(), chunk)
                continue
            dialect = self.conn.dialect
            quote = dialect.identifier_preparer.quote
            processors = [
                (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in columns
            ]
            params = [
                tuple(row[name] if proc is None else proc(row[name]) for name, proc in processors)
                for row in chunk
            ]
            sql = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            await self.conn.exec_driver_sql(sql, params)  # type: ignore[arg-type]


async def _next_id(conn: AsyncConnection, table: Table) -> int:
    """The first id this load may use: above every row, and on PostgreSQL above the sequence
    (ids are assigned here so that rows can point at each other without a round trip)."""
    top = (await conn.execute(select(func.max(table.c.id)))).scalar() or 0
    if conn.dialect.name != "postgresql":
        return top + 1
    seq = await conn.scalar(text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id'))"))
    return max(top + 1, seq)


async def _sync_sequences(conn: AsyncConnection, tables: tuple[Table, ...]) -> None:
    """Move PostgreSQL's id sequences past the ids written here, so later inserts fit."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT max(id) FROM {table.name}))"
            )
        )
