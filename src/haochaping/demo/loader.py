"""Load the demo province (示范省) into a database: `haochaping demo` and `serve --demo`.

Reference data and a year of cases and ratings are generated in memory (`generate`) and
written with Core bulk inserts (executemany over chunks of rows) with ids assigned here, not
through the ORM, so 200,000 cases load in well under two minutes on SQLite. Accounts and the
API client go through the account services, so passwords and keys are stored as the app
expects. The load is one transaction, and it is idempotent: the root org's code marks the
demo, and a second run finds it and changes nothing.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from haochaping.accounts import service as account_service
from haochaping.accounts.choices import Role
from haochaping.accounts.models import ApiClient, User
from haochaping.cases.models import Case
from haochaping.config import Settings
from haochaping.core.timeutil import utcnow
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.demo import generate
from haochaping.evaluations import tags
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Item, Org, Region, Staff

CHUNK = 5000
CLIENT_NAME = "示范省演示客户端（全渠道）"
# (username, password, role, which org): printed by the loader; for trying the demo only.
DEMO_USERS = [
    ("admin", "admin12345", Role.ADMIN, "root"),
    ("office", "office12345", Role.OFFICE, "office"),
    ("unit", "unit12345", Role.UNIT, "hall"),
    ("staff", "staff12345", Role.STAFF, "window"),
]

REGION: Table = Region.__table__  # type: ignore[assignment]
ORG: Table = Org.__table__  # type: ignore[assignment]
STAFF: Table = Staff.__table__  # type: ignore[assignment]
ITEM: Table = Item.__table__  # type: ignore[assignment]
CASE: Table = Case.__table__  # type: ignore[assignment]
EVALUATION: Table = Evaluation.__table__  # type: ignore[assignment]


@dataclass
class DemoUser:
    """A demo account as printed: its password is only shown when it was created now."""

    username: str
    password: str
    role: str
    org_name: str
    created: bool


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
    seconds: float = 0.0

    @property
    def ratings(self) -> int:
        return sum(self.levels.values())

    @property
    def good_share(self) -> float:
        return (
            (self.ratings - self.levels[1] - self.levels[2]) / self.ratings if self.ratings else 0.0
        )

    def __str__(self) -> str:
        if self.already_loaded:
            return (
                f"示范省演示数据已存在（根机构 {self.root_code}），未做任何改动。\n"
                "演示账号：admin / admin12345（系统管理员）；API 密钥只在首次加载时显示。"
            )
        r, o = self.regions, self.orgs
        lines = [
            f"示范省演示数据已加载，用时 {self.seconds:.1f} 秒。",
            f"  行政区划：省 {r[1]}，市 {r[2]}，县（区） {r[3]}，乡镇（街道） {r[4]}",
            f"  机构：部门 {o['department']}，大厅 {o['hall']}，窗口 {o['window']}；"
            f"工作人员 {self.staff}；服务事项 {self.items}",
            f"  办件 {sum(self.cases.values()):,}：已办结 {self.cases['completed']:,}，"
            f"办理中 {self.cases['accepted']:,}，已收件 {self.cases['received']:,}，"
            f"不予受理 {self.cases['rejected']:,}",
            f"  评价 {self.ratings:,}：好评率 {self.good_share:.2%}，"
            f"差评 {self.levels[1] + self.levels[2]:,}（不满意 {self.levels[2]:,}，"
            f"非常不满意 {self.levels[1]:,}）",
            "  渠道：" + "，".join(f"{c} {self.channels[c]:,}" for c in Channel),
            f"  根机构代码：{self.root_code}",
            "演示账号（仅供体验，正式环境请删除或改密）：",
        ]
        for u in self.users:
            pw = u.password if u.created else "（账号已存在，未改动）"
            lines.append(f"  {u.username:<8} {pw:<14} {Role(u.role).label}，{u.org_name}")
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
    db: AsyncSession, *, cases: int = 200_000, seed: int = 2026, now: datetime | None = None
) -> Summary:
    """Write the demo province into the session's transaction (the caller commits)."""
    started = time.perf_counter()
    if await demo_present(db):
        return Summary(already_loaded=True)
    conn = await db.connection()
    now = now or utcnow()
    rng = random.Random(seed)
    await tags.seed(db)

    ref = generate.build_reference(
        rng,
        now=now,
        org_id=await _next_id(conn, ORG),
        staff_id=await _next_id(conn, STAFF),
        item_id=await _next_id(conn, ITEM),
    )
    await _insert(conn, REGION, ref.regions)
    await _insert(conn, ORG, ref.orgs)
    await _insert(conn, STAFF, ref.staff)
    await _insert(conn, ITEM, ref.items)
    await _sync_sequences(conn, (ORG, STAFF, ITEM))

    summary = Summary(already_loaded=False, staff=len(ref.staff), items=len(ref.items))
    summary.regions.update(r["tier"] for r in ref.regions)
    summary.orgs.update(o["kind"] for o in ref.orgs)
    await _accounts(db, ref, summary)
    client_id = (
        await db.execute(select(ApiClient.id).where(ApiClient.name == CLIENT_NAME))
    ).scalar_one()

    stats = generate.ActivityStats()
    case_base = await _next_id(conn, CASE)
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
        await _insert(conn, CASE, case_rows)
        await _insert(conn, EVALUATION, eval_rows)
    await _insert(
        conn,
        EVALUATION,
        generate.generate_free_ratings(
            rng, ref, now=now, cases=cases, client_id=client_id, stats=stats
        ),
    )
    await _sync_sequences(conn, (CASE,))

    summary.cases, summary.channels, summary.levels = stats.cases, stats.channels, stats.levels
    summary.seconds = time.perf_counter() - started
    return summary


async def load(settings: Settings, *, cases: int = 200_000, seed: int = 2026) -> str:
    """Load the demo into the configured database in one transaction; returns the summary."""
    summary = await _in_own_transaction(settings, lambda db: load_into(db, cases=cases, seed=seed))
    return str(summary)


async def load_into_if_empty(
    db: AsyncSession, *, cases: int = 200_000, seed: int = 2026
) -> Summary | None:
    """Load the demo only into a database without any organisation; None otherwise."""
    if (await db.execute(select(Org.id).limit(1))).first() is not None:
        return None
    return await load_into(db, cases=cases, seed=seed)


async def load_if_empty(
    settings: Settings,
    *,
    cases: int = 200_000,
    seed: int = 2026,
    echo: Callable[[str], Any] | None = print,
) -> str | None:
    """For `serve --demo`: load the demo when the database has no orgs at all, print what
    was loaded (the accounts and the key), and return it; None when nothing was done."""
    summary = await _in_own_transaction(
        settings, lambda db: load_into_if_empty(db, cases=cases, seed=seed)
    )
    if summary is None:
        return None
    if echo is not None:
        echo(str(summary))
    return str(summary)


async def _in_own_transaction(
    settings: Settings, fn: Callable[[AsyncSession], Awaitable[Summary | None]]
) -> Summary | None:
    """Run a load on an engine of its own and commit it."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db:
            if settings.is_sqlite:
                # The indexes of 200,000 cases outgrow SQLite's 2 MB default page cache.
                await db.execute(text("PRAGMA cache_size = -131072"))
            summary = await fn(db)
            await db.commit()
            return summary
    finally:
        await engine.dispose()


async def _accounts(db: AsyncSession, ref: generate.Reference, summary: Summary) -> None:
    """The demo users and the all-channel API client, through the account services."""
    a = ref.accounts
    orgs = {
        "root": (generate.ROOT_CODE, generate.ROOT_NAME),
        "office": (a.office_code, a.office_name),
        "hall": (a.hall_code, a.hall_name),
        "window": (a.window_code, a.window_name),
    }
    for username, password, role, where in DEMO_USERS:
        org_code, org_name = orgs[where]
        exists = (await db.execute(select(User.id).where(User.username == username))).first()
        if not exists:
            display = a.staff_name if role == Role.STAFF else org_name
            await account_service.create_user(
                db=db,
                username=username,
                password=password,
                role=role.value,
                org_code=org_code,
                display_name=display,
            )
        summary.users.append(DemoUser(username, password, role.value, org_name, not exists))
    if not (await db.execute(select(ApiClient.id).where(ApiClient.name == CLIENT_NAME))).first():
        _, summary.client_key = await account_service.create_client(
            db=db,
            name=CLIENT_NAME,
            org_code=generate.ROOT_CODE,
            channels=[c.value for c in Channel],
        )


async def _insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await conn.execute(table.insert(), rows[start : start + CHUNK])


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
