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

from haochaping.cases.models import Case
from haochaping.evaluations.models import Evaluation
from haochaping.ledger.models import LedgerEntry
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
    pg = db.bind.dialect.name == "postgresql"
    # The database as 0011 left it: hashes of the number as written.
    if pg:
        await db.execute(text("ALTER TABLE evaluation DISABLE TRIGGER evaluation_append_only"))
    await db.execute(
        text("UPDATE evaluation SET rater_phone_hash = :h WHERE id IN (:a, :b)"),
        {"h": stale, "a": ids[0], "b": ids[1]},
    )
    if pg:
        await db.execute(text("ALTER TABLE evaluation ENABLE TRIGGER evaluation_append_only"))
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
    migration = _load()
    connection = await db.connection()

    def upgrade(sync_conn):
        with Operations.context(MigrationContext.configure(sync_conn)):
            migration.upgrade()

    await connection.run_sync(upgrade)
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
