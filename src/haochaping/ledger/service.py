"""Sealing ratings into the ledger, checking sealed blocks, and proofs for one rating.

Sealing reads the evaluation table and writes only the ledger tables: intake never waits for
it. Concurrent sealers (two workers, or a worker and `haochaping ledger seal`) take a lock on
the ledger head only — a transaction-scoped advisory lock on PostgreSQL, SQLite's single
writer elsewhere — and the unique prev_root and height keep the chain from forking even so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import String, Table, exists, func, insert, or_, select, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.errors import Conflict, NotFound
from haochaping.core.timeutil import utcnow
from haochaping.db.types import EncryptedString
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing
from haochaping.ledger.models import LedgerBlock, LedgerEntry

EVALUATION: Table = Evaluation.__table__  # type: ignore[assignment]
ENTRY: Table = LedgerEntry.__table__  # type: ignore[assignment]
BLOCK: Table = LedgerBlock.__table__  # type: ignore[assignment]

BLOCK_SIZE = 10_000
# How long a rating's transaction may stay open between taking its id and committing. A pass
# starts above the ids of blocks sealed longer ago than this: every lower id has committed
# (or rolled back) by then, so an unsealed rating down there was put in behind our back.
GRACE = timedelta(minutes=5)
# Arbitrary, fixed: the PostgreSQL advisory lock that only sealers take ("hcp-ledg").
HEAD_LOCK_KEY = 0x6863702D6C656467
# Hash at most this many ratings before letting the event loop run other tasks.
_HASH_CHUNK = 1_000


class FindingKind(StrEnum):
    """What verification can find wrong."""

    ALTERED = "altered"
    MISSING = "missing"
    INSERTED = "inserted"
    ENTRY_MISSING = "entry_missing"
    ENTRY_FORGED = "entry_forged"
    BLOCK_ALTERED = "block_altered"
    ROOT_MISMATCH = "root_mismatch"
    CHAIN_BROKEN = "chain_broken"
    ANCHOR_MISMATCH = "anchor_mismatch"


FINDING_LABELS = {
    FindingKind.ALTERED: "篡改",
    FindingKind.MISSING: "缺失",
    FindingKind.INSERTED: "插入",
    FindingKind.ENTRY_MISSING: "账本条目缺失",
    FindingKind.ENTRY_FORGED: "账本条目伪造",
    FindingKind.BLOCK_ALTERED: "区块内容被改",
    FindingKind.ROOT_MISMATCH: "区块根不符",
    FindingKind.CHAIN_BROKEN: "哈希链断裂",
    FindingKind.ANCHOR_MISMATCH: "与公布的根不符",
}


@dataclass(frozen=True)
class Finding:
    """One problem found by verification, naming the rating and/or block concerned."""

    kind: FindingKind
    message: str
    evaluation_id: int | None = None
    block_height: int | None = None


@dataclass(frozen=True)
class SealedBlock:
    """What one sealing step produced."""

    height: int
    entry_count: int
    first_id: int
    last_id: int
    root: bytes


@dataclass
class BlockCheck:
    """The outcome of checking one block and its entries."""

    entries: int = 0
    findings: list[Finding] = field(default_factory=list)


def content_columns(version: int = hashing.CONTENT_VERSION) -> list[Any]:
    """The evaluation columns a content hash of this version covers, in order."""
    # From version 2 values are hashed as stored: encrypted identifiers are taken as their
    # ciphertext (type_coerce skips decryption), which never changes once written and costs
    # nothing. Version 1 was sealed before they were encrypted: it hashes the plaintext.
    return [
        type_coerce(EVALUATION.c[name], String())
        if version >= 2 and isinstance(EVALUATION.c[name].type, EncryptedString)
        else EVALUATION.c[name]
        for name in hashing.CONTENT_COLUMNS[version]
    ]


async def hash_rows(rows: Sequence[Sequence[Any]], version: int) -> list[bytes]:
    """Content hashes of many rows, yielding to the event loop between chunks."""
    if len(rows) <= _HASH_CHUNK:
        return hashing.content_hashes(rows, version)
    out: list[bytes] = []
    for start in range(0, len(rows), _HASH_CHUNK):
        out.extend(hashing.content_hashes(rows[start : start + _HASH_CHUNK], version))
        await asyncio.sleep(0)
    return out


async def lock_head(db: AsyncSession) -> None:
    """Serialise sealers (only sealers) until the end of the transaction."""
    if db.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEAD_LOCK_KEY})
    # SQLite: every transaction here begins IMMEDIATE, so writers are serialised already.


async def head(db: AsyncSession) -> LedgerBlock | None:
    """The newest block, or None before the first seal."""
    return (
        await db.execute(select(LedgerBlock).order_by(LedgerBlock.height.desc()).limit(1))
    ).scalar_one_or_none()


async def watermark(db: AsyncSession, *, now: datetime, grace: timedelta = GRACE) -> int:
    """The id at or below which every committed rating ought to be sealed by now."""
    found = (
        await db.execute(
            select(BLOCK.c.high_water)
            .where(BLOCK.c.sealed_at < now - grace)
            .order_by(BLOCK.c.height.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return found or 0


@dataclass
class Batch:
    """Unsealed ratings read, and hashed, ahead of the transaction that seals them."""

    version: int
    rows: list[Any]
    hashes: list[bytes]


async def read_batch(
    *,
    db: AsyncSession,
    after: int | None = None,
    block_size: int = BLOCK_SIZE,
    now: datetime | None = None,
    grace: timedelta = GRACE,
) -> Batch:
    """The next unsealed ratings above `after` (default: the watermark), not yet hashed."""
    if after is None:
        after = await watermark(db, now=now or utcnow(), grace=grace)
    version = hashing.CONTENT_VERSION
    rows = await unsealed_rows(db, after=after, limit=block_size, version=version)
    return Batch(version=version, rows=rows, hashes=[])


async def seal_block(
    *,
    db: AsyncSession,
    after: int | None = None,
    block_size: int = BLOCK_SIZE,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    batch: Batch | None = None,
) -> SealedBlock | None:
    """Seal the next unsealed ratings (or a batch read beforehand) into one block, or None."""
    # In id order, above `after` (default: the watermark). The caller commits.
    await lock_head(db)
    last = await head(db)
    if batch is None:
        batch = await read_batch(db=db, after=after, block_size=block_size, now=now, grace=grace)
        batch.hashes = await hash_rows(batch.rows, batch.version)
    elif batch.rows:
        # Read before the lock: drop what another sealer has sealed since.
        taken = set(
            (
                await db.execute(
                    select(ENTRY.c.evaluation_id).where(
                        ENTRY.c.evaluation_id.between(batch.rows[0][0], batch.rows[-1][0])
                    )
                )
            ).scalars()
        )
        if taken:
            kept = [
                (r, h) for r, h in zip(batch.rows, batch.hashes, strict=True) if r[0] not in taken
            ]
            batch = Batch(batch.version, [r for r, _ in kept], [h for _, h in kept])
    rows, hashes, version = batch.rows, batch.hashes, batch.version
    if not rows:
        return None
    # Taken after the rows were read: every id in the block was handed out before this time.
    sealed_at = utcnow()
    height, prev_root, first_seq, high_water = 1, hashing.GENESIS_ROOT, 1, 0
    if last is not None:
        height, prev_root = last.height + 1, last.root
        first_seq, high_water = last.last_seq + 1, last.high_water
        sealed_at = max(sealed_at, last.sealed_at)
    high_water = max(high_water, rows[-1][0])
    merkle = hashing.merkle_root(hashes)
    root = hashing.block_root(
        height=height,
        prev_root=prev_root,
        merkle_root=merkle,
        first_seq=first_seq,
        entry_count=len(rows),
        high_water=high_water,
        sealed_at=sealed_at,
        content_version=version,
    )
    await db.execute(
        insert(BLOCK).values(
            height=height,
            prev_root=prev_root,
            merkle_root=merkle,
            root=root,
            first_seq=first_seq,
            last_seq=first_seq + len(rows) - 1,
            entry_count=len(rows),
            high_water=high_water,
            content_version=version,
            sealed_at=sealed_at,
        )
    )
    await insert_entries(
        db, ids=[row[0] for row in rows], hashes=hashes, first_seq=first_seq, height=height
    )
    return SealedBlock(
        height=height, entry_count=len(rows), first_id=rows[0][0], last_id=rows[-1][0], root=root
    )


_PG_INSERT_ENTRIES = text(
    "INSERT INTO ledger_entry (evaluation_id, seq, block_height, content_hash) "
    "SELECT t.id, :first_seq + t.n - 1, :height, t.h "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:hashes AS BYTEA[])) WITH ORDINALITY AS t(id, h, n)"
)


async def insert_entries(
    db: AsyncSession, *, ids: list[int], hashes: list[bytes], first_seq: int, height: int
) -> None:
    """Append a block's entries, seq counting up from first_seq in the order given."""
    if db.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        # One statement with two arrays: ten times cheaper than a multi-row executemany.
        await db.execute(
            _PG_INSERT_ENTRIES,
            {"ids": ids, "hashes": hashes, "first_seq": first_seq, "height": height},
        )
        return
    await db.execute(
        insert(ENTRY),
        [
            {"evaluation_id": i, "seq": first_seq + n, "block_height": height, "content_hash": h}
            for n, (i, h) in enumerate(zip(ids, hashes, strict=True))
        ],
    )


async def unsealed_rows(db: AsyncSession, *, after: int, limit: int, version: int) -> list[Any]:
    """Up to `limit` unsealed ratings above id `after`, in id order (content columns)."""
    # Two range scans instead of one anti-join: the planner cannot turn them into a scan of
    # the whole ledger per block, however stale its statistics.
    found: list[Any] = []
    select_rows = select(*content_columns(version)).order_by(EVALUATION.c.id)
    while len(found) < limit:
        rows = (
            await db.execute(select_rows.where(EVALUATION.c.id > after).limit(limit - len(found)))
        ).all()
        if not rows:
            break
        sealed = set(
            (
                await db.execute(
                    select(ENTRY.c.evaluation_id).where(
                        ENTRY.c.evaluation_id.between(rows[0][0], rows[-1][0])
                    )
                )
            ).scalars()
        )
        found.extend(r for r in rows if r[0] not in sealed)
        after = rows[-1][0]
    return found[:limit]


async def pending_count(db: AsyncSession) -> int:
    """Ratings not yet in the ledger (a count for progress displays)."""
    ratings = (await db.execute(select(func.count()).select_from(EVALUATION))).scalar_one()
    sealed = (await db.execute(select(func.count()).select_from(ENTRY))).scalar_one()
    return max(ratings - sealed, 0)


async def all_blocks(db: AsyncSession) -> list[Any]:
    """Every block header, in height order."""
    return list((await db.execute(select(BLOCK).order_by(BLOCK.c.height))).all())


def check_header(block: Any, prev: Any | None) -> list[Finding]:
    """A block's link to the one before and its root, recomputed from its header."""
    found = []
    h = block.height
    expected_height = 1 if prev is None else prev.height + 1
    expected_prev = hashing.GENESIS_ROOT if prev is None else prev.root
    expected_first = 1 if prev is None else prev.last_seq + 1
    if h != expected_height:
        found.append(
            Finding(
                FindingKind.CHAIN_BROKEN,
                f"区块 {expected_height}"
                f"{'' if h == expected_height + 1 else f' 至 {h - 1}'} 不存在"
                f"（下一个区块为 {h}）",
                block_height=h,
            )
        )
    if block.prev_root != expected_prev:
        found.append(
            Finding(
                FindingKind.CHAIN_BROKEN,
                f"区块 {h} 记录的上一区块根与区块 {expected_height - 1} 的根不一致",
                block_height=h,
            )
        )
    if block.first_seq != expected_first:
        found.append(
            Finding(
                FindingKind.CHAIN_BROKEN,
                f"区块 {h} 的序号从 {block.first_seq} 开始，应为 {expected_first}",
                block_height=h,
            )
        )
    if block.content_version not in hashing.CONTENT_COLUMNS:
        found.append(
            Finding(
                FindingKind.ROOT_MISMATCH,
                f"区块 {h} 的内容版本 {block.content_version} 未知",
                block_height=h,
            )
        )
        return found
    root = hashing.block_root(
        height=h,
        prev_root=block.prev_root,
        merkle_root=block.merkle_root,
        first_seq=block.first_seq,
        entry_count=block.entry_count,
        high_water=block.high_water,
        sealed_at=block.sealed_at,
        content_version=block.content_version,
    )
    if root != block.root:
        found.append(
            Finding(
                FindingKind.ROOT_MISMATCH,
                f"区块 {h} 的根哈希与其区块头重新计算的结果不符",
                block_height=h,
            )
        )
    return found


async def block_rows(*, db: AsyncSession, block: Any) -> list[Any]:
    """A block's entries in seq order, each with the current content of its rating (or None)."""
    if block.content_version not in hashing.CONTENT_COLUMNS:
        return []
    return list(
        (
            await db.execute(
                select(
                    ENTRY.c.seq,
                    ENTRY.c.evaluation_id,
                    ENTRY.c.block_height,
                    ENTRY.c.content_hash,
                    *content_columns(block.content_version),
                )
                .select_from(ENTRY.outerjoin(EVALUATION, EVALUATION.c.id == ENTRY.c.evaluation_id))
                .where(ENTRY.c.seq.between(block.first_seq, block.last_seq))
                .order_by(ENTRY.c.seq)
            )
        ).all()
    )


class ArchivedSource(Protocol):
    """Where ratings archived out of the table are found again (archive/service.py)."""

    def __call__(self, ids: set[int], version: int) -> dict[int, list[Any]]:
        """The content values (in `version`'s column order) of those of `ids` it holds."""
        ...


def with_archived(rows: list[Any], *, block: Any, archived: ArchivedSource) -> list[Any]:
    """A block's rows (`block_rows`) with the content of each rating no longer in the table
    taken from the archive, where it holds it: an archived month verifies like a live one."""
    gone = {r[1] for r in rows if r[4] is None}
    if not gone or block.content_version not in hashing.CONTENT_COLUMNS:
        return rows
    found = archived(gone, block.content_version)
    return [(*r[:4], *found[r[1]]) if r[4] is None and r[1] in found else r for r in rows]


async def check_block(*, db: AsyncSession, block: Any) -> BlockCheck:
    """Recompute every entry of a block from the current rows, then its Merkle root."""
    return await check_rows(block=block, rows=await block_rows(db=db, block=block))


async def check_rows(*, block: Any, rows: list[Any]) -> BlockCheck:
    """Check a block against its entries and their ratings as read by `block_rows`."""
    result = BlockCheck()
    h = block.height
    version = block.content_version
    if version not in hashing.CONTENT_COLUMNS:
        return result
    result.entries = len(rows)
    present = [r[4:] for r in rows if r[4] is not None]
    current = iter(await hash_rows(present, version))
    expected_seq = block.first_seq
    prev_id: int | None = None
    for row in rows:
        seq, evaluation_id, height, stored, found_id = row[0], row[1], row[2], row[3], row[4]
        if seq != expected_seq:
            result.findings.extend(
                _entries_missing(h, expected_seq, seq - 1, prev_id, evaluation_id)
            )
        expected_seq = seq + 1
        prev_id = evaluation_id
        if height != h:
            result.findings.append(
                Finding(
                    FindingKind.ENTRY_FORGED,
                    f"评价 {evaluation_id} 的账本条目（序号 {seq}）"
                    f"位于区块 {h} 的序号范围内，却记为区块 {height}",
                    evaluation_id=evaluation_id,
                    block_height=h,
                )
            )
        if found_id is None:
            result.findings.append(
                Finding(
                    FindingKind.MISSING,
                    f"评价 {evaluation_id} 已封存于区块 {h}，但评价记录已不存在",
                    evaluation_id=evaluation_id,
                    block_height=h,
                )
            )
        elif next(current) != stored:
            result.findings.append(
                Finding(
                    FindingKind.ALTERED,
                    f"评价 {evaluation_id} 的当前内容与区块 {h} 封存时的哈希不符",
                    evaluation_id=evaluation_id,
                    block_height=h,
                )
            )
    if expected_seq <= block.last_seq:
        result.findings.extend(_entries_missing(h, expected_seq, block.last_seq, prev_id, None))
    if not rows or hashing.merkle_root([r[3] for r in rows]) != block.merkle_root:
        result.findings.append(
            Finding(
                FindingKind.BLOCK_ALTERED,
                f"区块 {h} 的账本条目与其默克尔根不符（条目被改动、删除或增加）",
                block_height=h,
            )
        )
    return result


def _entries_missing(
    height: int, first: int, last: int, before_id: int | None, after_id: int | None
) -> list[Finding]:
    where = []
    if before_id is not None:
        where.append(f"评价 {before_id} 之后")
    if after_id is not None:
        where.append(f"评价 {after_id} 之前")
    between = f"（{'、'.join(where)}）" if where else ""
    seqs = f"序号 {first}" if first == last else f"序号 {first} 至 {last}"
    return [
        Finding(
            FindingKind.ENTRY_MISSING,
            f"区块 {height} 缺少账本条目：{seqs}{between}",
            block_height=height,
        )
    ]


async def forged_entries(db: AsyncSession) -> list[Finding]:
    """Entries outside every block: no such block, or a seq outside their block's range."""
    rows = (
        await db.execute(
            select(ENTRY.c.evaluation_id, ENTRY.c.seq, ENTRY.c.block_height)
            .select_from(ENTRY.outerjoin(BLOCK, BLOCK.c.height == ENTRY.c.block_height))
            .where(
                or_(
                    BLOCK.c.height.is_(None),
                    ENTRY.c.seq < BLOCK.c.first_seq,
                    ENTRY.c.seq > BLOCK.c.last_seq,
                )
            )
            .order_by(ENTRY.c.seq)
        )
    ).all()
    return [
        Finding(
            FindingKind.ENTRY_FORGED,
            f"评价 {eid} 的账本条目（序号 {seq}）不在区块 {height} 的范围内",
            evaluation_id=eid,
            block_height=height,
        )
        for eid, seq, height in rows
    ]


async def unsealed(db: AsyncSession, *, at_or_below: int) -> tuple[list[int], int]:
    """Unsealed ratings at or below the watermark (ids), and how many wait above it."""
    not_sealed = ~exists().where(ENTRY.c.evaluation_id == EVALUATION.c.id)
    below = list(
        (
            await db.execute(
                select(EVALUATION.c.id)
                .where(EVALUATION.c.id <= at_or_below, not_sealed)
                .order_by(EVALUATION.c.id)
            )
        ).scalars()
    )
    pending = (
        await db.execute(
            select(func.count())
            .select_from(EVALUATION)
            .where(EVALUATION.c.id > at_or_below, not_sealed)
        )
    ).scalar_one()
    return below, pending


def inserted_findings(ids: list[int], watermark_id: int) -> list[Finding]:
    """Findings for ratings that sit below the watermark without an entry."""
    return [
        Finding(
            FindingKind.INSERTED,
            f"评价 {i} 位于已封存范围内（≤ {watermark_id}）却没有封存记录：疑似事后插入",
            evaluation_id=i,
        )
        for i in ids
    ]


def watermark_of(blocks: Sequence[Any], *, now: datetime, grace: timedelta = GRACE) -> int:
    """The watermark computed from block headers already loaded (as `watermark` does)."""
    for block in reversed(blocks):
        if block.sealed_at < now - grace:
            return block.high_water
    return 0


async def current_hash(db: AsyncSession, evaluation_id: int, version: int) -> bytes | None:
    """The content hash of a rating as stored now, or None when the row is gone."""
    row = (
        await db.execute(select(*content_columns(version)).where(EVALUATION.c.id == evaluation_id))
    ).first()
    return None if row is None else hashing.content_hashes([row], version)[0]


async def proof(*, db: AsyncSession, evaluation_id: int) -> dict[str, Any]:
    """A rating's entry, its block and the Merkle audit path from its hash to the root."""
    entry = await db.get(LedgerEntry, evaluation_id)
    if entry is None:
        if await db.get(Evaluation, evaluation_id) is None:
            raise NotFound(
                "评价不存在",
                code="evaluation_not_found",
                details=[{"field": "evaluation_id", "value": evaluation_id}],
            )
        raise NotFound(
            "该评价尚未封存（新评价一般在几分钟内封存），请稍后再查",
            code="evaluation_not_sealed",
            details=[{"field": "evaluation_id", "value": evaluation_id}],
        )
    block = await db.get(LedgerBlock, entry.block_height)
    if block is None:
        raise NotFound("该评价所在的区块不存在", code="ledger_block_not_found")
    seqs_hashes = (
        await db.execute(
            select(ENTRY.c.seq, ENTRY.c.content_hash)
            .where(ENTRY.c.seq.between(block.first_seq, block.last_seq))
            .order_by(ENTRY.c.seq)
        )
    ).all()
    leaves = [h for _, h in seqs_hashes]
    index = next((i for i, (seq, _) in enumerate(seqs_hashes) if seq == entry.seq), None)
    if index is None:
        raise Conflict(
            "该评价的存证记录与所在区块不一致，请运行账本校验",
            code="ledger_inconsistent",
            details=[{"field": "evaluation_id", "value": evaluation_id}],
        )
    path = hashing.merkle_path(leaves, index)
    now_hash = await current_hash(db, evaluation_id, block.content_version)
    return {
        "evaluation_id": evaluation_id,
        "seq": entry.seq,
        "content_hash": entry.content_hash.hex(),
        "content_version": block.content_version,
        "content_columns": list(hashing.CONTENT_COLUMNS[block.content_version]),
        "current_content_hash": now_hash.hex() if now_hash is not None else None,
        "content_matches": now_hash == entry.content_hash,
        "leaf_index": index,
        "audit_path": [{"side": side, "hash": h.hex()} for side, h in path],
        "merkle_root_from_path": hashing.root_from_path(entry.content_hash, path).hex(),
        "block": block_read(block),
    }


def block_read(block: Any) -> dict[str, Any]:
    """A block header as the API and the page show it (hashes in hex)."""
    return {
        "height": block.height,
        "root": block.root.hex(),
        "prev_root": block.prev_root.hex(),
        "merkle_root": block.merkle_root.hex(),
        "first_seq": block.first_seq,
        "last_seq": block.last_seq,
        "entry_count": block.entry_count,
        "high_water": block.high_water,
        "content_version": block.content_version,
        "sealed_at": block.sealed_at,
    }


@dataclass(frozen=True)
class Recomputed:
    """One value the server recomputed for a proof page, and what it must equal."""

    label: str
    computed: str | None
    expected: str
    ok: bool


def recompute_root(block: Any) -> bytes:
    """A block's root, recomputed from its header."""
    return hashing.block_root(
        height=block.height,
        prev_root=block.prev_root,
        merkle_root=block.merkle_root,
        first_seq=block.first_seq,
        entry_count=block.entry_count,
        high_water=block.high_water,
        sealed_at=block.sealed_at,
        content_version=block.content_version,
    )


async def header_checks(*, db: AsyncSession, block: Any) -> list[Recomputed]:
    """What the server recomputes of a block: its root from its header, and its link to the
    block before (the first block's link is 32 zero bytes)."""
    root = recompute_root(block)
    checks = [
        Recomputed(
            f"由区块 {block.height} 的区块头各字段计算的区块根，与公布的区块根",
            root.hex(),
            block.root.hex(),
            root == block.root,
        )
    ]
    if block.height == 1:
        checks.append(
            Recomputed(
                "区块 1 是第一个区块：其记录的上一区块根应为 64 个 0",
                block.prev_root.hex(),
                hashing.GENESIS_ROOT.hex(),
                block.prev_root == hashing.GENESIS_ROOT,
            )
        )
        return checks
    before = await db.get(LedgerBlock, block.height - 1)
    checks.append(
        Recomputed(
            f"区块 {block.height} 记录的上一区块根，与区块 {block.height - 1} 公布的根",
            before.root.hex() if before is not None else None,
            block.prev_root.hex(),
            before is not None and before.root == block.prev_root,
        )
    )
    return checks


async def check_proof(
    *, db: AsyncSession, evaluation_id: int
) -> tuple[dict[str, Any], list[Recomputed]]:
    """A rating's proof and what the server recomputed to check it: the rating's content
    hash, the Merkle root from its audit path, then the block's header checks."""
    found = await proof(db=db, evaluation_id=evaluation_id)
    block = await db.get(LedgerBlock, found["block"]["height"])
    assert block is not None  # proof() found it
    steps = len(found["audit_path"])
    checks = [
        Recomputed(
            "评价的当前内容重新计算的 SM3 内容哈希，与封存时记录的内容哈希",
            found["current_content_hash"],
            found["content_hash"],
            bool(found["content_matches"]),
        ),
        Recomputed(
            f"从内容哈希出发、沿 {steps} 步审计路径逐层计算的默克尔根，"
            f"与区块 {block.height} 的默克尔根",
            found["merkle_root_from_path"],
            block.merkle_root.hex(),
            found["merkle_root_from_path"] == block.merkle_root.hex(),
        ),
    ]
    return found, checks + await header_checks(db=db, block=block)
