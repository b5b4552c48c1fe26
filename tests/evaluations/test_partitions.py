"""The ratings table partitioned by month on PostgreSQL (migration 0033): its shape, the keys
and once-rules kept in narrow tables by the insert trigger, partitions made ahead, DEFAULT
reported, and an archived month detached, verified from its archive and attached again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text

from haochaping.accounts.models import ApiClient
from haochaping.archive import service as archive_service
from haochaping.cases.models import Case as ServiceCase
from haochaping.core.models import AuditEvent
from haochaping.evaluations import partitions
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import jobs as ledger_jobs
from haochaping.ledger.service import FindingKind
from haochaping.orgs.models import Org
from tests.factories import make_case
from tests.ledger.conftest import LATER, EvaluationRowFactory, add_ratings

# Referencing tables and columns: each must point at evaluation_key on PostgreSQL.
REFERENCES = {
    "appeal",
    "evaluation_standing",
    "exchange_work_order",
    "inspection_visit",
    "integrity_flag",
    "ledger_entry",
    "spot_check",
    "standing_event",
    "work_order",
}
# 2023-11 in China time: 2023-10-31 16:00 UTC to 2023-11-30 16:00 UTC.
NOV_2023 = date(2023, 11, 1)
IN_NOV = datetime(2023, 10, 31, 16, 30, tzinfo=UTC)  # 2023-11-01 00:30 +08:00


@pytest.fixture
def pg(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite keeps one ratings table")


async def _scalar(db, sql: str, **params):
    return (await db.execute(text(sql), params)).scalar()


async def test_the_table_is_partitioned_by_month_with_the_months_ahead(db, pg):
    assert await _scalar(db, "SELECT relkind FROM pg_class WHERE relname = 'evaluation'") in (
        "p",
        b"p",
    )
    names = {p.name for p in await partitions.partitions(db) if p.attached}
    month = partitions.month_of(datetime.now(UTC))
    for _ in range(partitions.MONTHS_AHEAD + 1):
        assert partitions.name_of(month) in names
        month = partitions.next_month(month)
    assert await _scalar(
        db,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'evaluation'::regclass "
        "AND inhrelid = 'evaluation_default'::regclass",
    )
    # Bounds at 00:00 China time.
    this = partitions.name_of(partitions.month_of(datetime.now(UTC)))
    bound = await _scalar(
        db, f"SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = '{this}'"
    )
    assert "16:00:00+00" in bound
    # Every reference to a rating points at the key table.
    rows = (
        await db.execute(
            text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid IN "
                "('evaluation'::regclass, 'evaluation_key'::regclass)"
            )
        )
    ).all()
    assert {t for t, _ in rows} == REFERENCES
    assert {target for _, target in rows} == {"evaluation_key"}
    # The append-only guard is on every partition, TRUNCATE included.
    for name in (this, "evaluation_default"):
        triggers = set(
            (
                await db.execute(
                    text(
                        "SELECT tgname FROM pg_trigger "
                        "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
                    ),
                    {"t": name},
                )
            ).scalars()
        )
        assert {"evaluation_append_only", "evaluation_claim", f"{name}_no_truncate"} <= triggers


async def test_the_insert_trigger_keeps_ids_and_the_once_rule(db, world, pg):
    payload = await make_case(db, world)
    case = (
        await db.execute(select(ServiceCase).where(ServiceCase.case_no == payload["case_no"]))
    ).scalar_one()
    hall = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
    client_id = (await db.execute(select(ApiClient.id).limit(1))).scalar_one()
    row = EvaluationRowFactory(org_id=hall.id, region_code=hall.region_code, case_id=case.id)
    first = (await db.execute(insert(Evaluation).values(row).returning(Evaluation.id))).scalar()
    assert first is not None
    assert await _scalar(db, "SELECT received_at FROM evaluation_key WHERE id = :i", i=first)
    assert (
        await _scalar(db, "SELECT evaluation_id FROM evaluation_once WHERE case_id = :c", c=case.id)
        == first
    )
    # The same case, stage and count again, even in another month: nothing stored, no row back.
    again = dict(row, received_at=datetime.now(UTC) + timedelta(days=40))
    got = (await db.execute(insert(Evaluation).values(again).returning(Evaluation.id))).all()
    assert got == []
    ids = (await db.execute(select(Evaluation.id).where(Evaluation.case_id == case.id))).all()
    assert [i for (i,) in ids] == [first]
    # The second count is another rating.
    second = dict(row, eval_count=2)
    assert (await db.execute(insert(Evaluation).values(second).returning(Evaluation.id))).scalar()
    # A child's rating reported twice (same origin) is stored once.
    origin = EvaluationRowFactory(
        org_id=hall.id,
        region_code=hall.region_code,
        origin_client_id=client_id,
        origin_ref=987654321,
    )
    assert (await db.execute(insert(Evaluation).values(origin).returning(Evaluation.id))).scalar()
    twice = (await db.execute(insert(Evaluation).values(origin).returning(Evaluation.id))).all()
    assert twice == []
    # A rating lost underneath the service (the guard bypassed as a replica does) gives its
    # case back, as deleting it from the plain table freed the unique key: a repair stores it.
    await db.execute(text("SET LOCAL session_replication_role = replica"))
    await db.execute(text("DELETE FROM evaluation WHERE id = :i"), {"i": first})
    await db.execute(text("SET LOCAL session_replication_role = origin"))
    again = (await db.execute(insert(Evaluation).values(row).returning(Evaluation.id))).scalar()
    assert again is not None and again != first


async def test_months_are_made_ahead_and_default_is_reported(db, world, pg):
    far = date(2031, 3, 1)
    report = await partitions.ensure_ahead(db, today=far)
    assert report.created == [
        "evaluation_y2031m03",
        "evaluation_y2031m04",
        "evaluation_y2031m05",
        "evaluation_y2031m06",
    ]
    again = await partitions.ensure_ahead(db, today=far)
    assert again.created == [] and "月分区齐备" in str(again)
    # A bulk load of past months (the demo's year) asks for them from a month on.
    back = await partitions.ensure_ahead(db, today=far, since=date(2030, 12, 15))
    assert back.created == ["evaluation_y2030m12", "evaluation_y2031m01", "evaluation_y2031m02"]
    assert await _scalar(
        db,
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'evaluation_y2031m05_no_truncate'",
    )
    # A rating outside every month lands in DEFAULT, is reported and blocks its month.
    stray = datetime(2031, 7, 10, 4, 0, tzinfo=UTC)
    ids = await add_ratings(db, 1, received_at=stray, evaluated_at=stray)
    assert await _scalar(db, "SELECT count(*) FROM evaluation_default WHERE id = :i", i=ids[0])
    report = await partitions.ensure_ahead(db, today=date(2031, 6, 1))
    assert report.blocked == ["evaluation_y2031m07"]
    assert report.in_default >= 1 and "默认分区中有" in str(report)
    with pytest.raises(partitions.PartitionError, match="默认分区中已有"):
        await partitions.create_month(db, month=date(2031, 7, 1))


async def test_an_archived_month_is_detached_verified_and_attached_again(
    db, sessionmaker, world, pg, tmp_path
):
    if NOV_2023 not in {p.month for p in await partitions.partitions(db)}:
        await partitions.create_month(db, month=NOV_2023)
    ids = await add_ratings(db, 3, received_at=IN_NOV, evaluated_at=IN_NOV)
    await ledger_jobs.seal_pending(sessionmaker)
    manifest = await archive_service.export(db=db, before=date(2023, 12, 1), out=tmp_path)
    assert {f.month for f in manifest.files} >= {"2023-11"}
    # A partial archive (the count differs) does not let the month go.
    before = await _scalar(db, "SELECT max(id) FROM audit_event") or 0
    count = await archive_service.detach_month(db=db, folder=tmp_path, month=NOV_2023, actor="cli")
    await db.commit()
    assert count == next(f.ratings for f in manifest.files if f.month == "2023-11")
    assert (await db.execute(select(Evaluation.id).where(Evaluation.id.in_(ids)))).all() == []
    assert await _scalar(db, "SELECT count(*) FROM evaluation_y2023m11 WHERE id = ANY(:i)", i=ids)
    # The once-rule and the keys stay with a detached month.
    assert await _scalar(db, "SELECT count(*) FROM evaluation_key WHERE id = ANY(:i)", i=ids) == 3
    # The ledger verifies the detached month from the archive.
    now = datetime.now(UTC) + LATER
    without = await ledger_jobs.verify(sessionmaker, now=now)
    assert set(ids) <= set(without.ids(FindingKind.MISSING))
    result = await ledger_jobs.verify(
        sessionmaker, now=now, archived=archive_service.ArchivedRatings(tmp_path)
    )
    assert not set(ids) & set(result.ids(FindingKind.MISSING) + result.ids(FindingKind.ALTERED))
    with pytest.raises(partitions.PartitionError, match="已分离"):
        await partitions.detach(db, month=NOV_2023)
    assert await archive_service.attach_month(db=db, month=NOV_2023, actor="cli") >= 3
    await db.commit()
    back = (await db.execute(select(Evaluation.id).where(Evaluation.id.in_(ids)))).scalars()
    assert sorted(back) == ids
    acts = (await db.execute(select(AuditEvent.action).where(AuditEvent.id > before))).scalars()
    assert {"detach_ratings_month", "attach_ratings_month"} <= set(acts)
    # Attached again, the month is guarded again.
    with pytest.raises(Exception, match="只增不改"):
        async with db.begin_nested():
            await db.execute(text("DELETE FROM evaluation WHERE id = :i"), {"i": ids[0]})


async def test_a_month_whose_archive_is_missing_is_not_detached(db, world, pg, tmp_path):
    if NOV_2023 not in {p.month for p in await partitions.partitions(db)}:
        await partitions.create_month(db, month=NOV_2023)
    await add_ratings(db, 1, received_at=IN_NOV, evaluated_at=IN_NOV)
    await archive_service.export(db=db, before=date(2023, 11, 1), out=tmp_path)
    with pytest.raises(archive_service.ArchiveError, match="没有 2023-11 的文件"):
        await archive_service.detach_month(db=db, folder=tmp_path, month=NOV_2023, actor="cli")


async def test_sqlite_keeps_one_table(db, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    assert await partitions.partitions(db) == []
    assert (await partitions.ensure_ahead(db, today=date(2031, 3, 1))).created == []
    with pytest.raises(partitions.PartitionError, match="仅 PostgreSQL"):
        await partitions.detach(db, month=NOV_2023)
