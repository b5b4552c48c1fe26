"""`Idempotency-Key`: a retry with the same key returns the first answer and creates nothing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.core.errors import Invalid
from haochaping.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


def request_hash(payload: Any) -> str:
    """A stable digest of a request body, to tell a true retry from a reused key."""
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def owner_of(actor: Principal) -> str:
    return f"{actor.kind}:{actor.id}"


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid(
            "Idempotency-Key 须为 1–200 个可打印字符",
            code="invalid_idempotency_key",
            details=[{"field": "Idempotency-Key"}],
        )


async def claim(
    *, db: AsyncSession, actor: Principal, key: str, digest: str
) -> tuple[int, dict[str, Any]] | None:
    """Claim a key for this request, or return the first answer stored under it.

    The claim is an INSERT that waits on a concurrent holder of the same key (PostgreSQL's
    unique index; SQLite's single writer), so two racing retries never both proceed.
    """
    check_key(key)
    owner = owner_of(actor)
    ins = pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]
    stmt = (
        ins(IdempotencyRecord)
        .values(owner=owner, key=key, request_hash=digest, status_code=0, body={})
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    if (await db.execute(stmt)).scalar_one_or_none() is not None:
        return None
    record = (
        await db.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.owner == owner, IdempotencyRecord.key == key
            )
        )
    ).scalar_one()
    if record.request_hash != digest:
        raise Invalid(
            "此 Idempotency-Key 已用于另一个不同的请求",
            code="idempotency_key_reused",
            details=[{"field": "Idempotency-Key"}],
        )
    return record.status_code, record.body


async def store(
    *, db: AsyncSession, actor: Principal, key: str, status_code: int, body: dict[str, Any]
) -> None:
    """Record the answer under a claimed key, in the same transaction as the work."""
    await db.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.owner == owner_of(actor), IdempotencyRecord.key == key)
        .values(status_code=status_code, body=body)
    )
