"""`archive export` / `read` / `verify`, and the ledger verified across an archived range."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from sqlalchemy import select, text

from haochaping.archive import service as archive_service
from haochaping.core.auth import Principal
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing
from haochaping.ledger import jobs as ledger_jobs
from haochaping.ledger.service import FindingKind
from haochaping.orgs.models import Region
from haochaping.policies import service as policy_service
from haochaping.policies.schemas import PolicyCreate, PolicyValuesPatch
from tests.append_only import unguarded
from tests.ledger.conftest import LATER, add_ratings

# China time: 2021-10-31 23:30 +08:00 is still October, 2021-11-01 00:10 +08:00 November.
OCT_LAST = datetime(2021, 10, 31, 15, 30, tzinfo=UTC)
NOV_FIRST = datetime(2021, 10, 31, 16, 10, tzinfo=UTC)
DEC = datetime(2021, 12, 20, 2, 0, tzinfo=UTC)
ADMIN = Principal(kind="user", id=0, name="admin", org_id=0, org_path="/", role="admin")


@pytest.fixture
async def old_ratings(db, world):
    """Two ratings of October 2021, three of November, one of December (China time)."""
    ids = {}
    ids["oct"] = await add_ratings(db, 2, received_at=OCT_LAST, evaluated_at=OCT_LAST)
    ids["nov"] = await add_ratings(
        db, 3, received_at=NOV_FIRST, evaluated_at=NOV_FIRST - timedelta(minutes=5)
    )
    ids["dec"] = await add_ratings(db, 1, received_at=DEC, evaluated_at=DEC)
    return ids


async def verify(sessionmaker, **kw):
    return await ledger_jobs.verify(sessionmaker, now=datetime.now(UTC) + LATER, **kw)


async def test_export_writes_a_file_per_month_with_its_manifest(
    db, sessionmaker, old_ratings, tmp_path
):
    await ledger_jobs.seal_pending(sessionmaker)
    out = tmp_path / "archive"
    manifest = await archive_service.export(db=db, before=date(2021, 12, 1), out=out)
    assert [(f.file, f.ratings, f.sealed) for f in manifest.files] == [
        ("evaluation-2021-10.parquet", 2, 2),
        ("evaluation-2021-11.parquet", 3, 3),
    ]
    written = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert written["before"] == "2021-12" and written["format"] == "haochaping-archive-1"
    assert [f["first_id"] for f in written["files"]] == [
        old_ratings["oct"][0],
        old_ratings["nov"][0],
    ]
    assert written["files"][1]["sm3"] == archive_service.file_digest(
        out / written["files"][1]["file"]
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "evaluation-2021-10.parquet",
        "evaluation-2021-11.parquet",
        "manifest.json",
    ]
    # Read back: the rows as stored, identifiers still ciphertext, the ledger's hash beside.
    records = list(archive_service.read_records(out / "evaluation-2021-11.parquet"))
    assert [r["id"] for r in records] == old_ratings["nov"]
    stored = (
        await db.execute(
            text("SELECT rater_phone, level, reasons FROM evaluation WHERE id = :id"),
            {"id": records[0]["id"]},
        )
    ).one()
    assert records[0]["rater_phone"] == stored[0] and stored[0].startswith("hcp1:")
    assert records[0]["level"] == stored[1]
    assert records[0]["received_at"] == NOV_FIRST
    assert records[0]["reasons"] == (
        json.loads(stored[2]) if isinstance(stored[2], str) else stored[2]
    )
    version = records[0]["ledger_version"]
    digest = hashing.content_hashes([archive_service.content_values(records[0], version)], version)
    assert digest[0] == records[0]["ledger_hash"]
    check = await archive_service.verify_archive(db=db, folder=out)
    assert check.ok, check.problems
    assert (check.files, check.ratings, check.sealed) == (2, 5, 5)
    # Nothing left the database: ratings are append-only.
    count = (
        await db.execute(select(Evaluation.id).where(Evaluation.id.in_(old_ratings["oct"])))
    ).all()
    assert len(count) == 2


async def test_export_refuses_a_folder_that_has_an_archive(db, old_ratings, tmp_path):
    await archive_service.export(db=db, before=date(2021, 11, 1), out=tmp_path)
    with pytest.raises(archive_service.ArchiveError, match="已有归档清单"):
        await archive_service.export(db=db, before=date(2021, 11, 1), out=tmp_path)
    with pytest.raises(archive_service.ArchiveError, match="YYYY-MM"):
        archive_service.parse_month("2021/11")


async def test_an_altered_archive_file_is_caught(db, sessionmaker, old_ratings, tmp_path):
    await ledger_jobs.seal_pending(sessionmaker)
    await archive_service.export(db=db, before=date(2021, 12, 1), out=tmp_path)
    path = tmp_path / "evaluation-2021-10.parquet"
    table = pq.read_table(path)
    levels = table.column("level").to_pylist()
    levels[0] = 1 if levels[0] != 1 else 5
    index = table.schema.get_field_index("level")
    field = table.schema.field(index)
    pq.write_table(table.set_column(index, field, pa.array(levels, type=field.type)), path)
    check = await archive_service.verify_archive(db=db, folder=tmp_path)
    assert not check.ok
    assert any("SM3 摘要与清单不符" in p for p in check.problems)
    assert any(f"评价 {old_ratings['oct'][0]} 的归档内容" in p for p in check.problems)


async def test_the_ledger_verifies_across_an_archived_range(
    db, sessionmaker, old_ratings, tmp_path
):
    await ledger_jobs.seal_pending(sessionmaker)
    await archive_service.export(db=db, before=date(2021, 12, 1), out=tmp_path)
    gone = old_ratings["oct"] + old_ratings["nov"]
    # The archived months leave the table (a detached partition on PostgreSQL).
    async with unguarded(db, "evaluation", all_triggers=True):
        await db.execute(text(f"DELETE FROM evaluation WHERE id IN ({', '.join(map(str, gone))})"))
    await db.commit()
    without = await verify(sessionmaker)
    assert sorted(without.ids(FindingKind.MISSING)) == sorted(gone)
    archived = archive_service.ArchivedRatings(tmp_path)
    result = await verify(sessionmaker, archived=archived)
    assert result.ok, result.lines()
    # An archive whose record differs from what was sealed does not vouch for it.
    path = tmp_path / "evaluation-2021-11.parquet"
    table = pq.read_table(path)
    comments = table.column("comment").to_pylist()
    comments[1] = "改过的评价内容"
    index = table.schema.get_field_index("comment")
    field = table.schema.field(index)
    pq.write_table(table.set_column(index, field, pa.array(comments, type=field.type)), path)
    result = await verify(sessionmaker, archived=archive_service.ArchivedRatings(tmp_path))
    assert result.ids(FindingKind.ALTERED) == [old_ratings["nov"][1]]


async def test_without_a_month_the_longest_retention_in_force_decides(db, world):
    today = date(2026, 12, 6)
    with pytest.raises(archive_service.ArchiveError, match="未设置评价在线保留期限"):
        await archive_service.retention_before(db=db, today=today)
    roots = (await db.execute(select(Region.code).where(Region.parent_code.is_(None)))).scalars()
    for code in list(roots):
        await policy_service.create_policy(
            db=db,
            actor=ADMIN,
            data=PolicyCreate(
                region_code=code,
                effective_from=today,
                values=PolicyValuesPatch(retention_months=24),
            ),
        )
    await db.commit()
    assert await archive_service.retention_before(db=db, today=today) == date(2024, 12, 1)
    # A district keeping its ratings longer holds the whole table back (one table, one cut).
    child = (
        await db.execute(select(Region.code).where(Region.parent_code.is_not(None)).limit(1))
    ).scalar_one()
    await policy_service.create_policy(
        db=db,
        actor=ADMIN,
        data=PolicyCreate(
            region_code=child, effective_from=today, values=PolicyValuesPatch(retention_months=40)
        ),
    )
    await db.commit()
    assert await archive_service.retention_before(db=db, today=today) == date(2023, 8, 1)
    with pytest.raises(ValidationError):
        PolicyValuesPatch(retention_months=6)
