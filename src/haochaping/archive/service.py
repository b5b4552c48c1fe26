"""Ratings archived by month into Parquet files (归档): export, read back, check against the ledger.

An archive folder holds one file per month of receipt (`evaluation-2023-11.parquet`, months in
China Standard Time), each with every column of the ratings received that month as stored
(identifiers and the comment's original stay SM4 ciphertext) and, for a sealed rating, its
ledger entry: sequence number, block, block content version and content hash. Beside them
`manifest.json` names each file with its month, its number of ratings, its first and last id
and the SM3 digest of its bytes. Nothing is removed from the database here: ratings are
append-only; on PostgreSQL, whose ratings are partitioned by month (docs/architecture.md), the
month's partition is what is detached after its export (`detach_month`, `attach_month`).

The ledger stays checkable across an archived range: `verify_archive` recomputes each sealed
record's content hash from the file and compares it with the ledger's entry, and
`archived_rows` gives `ledger verify` the archived content of ratings no longer in the table.

Parquet is written with pyarrow, a dependency of the package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Integer,
    SmallInteger,
    String,
    Table,
    func,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import snapshots
from haochaping.core import audit
from haochaping.core.errors import Invalid
from haochaping.core.timeutil import SHANGHAI
from haochaping.db.base import UTCDateTime
from haochaping.db.types import EncryptedString
from haochaping.evaluations import partitions
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing
from haochaping.ledger.models import LedgerBlock, LedgerEntry
from haochaping.orgs.models import Region
from haochaping.policies import service as policy_service
from haochaping.policies.models import PolicySet

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the optional extra is installed where tests run
    pa = None
    pq = None

EVALUATION: Table = Evaluation.__table__  # type: ignore[assignment]
ENTRY: Table = LedgerEntry.__table__  # type: ignore[assignment]
BLOCK: Table = LedgerBlock.__table__  # type: ignore[assignment]

FORMAT = "haochaping-archive-1"
MANIFEST = "manifest.json"
ROW_GROUP = 50_000
# The ledger columns stored beside each rating's own.
LEDGER_COLUMNS = ("ledger_seq", "ledger_block", "ledger_version", "ledger_hash")


class ArchiveError(Invalid):
    """An archive that cannot be written or read as asked."""

    code = "archive_invalid"


@dataclass
class ArchiveFile:
    """One month's file as the manifest names it."""

    file: str
    month: str
    ratings: int
    sealed: int
    first_id: int | None
    last_id: int | None
    sm3: str


@dataclass
class Manifest:
    """What an export wrote."""

    before: str
    exported_at: str
    format: str = FORMAT
    files: list[ArchiveFile] = field(default_factory=list)

    @property
    def ratings(self) -> int:
        return sum(f.ratings for f in self.files)


@dataclass
class ArchiveCheck:
    """The outcome of checking an archive folder against its manifest and the ledger."""

    files: int = 0
    ratings: int = 0
    sealed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _require_pyarrow() -> None:
    if pa is None:
        raise ArchiveError(
            "归档需要 pyarrow，当前安装缺少该组件：请重新安装 haochaping（pip install haochaping）"
        )


def parse_month(value: str) -> date:
    """The first day of a month written `YYYY-MM`."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(value)
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise ArchiveError(f"月份格式应为 YYYY-MM（例如 2024-01），收到 {value!r}") from exc


async def retention_before(*, db: AsyncSession, today: date) -> date:
    """The month before which every rating is past the longest retention in force
    (`retention_months` of the policies, for every top region and every region with a policy
    of its own): the ratings of one table leave together, so the longest retention wins."""
    codes = set(
        (await db.execute(select(Region.code).where(Region.parent_code.is_(None)))).scalars()
    )
    codes |= set((await db.execute(select(PolicySet.region_code).distinct())).scalars())
    longest = 0
    for code in sorted(codes):
        values, _ = await policy_service.effective(db=db, region_code=code, on=today)
        if values.retention_months is None:
            raise ArchiveError(
                f"行政区划 {code} 未设置评价在线保留期限（政策参数 retention_months），"
                "评价全部保留：请用 --before 指定归档月份"
            )
        longest = max(longest, values.retention_months)
    if not codes:
        raise ArchiveError("尚无行政区划和政策：请用 --before 指定归档月份")
    months = today.year * 12 + today.month - 1 - longest
    return date(months // 12, months % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """The first instant of a month in China Standard Time, in UTC."""
    return datetime(month.year, month.month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _arrow_type(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, EncryptedString):
        return pa.string()
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, SmallInteger):
        return pa.int16()
    if isinstance(kind, BigInteger | Integer):
        return pa.int64()
    if isinstance(kind, JSON):
        return pa.list_(pa.string())  # reasons: a list of tag codes
    return pa.string()


def arrow_schema() -> Any:
    """The Parquet schema of an archive file: the table's columns, then the ledger's."""
    _require_pyarrow()
    fields = [pa.field(c.name, _arrow_type(c), nullable=c.nullable) for c in EVALUATION.columns]
    fields += [
        pa.field("ledger_seq", pa.int64()),
        pa.field("ledger_block", pa.int64()),
        pa.field("ledger_version", pa.int16()),
        pa.field("ledger_hash", pa.binary(32)),
    ]
    return pa.schema(fields)


def _stored_columns() -> list[Any]:
    # Encrypted columns as stored (their ciphertext): the archive never holds a number in the
    # clear, and content versions 2 and up hash the ciphertext too.
    return [
        type_coerce(c, String()) if isinstance(c.type, EncryptedString) else c
        for c in EVALUATION.columns
    ]


def _month_query(since: datetime, until: datetime, after: int, limit: int) -> Any:
    return (
        select(
            *_stored_columns(),
            ENTRY.c.seq,
            ENTRY.c.block_height,
            BLOCK.c.content_version,
            ENTRY.c.content_hash,
        )
        .select_from(
            EVALUATION.outerjoin(ENTRY, ENTRY.c.evaluation_id == EVALUATION.c.id).outerjoin(
                BLOCK, BLOCK.c.height == ENTRY.c.block_height
            )
        )
        .where(
            EVALUATION.c.received_at >= since,
            EVALUATION.c.received_at < until,
            EVALUATION.c.id > after,
        )
        .order_by(EVALUATION.c.id)
        .limit(limit)
    )


def file_digest(path: Path) -> str:
    """The SM3 digest of a file's bytes, hex."""
    h = hashing.sm3_hasher()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


async def export(
    *, db: AsyncSession, before: date, out: Path, now: datetime | None = None
) -> Manifest:
    """Write every rating received before the month `before` (China time) into one Parquet
    file per month under `out`, with the manifest; returns the manifest."""
    _require_pyarrow()
    if out.exists() and (out / MANIFEST).exists():
        raise ArchiveError(f"目录 {out} 已有归档清单，请换一个空目录")
    out.mkdir(parents=True, exist_ok=True)
    until_all = month_start(before)
    first = (
        await db.execute(
            select(func.min(EVALUATION.c.received_at)).where(EVALUATION.c.received_at < until_all)
        )
    ).scalar_one()
    manifest = Manifest(
        before=before.strftime("%Y-%m"), exported_at=(now or datetime.now(UTC)).isoformat()
    )
    if first is not None:
        local = first.astimezone(SHANGHAI)
        month = date(local.year, local.month, 1)
        while month < before:
            written = await _export_month(db=db, month=month, out=out)
            if written is not None:
                manifest.files.append(written)
            month = next_month(month)
    (out / MANIFEST).write_text(
        json.dumps(asdict(manifest), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


async def _export_month(*, db: AsyncSession, month: date, out: Path) -> ArchiveFile | None:
    since, until = month_start(month), month_start(next_month(month))
    schema = arrow_schema()
    names = schema.names
    name = f"evaluation-{month:%Y-%m}.parquet"
    path = out / name
    count = sealed = 0
    first_id = last_id = None
    writer = None
    after = 0
    try:
        while True:
            rows = (await db.execute(_month_query(since, until, after, ROW_GROUP))).all()
            if not rows:
                break
            if writer is None:
                writer = pq.ParquetWriter(path, schema, compression="zstd")
            columns = list(zip(*rows, strict=True))
            writer.write_table(
                pa.table(
                    {
                        n: pa.array(list(v), type=schema.field(n).type)
                        for n, v in zip(names, columns, strict=True)
                    },
                    schema=schema,
                )
            )
            count += len(rows)
            sealed += sum(1 for r in rows if r[-1] is not None)
            first_id = rows[0][0] if first_id is None else first_id
            last_id = after = rows[-1][0]
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        return None
    return ArchiveFile(
        file=name,
        month=f"{month:%Y-%m}",
        ratings=count,
        sealed=sealed,
        first_id=first_id,
        last_id=last_id,
        sm3=file_digest(path),
    )


def read_manifest(folder: Path) -> Manifest:
    """The manifest of an archive folder."""
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"无法读取归档清单 {path}：{exc}") from exc
    if raw.get("format") != FORMAT:
        raise ArchiveError(f"{path} 不是本系统的归档清单（格式 {raw.get('format')!r}）")
    files = [ArchiveFile(**f) for f in raw.get("files", [])]
    return Manifest(
        before=raw["before"], exported_at=raw["exported_at"], format=FORMAT, files=files
    )


def read_records(path: Path, *, batch_size: int = 10_000) -> Iterator[dict[str, Any]]:
    """The records of one archive file, in id order, as dictionaries of column values."""
    _require_pyarrow()
    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"无法读取归档文件 {path}：{exc}") from exc
    expected = arrow_schema()
    if not source.schema_arrow.equals(expected, check_metadata=False):
        raise ArchiveError(f"{path} 的列与评价归档格式不符")
    for batch in source.iter_batches(batch_size=batch_size):
        yield from batch.to_pylist()


def content_values(record: dict[str, Any], version: int) -> list[Any]:
    """A record's values in the order a content hash of `version` covers them."""
    return [record[name] for name in hashing.CONTENT_COLUMNS[version]]


async def verify_archive(*, db: AsyncSession, folder: Path) -> ArchiveCheck:
    """Check each file of an archive folder against the manifest (bytes and counts) and each
    sealed record against the ledger: the hash recomputed from the file must equal both the
    hash the file carries and the ledger's entry."""
    manifest = read_manifest(folder)
    result = ArchiveCheck()
    for item in manifest.files:
        path = folder / item.file
        result.files += 1
        if not path.exists():
            result.problems.append(f"{item.file}：文件不存在")
            continue
        if file_digest(path) != item.sm3:
            result.problems.append(f"{item.file}：文件的 SM3 摘要与清单不符（文件被改动）")
        count = 0
        try:
            for chunk in _chunks(read_records(path), 5_000):
                count += len(chunk)
                result.ratings += len(chunk)
                await _check_chunk(db=db, file=item.file, records=chunk, result=result)
        except ArchiveError as exc:
            result.problems.append(f"{item.file}：{exc.message}")
            continue
        if count != item.ratings:
            result.problems.append(f"{item.file}：清单记 {item.ratings} 条，文件中有 {count} 条")
    return result


def _chunks(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _check_chunk(
    *, db: AsyncSession, file: str, records: Sequence[dict[str, Any]], result: ArchiveCheck
) -> None:
    ids = [r["id"] for r in records]
    ledger = dict(
        (
            await db.execute(
                select(ENTRY.c.evaluation_id, ENTRY.c.content_hash).where(
                    ENTRY.c.evaluation_id.in_(ids)
                )
            )
        ).all()
    )
    for record in records:
        stored = ledger.get(record["id"])
        if stored is None:
            if record["ledger_hash"] is not None:
                result.problems.append(f"{file}：评价 {record['id']} 记为已封存，账本中却没有它")
            continue
        result.sealed += 1
        version = record["ledger_version"]
        if version not in hashing.CONTENT_COLUMNS or version < 2:
            # Version 1 hashed identifiers in the clear; the archive holds their ciphertext.
            result.problems.append(
                f"{file}：评价 {record['id']} 以内容版本 {version} 封存，无法由归档复算"
            )
            continue
        digest = hashing.content_hashes([content_values(record, version)], version)[0]
        if digest != stored or record["ledger_hash"] != stored:
            result.problems.append(f"{file}：评价 {record['id']} 的归档内容与账本封存时的哈希不符")


class ArchivedRatings:
    """The ratings of an archive folder, looked up by id for `ledger verify` (the files are
    in id order, so Parquet's row-group statistics skip all but the groups holding them)."""

    def __init__(self, folder: Path) -> None:
        _require_pyarrow()
        self.folder = folder
        self.manifest = read_manifest(folder)

    def __call__(self, ids: set[int], version: int) -> dict[int, list[Any]]:
        """The content values (of `version`) of those of `ids` the archive holds."""
        found: dict[int, list[Any]] = {}
        for item in self.manifest.files:
            if item.first_id is None or item.last_id is None:
                continue
            wanted = sorted(i for i in ids if item.first_id <= i <= item.last_id)
            if not wanted:
                continue
            table = pq.read_table(self.folder / item.file, filters=[("id", "in", wanted)])
            for record in table.to_pylist():
                found[record["id"]] = content_values(record, version)
        return found


async def detach_month(*, db: AsyncSession, folder: Path, month: date, actor: str) -> int:
    """Take an archived month out of the live ratings (PostgreSQL): the archive folder must
    hold the month's file, check clean against its manifest and the ledger, and count every
    rating of the month's partition; then the partition is detached (its table stays until an
    operator drops it) and the act is audited. Returns the month's number of ratings; the
    caller commits."""
    manifest = read_manifest(folder)
    item = next((f for f in manifest.files if f.month == f"{month:%Y-%m}"), None)
    if item is None:
        raise ArchiveError(f"归档 {folder} 中没有 {month:%Y-%m} 的文件，不能分离该月")
    check = await verify_archive(db=db, folder=folder)
    if not check.ok:
        raise ArchiveError(f"归档 {folder} 校验不通过：" + "；".join(check.problems[:3]))
    live = await partitions.rows_in(db, month=month)
    if live != item.ratings:
        raise ArchiveError(
            f"{month:%Y-%m} 分区有 {live} 条评价，归档文件只有 {item.ratings} 条：请重新导出"
        )
    part = await partitions.detach(db, month=month)
    await snapshots.clear(db)  # the month's ratings leave the live table: kept rankings too
    audit.record(
        db,
        actor=actor,
        actor_role=None,
        action=audit.AuditAction.DETACH_RATINGS_MONTH,
        target_type="evaluation_partition",
        target_id=None,
        detail={"month": f"{month:%Y-%m}", "table": part.name, "ratings": live, "sm3": item.sm3},
    )
    return live


async def attach_month(*, db: AsyncSession, month: date, actor: str) -> int:
    """Put a detached month back into the live ratings (PostgreSQL), audited; returns its
    number of ratings. The caller commits."""
    part = await partitions.attach(db, month=month)
    await snapshots.clear(db)
    count = await partitions.rows_in(db, month=month)
    audit.record(
        db,
        actor=actor,
        actor_role=None,
        action=audit.AuditAction.ATTACH_RATINGS_MONTH,
        target_type="evaluation_partition",
        target_id=None,
        detail={"month": f"{month:%Y-%m}", "table": part.name, "ratings": count},
    )
    return count
