"""Sealing and verification on the test database (SQLite or PostgreSQL): tampering by direct
UPDATE, DELETE and INSERT is named by rating id; the hash chain catches edits to the ledger."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from haochaping import scheduler
from haochaping.core.timeutil import utcnow
from haochaping.db.session import make_sessionmaker
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing, jobs, service
from haochaping.ledger.models import LedgerBlock, LedgerEntry
from haochaping.ledger.service import FindingKind
from tests import factories
from tests.ledger.conftest import LATER, EvaluationRowFactory, add_ratings, tamper


async def seal(sessionmaker, **kw):
    return await jobs.seal_pending(sessionmaker, **kw)


async def verify(sessionmaker, **kw):
    return await jobs.verify(sessionmaker, now=utcnow() + LATER, **kw)


async def entry_of(db, evaluation_id: int) -> LedgerEntry | None:
    return await db.get(LedgerEntry, evaluation_id)


async def test_sealed_ratings_verify_clean(db, sessionmaker, world):
    ids = await add_ratings(db, 7)
    report = await seal(sessionmaker, block_size=3)
    assert report.ratings >= 7 and report.blocks >= 3
    entries = [await entry_of(db, i) for i in ids]
    assert all(e is not None for e in entries)
    # Sealed in id order: seq follows the ids.
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    result = await verify(sessionmaker)
    assert result.ok, result.lines()
    assert result.entries >= 7 and result.blocks >= 3
    assert result.lines()[-1] == "结论：校验通过"


async def test_ratings_stored_through_the_api_verify_clean(client, db, sessionmaker, world):
    case = await factories.make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        headers=factories.key_headers(world),
        json=factories.EvaluationPayloadFactory(
            case_no=case["case_no"],
            level=2,
            reasons=["209"],
            comment="窗口人员态度生硬，电话 13812345678",
        ),
    )
    assert r.status_code == 201, r.text
    await seal(sessionmaker)
    assert await entry_of(db, r.json()["id"]) is not None
    result = await verify(sessionmaker)
    assert result.ok, result.lines()


async def test_blocks_sealed_before_encryption_still_verify(db, sessionmaker, world, monkeypatch):
    """Content version 1 hashed identifiers in the clear; they are encrypted at rest now."""
    monkeypatch.setattr(hashing, "CONTENT_VERSION", 1)
    [rid] = await add_ratings(db, 1, rater_phone="13912345678")
    await seal(sessionmaker)
    monkeypatch.undo()
    row = await db.get(Evaluation, rid)
    plain = [getattr(row, name) for name in hashing.CONTENT_COLUMNS[1]]
    assert "13912345678" in plain
    assert (await entry_of(db, rid)).content_hash == hashing.content_hashes([plain], 1)[0]
    stored = (
        await db.execute(text("SELECT rater_phone FROM evaluation WHERE id = :id"), {"id": rid})
    ).scalar_one()
    assert stored != "13912345678"  # encrypted at rest
    await add_ratings(db, 1)
    await seal(sessionmaker)  # current version from here on
    result = await verify(sessionmaker)
    assert result.ok, result.lines()


async def test_second_seal_adds_nothing(db, sessionmaker, world):
    await add_ratings(db, 4)
    await seal(sessionmaker)
    blocks = (await db.execute(select(func.count()).select_from(LedgerBlock))).scalar_one()
    entries = (await db.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
    again = await seal(sessionmaker)
    assert again.blocks == 0 and again.ratings == 0
    assert str(again) == "没有需要封存的新评价"
    assert (await db.execute(select(func.count()).select_from(LedgerBlock))).scalar_one() == blocks
    assert (await db.execute(select(func.count()).select_from(LedgerEntry))).scalar_one() == entries


async def test_the_periodic_pass_seals_new_ratings(app, db, world):
    ids = await add_ratings(db, 3)
    await scheduler.run_pass(app.state)
    assert all([await entry_of(db, i) for i in ids])


async def test_updated_level_is_named_as_altered(db, sessionmaker, world):
    ids = await add_ratings(db, 5, level=2)
    await seal(sessionmaker)
    await tamper(
        db,
        "evaluation",
        "UPDATE evaluation SET level = 5, reasons = '[\"517\"]' WHERE id = :id",
        id=ids[2],
    )
    result = await verify(sessionmaker)
    assert result.ids(FindingKind.ALTERED) == [ids[2]]
    assert not result.ok
    assert any(f"评价 {ids[2]} 的当前内容" in line and "篡改：" in line for line in result.lines())
    assert result.lines()[-1].startswith("结论：校验未通过（篡改 1")


async def test_deleted_rating_is_named_as_missing(db, sessionmaker, world):
    ids = await add_ratings(db, 5, level=5)
    await seal(sessionmaker)
    await tamper(db, "evaluation", "DELETE FROM evaluation WHERE id = :id", id=ids[1])
    result = await verify(sessionmaker)
    assert result.ids(FindingKind.MISSING) == [ids[1]]
    assert result.ids(FindingKind.ALTERED) == []


async def test_rating_inserted_inside_the_sealed_range_is_named(db, sessionmaker, world):
    ids = await add_ratings(db, 4)
    await seal(sessionmaker)
    free = await _free_id_below(db, max(ids))
    row = EvaluationRowFactory(
        id=free,
        org_id=(await db.get(Evaluation, ids[0])).org_id,
        region_code="330102",
        level=5,
        comment="补录的好评",
    )
    await tamper(db, "evaluation", insert(Evaluation).values(row))
    result = await verify(sessionmaker)
    assert result.ids(FindingKind.INSERTED) == [free]
    assert not result.ok


async def test_a_new_rating_above_the_sealed_range_is_just_pending(db, sessionmaker, world):
    await add_ratings(db, 2)
    await seal(sessionmaker)
    [late] = await add_ratings(db, 1)
    result = await verify(sessionmaker)
    assert result.ok and result.pending >= 1
    assert late not in result.ids(FindingKind.INSERTED)
    await seal(sessionmaker)
    assert await entry_of(db, late) is not None


async def test_rewriting_rating_and_entry_together_breaks_the_merkle_root(db, sessionmaker, world):
    ids = await add_ratings(db, 6, level=1, comment="多次往返仍未办成")
    await seal(sessionmaker)
    victim = ids[3]
    await tamper(db, "evaluation", "UPDATE evaluation SET level = 5 WHERE id = :id", id=victim)
    # The attacker also recomputes the rating's content hash, so the rating itself matches ...
    version = hashing.CONTENT_VERSION
    new_hash = await service.current_hash(db, victim, version)
    await tamper(
        db,
        "ledger_entry",
        "UPDATE ledger_entry SET content_hash = :h WHERE evaluation_id = :id",
        h=new_hash,
        id=victim,
    )
    result = await verify(sessionmaker)
    assert result.ids(FindingKind.ALTERED) == []
    # ... but the block it was sealed in no longer adds up.
    height = (await entry_of(db, victim)).block_height
    assert [f.block_height for f in result.findings if f.kind == FindingKind.BLOCK_ALTERED] == [
        height
    ]


async def test_edited_block_root_breaks_the_chain(db, sessionmaker, world):
    await add_ratings(db, 6)
    await seal(sessionmaker, block_size=2)
    head = await service.head(db)
    target = head.height - 1
    await tamper(
        db,
        "ledger_block",
        "UPDATE ledger_block SET root = :r WHERE height = :h",
        r=bytes(32),
        h=target,
    )
    result = await verify(sessionmaker)
    kinds = {(f.kind, f.block_height) for f in result.findings}
    assert (FindingKind.ROOT_MISMATCH, target) in kinds
    assert (FindingKind.CHAIN_BROKEN, target + 1) in kinds
    assert all(f.block_height in (target, target + 1) for f in result.findings)


async def test_deleted_entry_and_rating_are_found_by_the_gap(db, sessionmaker, world):
    ids = await add_ratings(db, 5)
    await seal(sessionmaker)
    victim = ids[2]
    seq = (await entry_of(db, victim)).seq
    await tamper(
        db, "ledger_entry", "DELETE FROM ledger_entry WHERE evaluation_id = :id", id=victim
    )
    await tamper(db, "evaluation", "DELETE FROM evaluation WHERE id = :id", id=victim)
    result = await verify(sessionmaker)
    gaps = [f for f in result.findings if f.kind == FindingKind.ENTRY_MISSING]
    assert len(gaps) == 1
    assert f"序号 {seq}" in gaps[0].message
    assert f"评价 {ids[1]} 之后" in gaps[0].message and f"评价 {ids[3]} 之前" in gaps[0].message
    assert FindingKind.BLOCK_ALTERED in {f.kind for f in result.findings}


async def test_forged_entry_hides_nothing(db, sessionmaker, world):
    ids = await add_ratings(db, 3)
    await seal(sessionmaker)
    free = await _free_id_below(db, max(ids))
    row = EvaluationRowFactory(
        id=free, org_id=(await db.get(Evaluation, ids[0])).org_id, region_code="330102"
    )
    await tamper(db, "evaluation", insert(Evaluation).values(row))
    head = await service.head(db)
    await tamper(
        db,
        "ledger_entry",
        "INSERT INTO ledger_entry VALUES (:id, :seq, :h, :c)",
        id=free,
        seq=head.last_seq + 1,
        h=head.height,
        c=bytes(32),
    )
    result = await verify(sessionmaker)
    assert result.ids(FindingKind.ENTRY_FORGED) == [free]


async def test_published_roots_are_compared(db, sessionmaker, world):
    await add_ratings(db, 2)
    await seal(sessionmaker)
    head = await service.head(db)
    assert (await verify(sessionmaker, anchors={head.height: head.root})).ok
    result = await verify(
        sessionmaker, anchors={head.height: bytes(32), head.height + 5: head.root}
    )
    assert [f.block_height for f in result.findings if f.kind == FindingKind.ANCHOR_MISMATCH] == [
        head.height,
        head.height + 5,
    ]


# --- PostgreSQL: the append-only triggers, and sealers beside each other and beside intake ---


async def test_postgresql_refuses_to_change_or_remove_ratings(pg_only, db, sessionmaker, world):
    ids = await add_ratings(db, 2)
    await seal(sessionmaker)
    conn = await db.connection()
    for sql in (
        f"UPDATE evaluation SET level = 5 WHERE id = {ids[0]}",
        # A column added later (0023, the 12345 call id) is guarded like the others.
        f"UPDATE evaluation SET call_id = 'C-1' WHERE id = {ids[0]}",
        f"DELETE FROM evaluation WHERE id = {ids[0]}",
        "TRUNCATE evaluation CASCADE",
    ):
        with pytest.raises(DBAPIError, match="评价记录不可修改或删除"):
            async with conn.begin_nested():
                await conn.execute(text(sql))
    for sql in (
        f"UPDATE ledger_entry SET seq = seq WHERE evaluation_id = {ids[0]}",
        f"DELETE FROM ledger_entry WHERE evaluation_id = {ids[0]}",
        "UPDATE ledger_block SET root = root",
        "DELETE FROM ledger_block",
        "TRUNCATE ledger_entry",
    ):
        with pytest.raises(DBAPIError, match="存证账本不可修改或删除"):
            async with conn.begin_nested():
                await conn.execute(text(sql))
    assert (await db.get(Evaluation, ids[0])).level is not None
    assert (await verify(sessionmaker)).ok


async def test_two_sealers_at_once_do_not_fork_the_chain(pg_only, engine):
    maker = make_sessionmaker(engine)
    suffix = f"-{uuid.uuid4().hex[:6]}"
    async with maker() as db:
        await factories.build_world(db, suffix=suffix)
        await db.commit()
        ids = await add_ratings(db, 30, org_code=f"HALL-A{suffix}")
    reports = await asyncio.gather(seal(maker, block_size=4), seal(maker, block_size=4))
    async with maker() as db:
        entries = (
            (await db.execute(select(LedgerEntry).where(LedgerEntry.evaluation_id.in_(ids))))
            .scalars()
            .all()
        )
        heights = sorted((await db.execute(select(LedgerBlock.height))).scalars())
    assert sorted(e.evaluation_id for e in entries) == ids
    assert sum(r.ratings for r in reports) >= 30
    assert heights == list(range(1, len(heights) + 1))
    result = await jobs.verify(maker)
    assert [
        f
        for f in result.findings
        if f.kind
        in (FindingKind.CHAIN_BROKEN, FindingKind.ROOT_MISMATCH, FindingKind.BLOCK_ALTERED)
    ] == []
    assert set(ids).isdisjoint(f.evaluation_id for f in result.findings)


async def test_intake_does_not_wait_for_a_sealer(pg_only, engine):
    maker = make_sessionmaker(engine)
    suffix = f"-{uuid.uuid4().hex[:6]}"
    async with maker() as db:
        await factories.build_world(db, suffix=suffix)
        await db.commit()
        await add_ratings(db, 3, org_code=f"HALL-A{suffix}")
    async with maker() as sealer:
        sealed = await service.seal_block(db=sealer)  # holds the head lock, not committed
        assert sealed is not None
        async with maker() as intake:
            stored = await asyncio.wait_for(
                add_ratings(intake, 2, org_code=f"HALL-A{suffix}"), timeout=5
            )
        await sealer.commit()
    assert len(stored) == 2


# --- helpers -------------------------------------------------------------------------------


async def _free_id_below(db, top: int) -> int:
    """An id below `top` that no rating has (rolled-back inserts leave such gaps)."""
    taken = set((await db.execute(select(Evaluation.id).where(Evaluation.id < top))).scalars())
    free = next((i for i in range(top - 1, 0, -1) if i not in taken), None)
    return free if free is not None else 0
