"""Migration 0012: identity hashes written before the canonical form are re-hashed from the
encrypted originals (cases, ratings not yet sealed, the register); sealed ratings keep theirs."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import uuid
from datetime import timedelta

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import select, text

from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.cases.models import Case
from haochaping.db.crypto import PREFIX, DataKeys
from haochaping.evaluations.models import Evaluation
from haochaping.ledger.models import LedgerEntry
from tests import factories
from tests.append_only import unguarded
from tests.integrity.conftest import T0

MIGRATION = (
    __import__("pathlib").Path(__file__).resolve().parents[2]
    / "src/haochaping/db/migrations/versions/0012_detect.py"
)


def _load():
    spec = importlib.util.spec_from_file_location("migration_0012", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_hash(secret: str, value: str) -> str:
    """The hash as it was taken before: spaces, dashes, brackets dropped, upper case."""
    key = hashlib.new("sm3", b"haochaping-identity-v1:" + secret.encode()).digest()
    plain = "".join(ch for ch in value if ch not in " -()（）").upper()
    return hmac.new(key, plain.encode(), "sm3").hexdigest()


async def test_old_hashes_are_rehashed_except_sealed_ratings(db, build, settings):
    phone = "+8613655550000"
    rows = await build.store(
        [build.spec(at=T0 + timedelta(minutes=k), rater_phone=phone) for k in range(2)]
    )
    ids = [r["id"] for r in rows]
    canonical = (
        await db.execute(select(Evaluation.rater_phone_hash).where(Evaluation.id == ids[0]))
    ).scalar_one()
    stale = old_hash(settings.secret_key, phone)
    assert stale != canonical
    # The database as 0011 left it: hashes of the number as written.
    async with unguarded(db, "evaluation"):
        await db.execute(
            text("UPDATE evaluation SET rater_phone_hash = :h WHERE id IN (:a, :b)"),
            {"h": stale, "a": ids[0], "b": ids[1]},
        )
    case_ids = [r["case_id"] for r in rows]
    await db.execute(
        text("UPDATE service_case SET applicant_phone_hash = :h WHERE id IN (:a, :b)"),
        {"h": stale, "a": case_ids[0], "b": case_ids[1]},
    )
    # The second rating is sealed into the ledger.
    db.add(
        LedgerEntry(
            evaluation_id=ids[1],
            seq=10**12 + uuid.uuid4().int % 10**9,
            block_height=10**12,
            content_hash=bytes(32),
        )
    )
    await db.flush()
    await _run_upgrade(db)
    hashes = dict(
        (
            await db.execute(
                select(Evaluation.id, Evaluation.rater_phone_hash).where(Evaluation.id.in_(ids))
            )
        ).all()
    )
    assert hashes == {ids[0]: canonical, ids[1]: stale}  # the sealed one as it was sealed
    cases = (
        (await db.execute(select(Case.applicant_phone_hash).where(Case.id.in_(case_ids))))
        .scalars()
        .all()
    )
    assert cases == [canonical, canonical]


async def _run_upgrade(db) -> None:
    migration = _load()
    connection = await db.connection()

    def upgrade(sync_conn):
        with Operations.context(MigrationContext.configure(sync_conn)):
            migration.upgrade()

    # A database at 0011 had no append-only triggers on SQLite (they came with 0025).
    async with unguarded(db, "evaluation"):
        await connection.run_sync(upgrade)


async def _register_entry(db, rating: dict, digest: str) -> MaliciousRater:
    """The register entry an upheld appeal against `rating` made for its rater's phone."""
    order = await factories.add_work_order(
        db, await db.get(Evaluation, rating["id"]), state="closed"
    )
    appeal = Appeal(
        work_order_id=order.id,
        evaluation_id=rating["id"],
        org_id=rating["org_id"],
        category="malicious",
        reasons="恶意差评",
        state="upheld",
        from_state="verifying",
        filed_by="unit",
        filed_at=T0,
        decide_due_at=T0 + timedelta(days=5),
        decided_by="office",
        decided_at=T0 + timedelta(days=1),
        register_rater=True,
    )
    db.add(appeal)
    await db.flush()
    entry = MaliciousRater(
        identity_hash=digest,
        kind="phone",
        appeal_id=appeal.id,
        org_id=rating["org_id"],
        masked="136****0001",
        expires_at=T0 + timedelta(days=180),
        created_by="office",
        created_at=T0 + timedelta(days=1),
    )
    db.add(entry)
    await db.flush()
    return entry


async def test_register_entries_are_rehashed_from_the_rated_evaluation(db, build, settings):
    written = "+86 136-5555-0001"
    rated, unreadable_rating = await build.store(
        [build.spec(at=T0 + timedelta(minutes=k), level=1, rater_phone=written) for k in range(2)]
    )
    keys = DataKeys.from_settings(settings)
    canonical = keys.identity_hash(written, "phone")
    stale = old_hash(settings.secret_key, written)
    assert stale != canonical
    entry = await _register_entry(db, rated, stale)
    # A rater number encrypted under a data key this process was not given.
    lost = await _register_entry(db, unreadable_rating, stale)
    async with unguarded(db, "evaluation"):
        await db.execute(
            text("UPDATE evaluation SET rater_phone = :p WHERE id = :id"),
            {"p": f"{PREFIX}gone:AAAA", "id": unreadable_rating["id"]},
        )

    await _run_upgrade(db)

    register = dict(
        (
            await db.execute(
                select(MaliciousRater.id, MaliciousRater.identity_hash).where(
                    MaliciousRater.id.in_([entry.id, lost.id])
                )
            )
        ).all()
    )
    assert register == {entry.id: canonical, lost.id: stale}
    # The entry now matches a new rating from the number written plainly.
    (fresh,) = await build.store(
        [build.spec(at=T0 + timedelta(hours=1), rater_phone="13655550001")]
    )
    fresh_hash = (
        await db.execute(select(Evaluation.rater_phone_hash).where(Evaluation.id == fresh["id"]))
    ).scalar_one()
    assert fresh_hash == register[entry.id]
