"""Monthly partitions of the ratings table on PostgreSQL (按月分区; migration 0033).

`evaluation` is partitioned by `received_at`, one partition a month with bounds at 00:00
China Standard Time (`evaluation_y2026m11`), and `evaluation_default` for a rating outside
every month, which should stay empty. The periodic job creates the coming months ahead
(`ensure_ahead`), so intake never runs DDL; a month is detached after its export (retention)
and can be attached again. On SQLite every function here does nothing: one table.

Detaching keeps the month's rows in a table of their own and their ids, once-rules and the
references to them in the narrow key tables (`evaluation_key`, `evaluation_once`), so a rating
of a detached month can still not be given twice and its work order still names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.errors import Invalid
from haochaping.core.timeutil import SHANGHAI

MONTHS_AHEAD = 3
DEFAULT = "evaluation_default"
MESSAGE = "评价记录不可修改或删除（好差评评价只增不改）"
NAME = re.compile(r"^evaluation_y(\d{4})m(\d{2})$")


class PartitionError(Invalid):
    """A partition that cannot be detached or attached as asked."""

    code = "partition_invalid"


@dataclass
class Partition:
    """One month's table: attached to `evaluation` or detached (archived)."""

    name: str
    month: date
    attached: bool


@dataclass
class AheadReport:
    """What `ensure_ahead` did: partitions created, months it could not create because
    DEFAULT holds ratings of them, and how many ratings DEFAULT holds."""

    created: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    in_default: int = 0

    def __str__(self) -> str:
        parts = [f"新建 {len(self.created)} 个月分区" if self.created else "月分区齐备"]
        if self.in_default:
            parts.append(f"默认分区中有 {self.in_default} 条评价（不在任何月分区内，需处理）")
        if self.blocked:
            parts.append("无法新建：" + "、".join(self.blocked))
        return "评价分区：" + "；".join(parts)


def is_partitioned(db: AsyncSession) -> bool:
    """True on PostgreSQL (after migration 0033), where `evaluation` is partitioned."""
    return db.bind.dialect.name == "postgresql"  # type: ignore[union-attr]


def name_of(month: date) -> str:
    """The partition of a month: `evaluation_y2026m11`."""
    return f"evaluation_y{month.year:04d}m{month.month:02d}"


def next_month(month: date) -> date:
    """The first day of the month after `month`."""
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def month_of(moment: datetime) -> date:
    """The month (China Standard Time) a moment falls in."""
    local = moment.astimezone(SHANGHAI)
    return date(local.year, local.month, 1)


def moments(month: date) -> tuple[datetime, datetime]:
    """A month's first instant and the next month's, China Standard Time."""
    after = next_month(month)
    return (
        datetime(month.year, month.month, 1, tzinfo=SHANGHAI),
        datetime(after.year, after.month, 1, tzinfo=SHANGHAI),
    )


def bounds(month: date) -> tuple[str, str]:
    """The partition bounds of a month as SQL literals: 00:00 China time of its first day and
    of the next month's."""
    lo, hi = moments(month)
    return lo.isoformat(), hi.isoformat()


def _month(value: date) -> date:
    return date(value.year, value.month, 1)


async def partitions(db: AsyncSession) -> list[Partition]:
    """Every month's table, attached or detached, oldest first."""
    if not is_partitioned(db):
        return []
    rows = (
        await db.execute(
            text(
                "SELECT c.relname, i.inhparent IS NOT NULL FROM pg_class c "
                "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
                "WHERE c.relkind = 'r' AND c.relname ~ '^evaluation_y[0-9]{4}m[0-9]{2}$' "
                "AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    ).all()
    found = []
    for name, attached in rows:
        m = NAME.match(name)
        if m:
            found.append(Partition(name, date(int(m[1]), int(m[2]), 1), bool(attached)))
    return sorted(found, key=lambda p: p.month)


async def in_default(db: AsyncSession) -> int:
    """Ratings in the DEFAULT partition (outside every month's partition)."""
    if not is_partitioned(db):
        return 0
    return int((await db.execute(text(f"SELECT count(*) FROM {DEFAULT}"))).scalar_one())


async def _stray(db: AsyncSession, month: date) -> bool:
    lo, hi = moments(month)
    return bool(
        (
            await db.execute(
                text(
                    f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} "
                    "WHERE received_at >= :lo AND received_at < :hi)"
                ),
                {"lo": lo, "hi": hi},
            )
        ).scalar_one()
    )


async def create_month(db: AsyncSession, *, month: date) -> str:
    """Create a month's partition with its TRUNCATE guard (the caller commits); refused when
    it exists or when DEFAULT already holds ratings of that month (PostgreSQL would have to
    move them: an operator's step). Takes a short exclusive lock on `evaluation`."""
    if not is_partitioned(db):
        raise PartitionError("仅 PostgreSQL 的评价表按月分区")
    month = _month(month)
    name = name_of(month)
    if any(p.month == month for p in await partitions(db)):
        raise PartitionError(f"{name} 已存在", details=[{"month": f"{month:%Y-%m}"}])
    if await _stray(db, month):
        raise PartitionError(
            f"默认分区中已有 {month:%Y-%m} 的评价，不能直接新建该月分区",
            details=[{"month": f"{month:%Y-%m}"}],
        )
    lo, hi = bounds(month)
    await db.execute(
        text(f"CREATE TABLE {name} PARTITION OF evaluation FOR VALUES FROM ('{lo}') TO ('{hi}')")
    )
    # Row triggers come from the parent; TRUNCATE triggers do not (statement level, per table).
    await db.execute(
        text(
            f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
        )
    )
    return name


async def ensure_ahead(
    db: AsyncSession, *, today: date, months: int = MONTHS_AHEAD, since: date | None = None
) -> AheadReport:
    """Create the partitions of this month and the next `months` (and with `since`, of every
    month from then on: a bulk load of past ratings such as the demo's) that do not exist; the
    caller commits. A month with ratings already in DEFAULT is not created and is reported, as
    is DEFAULT's count."""
    report = AheadReport()
    if not is_partitioned(db):
        return report
    existing = {p.month for p in await partitions(db)}
    month = _month(min(since or today, today))
    last = _month(today)
    for _ in range(months):
        last = next_month(last)
    while month <= last:
        if month not in existing:
            if await _stray(db, month):
                report.blocked.append(name_of(month))
            else:
                report.created.append(await create_month(db, month=month))
        month = next_month(month)
    report.in_default = await in_default(db)
    return report


async def _find(db: AsyncSession, month: date) -> Partition:
    for p in await partitions(db):
        if p.month == _month(month):
            return p
    raise PartitionError(f"没有 {month:%Y-%m} 的评价分区", details=[{"month": f"{month:%Y-%m}"}])


async def detach(db: AsyncSession, *, month: date) -> Partition:
    """Take a month's partition out of `evaluation` (its rows stay in their own table, outside
    every query of the ratings); the caller commits. The retention step after an export."""
    if not is_partitioned(db):
        raise PartitionError("仅 PostgreSQL 的评价表按月分区，SQLite 无法分离月份")
    p = await _find(db, month)
    if not p.attached:
        raise PartitionError(f"{p.name} 已分离", details=[{"month": f"{p.month:%Y-%m}"}])
    await db.execute(text(f"ALTER TABLE evaluation DETACH PARTITION {p.name}"))
    return Partition(p.name, p.month, attached=False)


async def attach(db: AsyncSession, *, month: date) -> Partition:
    """Put a detached month's table back into `evaluation` (its ratings are read and verified
    from the table again); the caller commits."""
    if not is_partitioned(db):
        raise PartitionError("仅 PostgreSQL 的评价表按月分区，SQLite 无法挂回月份")
    p = await _find(db, month)
    if p.attached:
        raise PartitionError(f"{p.name} 未分离", details=[{"month": f"{p.month:%Y-%m}"}])
    lo, hi = bounds(p.month)
    await db.execute(
        text(
            f"ALTER TABLE evaluation ATTACH PARTITION {p.name} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
    )
    return Partition(p.name, p.month, attached=True)


async def rows_in(db: AsyncSession, *, month: date) -> int:
    """The ratings in a month's table, attached or not."""
    p = await _find(db, month)
    return int((await db.execute(text(f"SELECT count(*) FROM {p.name}"))).scalar_one())
