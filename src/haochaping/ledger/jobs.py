"""Ledger work spanning many short transactions: sealing what is new, verifying everything."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from haochaping.core.timeutil import utcnow
from haochaping.ledger import hashing, service
from haochaping.ledger.service import Finding, FindingKind


@dataclass
class SealReport:
    """What a sealing pass did."""

    blocks: int = 0
    ratings: int = 0
    first_height: int | None = None
    last_height: int | None = None

    def __str__(self) -> str:
        if not self.blocks:
            return "没有需要封存的新评价"
        return (
            f"已封存 {self.ratings} 条评价，区块 {self.first_height}–{self.last_height}"
            f"（共 {self.blocks} 个）"
        )


@dataclass
class VerifyReport:
    """What verification found: counts, and every problem by rating or block."""

    blocks: int = 0
    entries: int = 0
    pending: int = 0
    watermark: int = 0
    head_height: int | None = None
    head_root: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def ids(self, kind: FindingKind) -> list[int]:
        """The evaluation ids named by findings of one kind."""
        return [
            f.evaluation_id for f in self.findings if f.kind == kind and f.evaluation_id is not None
        ]

    def lines(self) -> list[str]:
        """The report for people: a summary, every finding, and the verdict."""
        out = [
            f"账本校验：区块 {self.blocks} 个，已封存评价 {self.entries} 条，"
            f"待封存 {self.pending} 条"
        ]
        if self.head_height is not None:
            out.append(f"最新区块：{self.head_height}，根哈希 {self.head_root}")
        for finding in self.findings:
            out.append(f"  {service.FINDING_LABELS[finding.kind]}：{finding.message}")
        if self.ok:
            out.append("结论：校验通过")
        else:
            counts = Counter(f.kind for f in self.findings)
            summary = "，".join(f"{service.FINDING_LABELS[k]} {n}" for k, n in counts.items())
            out.append(f"结论：校验未通过（{summary}）")
        return out


def parse_anchors(values: list[str]) -> dict[int, bytes]:
    """Published roots given as HEIGHT:ROOT (hex) on the command line."""
    anchors = {}
    for value in values:
        height, _, root = value.partition(":")
        try:
            raw = bytes.fromhex(root)
            if not height.isdigit() or len(raw) != hashing.HASH_SIZE:
                raise ValueError(value)
        except ValueError:
            raise ValueError(
                f"无法识别的根哈希 {value!r}，格式应为 区块高度:64位十六进制根哈希"
            ) from None
        anchors[int(height)] = raw
    return anchors


async def pending_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """About how many ratings a seal would take now (every rating not yet in the ledger)."""
    async with sessionmaker() as db:
        return await service.pending_count(db)


def _can_read_ahead(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Whether sessions get connections of their own, so reading ahead can overlap work."""
    # PostgreSQL only: SQLite has one writer, and the tests' sessions share one connection.
    bind = sessionmaker.kw.get("bind")
    return isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql"


async def _read_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    after: int | None,
    block_size: int,
    now: datetime | None,
    grace: timedelta,
) -> service.Batch:
    """The next unsealed ratings, read in a short transaction of their own, then hashed."""
    async with sessionmaker() as db:
        batch = await service.read_batch(
            db=db, after=after, block_size=block_size, now=now, grace=grace
        )
    batch.hashes = await service.hash_rows(batch.rows, batch.version)
    return batch


async def seal_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    block_size: int = service.BLOCK_SIZE,
    now: datetime | None = None,
    grace: timedelta = service.GRACE,
    on_block: Callable[[SealReport], None] | None = None,
) -> SealReport:
    """Seal every committed, unsealed rating above the watermark: one transaction per block
    (`on_block` is told the report so far after each, for a progress display)."""
    # The next ratings are read and hashed outside the sealing transaction (on PostgreSQL
    # while the previous block is being written): the head stays locked only to write one.
    report = SealReport()
    ahead = _can_read_ahead(sessionmaker)

    def read(after: int | None):
        return _read_batch(sessionmaker, after=after, block_size=block_size, now=now, grace=grace)

    batch = await read(None)
    while batch.rows:
        # Ratings below the last id read that commit late are picked up by the next pass.
        following = asyncio.ensure_future(read(batch.rows[-1][0])) if ahead else None
        try:
            async with sessionmaker() as db:
                sealed = await service.seal_block(db=db, batch=batch)
                if sealed is not None:
                    await db.commit()
        except BaseException:
            if following is not None:
                following.cancel()
            raise
        if sealed is None:  # another sealer took them all: it carries on from here
            if following is not None:
                following.cancel()
            break
        report.blocks += 1
        report.ratings += sealed.entry_count
        report.first_height = report.first_height or sealed.height
        report.last_height = sealed.height
        if on_block is not None:
            on_block(report)
        batch = await following if following is not None else await read(sealed.last_id)
    return report


async def verify(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    anchors: dict[int, bytes] | None = None,
    now: datetime | None = None,
    grace: timedelta = service.GRACE,
    on_block: Callable[[int, int], None] | None = None,
    archived: service.ArchivedSource | None = None,
) -> VerifyReport:
    """Recompute every sealed rating and block; name whatever was altered, removed or added
    (`on_block(done, total)` after each block, for a progress display). With `archived`, a
    sealed rating no longer in the table is checked as the archive holds it."""
    # One short transaction per block, so that SQLite's writer (intake) never waits long; on
    # PostgreSQL the next block is read while this one is hashed.
    report = VerifyReport()
    async with sessionmaker() as db:
        blocks = await service.all_blocks(db)
        report.findings.extend(await service.forged_entries(db))
        report.watermark = service.watermark_of(blocks, now=now or utcnow(), grace=grace)
        inserted, report.pending = await service.unsealed(db, at_or_below=report.watermark)
    report.blocks = len(blocks)
    if blocks:
        report.head_height, report.head_root = blocks[-1].height, blocks[-1].root.hex()
    ahead = _can_read_ahead(sessionmaker)

    async def read(block) -> list:
        async with sessionmaker() as db:
            return await service.block_rows(db=db, block=block)

    following = asyncio.ensure_future(read(blocks[0])) if blocks and ahead else None
    try:
        prev = None
        for i, block in enumerate(blocks):
            report.findings.extend(service.check_header(block, prev))
            if following is not None:
                rows = await following
                nxt = i + 1 < len(blocks)
                following = asyncio.ensure_future(read(blocks[i + 1])) if nxt else None
            else:
                rows = await read(block)
            if archived is not None:
                rows = service.with_archived(rows, block=block, archived=archived)
            checked = await service.check_rows(block=block, rows=rows)
            report.entries += checked.entries
            report.findings.extend(checked.findings)
            prev = block
            if on_block is not None:
                on_block(i + 1, len(blocks))
    finally:
        if following is not None:
            following.cancel()
    report.findings.extend(service.inserted_findings(inserted, report.watermark))
    by_height = {b.height: b for b in blocks}
    for height, root in sorted((anchors or {}).items()):
        block = by_height.get(height)
        if block is None:
            report.findings.append(
                Finding(
                    FindingKind.ANCHOR_MISMATCH,
                    f"公布过的区块 {height} 在账本中不存在",
                    block_height=height,
                )
            )
        elif block.root != root:
            report.findings.append(
                Finding(
                    FindingKind.ANCHOR_MISMATCH,
                    f"区块 {height} 的根 {block.root.hex()[:16]}… 与公布的 {root.hex()[:16]}… 不符",
                    block_height=height,
                )
            )
    return report
