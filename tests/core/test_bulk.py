"""Many rows in one INSERT (`db/bulk.py`): on PostgreSQL a thousand ratings go as one JSON
parameter; what is stored must be exactly what SQLAlchemy's executemany stores — encrypted
identifiers, JSON reasons, UTC times, the constant defaults — and a conflict must be skipped
the same way."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from haochaping.accounts.models import ApiClient
from haochaping.core.timeutil import utcnow
from haochaping.db import bulk
from haochaping.db.types import dialect_keys
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from tests import factories

COMPARED = [c.name for c in Evaluation.__table__.columns if c.name not in ("id", "origin_ref")]


async def _rows(db, world: factories.World, first_ref: int, n: int) -> list[dict]:
    org = (await db.execute(select(Org).where(Org.code == world.code("HALL-A")))).scalar_one()
    client = (
        await db.execute(select(ApiClient).where(ApiClient.name == f"all{world.suffix}"))
    ).scalar_one()
    keys = dialect_keys(db.get_bind().dialect)
    now = utcnow().replace(microsecond=123456)
    out = []
    for i in range(n):
        phone = f"139{i:08d}"
        out.append(
            {
                "case_id": None,
                "stage": "whole",
                "eval_count": 1,
                "channel": "pc",
                "level": i % 5 + 1,
                "reasons": ["517", "518"] if i % 2 else [],
                "comment": f"第{i}条：办事很快，“引号”与\\反斜杠",
                "comment_original": None,
                "tagset_version": "national",
                "org_id": org.id,
                "item_id": None,
                "window_id": None,
                "staff_id": None,
                "region_code": "330102",
                "rater_type": "person",
                "rater_name": "张三",
                "rater_cert_type": None,
                "rater_cert_no": "33010219900101123X" if i % 3 else None,
                "rater_phone": phone,
                "rater_cert_hash": keys.identity_hash("33010219900101123X", "cert")
                if i % 3
                else None,
                "rater_phone_hash": keys.identity_hash(phone, "phone"),
                "anonymous": bool(i % 4 == 0),
                "is_public": True,
                "client_id": client.id,
                "user_id": None,
                "invitation_id": None,
                "source_ip": "10.0.0.1",
                "user_agent": "测试/1.0",
                "device_id": None,
                "call_id": None,
                "evaluated_at": now - timedelta(seconds=i),
                "displayed_at": None,
                "received_at": now,
                "origin_client_id": client.id,
                "origin_ref": first_ref + i,
            }
        )
    return out


async def _stored(db, first_ref: int, n: int) -> list[tuple]:
    got = (
        await db.execute(
            select(Evaluation)
            .where(Evaluation.origin_ref.between(first_ref, first_ref + n - 1))
            .order_by(Evaluation.origin_ref)
        )
    ).scalars()
    return [tuple(getattr(e, c) for c in COMPARED) for e in got]


async def test_one_json_parameter_stores_what_executemany_stores(db, monkeypatch):
    world = await factories.build_world(db, suffix=f"-BK{uuid.uuid4().hex[:6]}")
    base = 10**12 + uuid.uuid4().int % 10**9 * 1000
    n = bulk.JSON_MIN_ROWS + 50  # the JSON path on PostgreSQL
    table = Evaluation.__table__
    rows = await _rows(db, world, base, n)
    returned = await bulk.insert_rows(
        db, table, rows, returning=("id", "origin_ref"), on_conflict_do_nothing=True
    )
    assert sorted(ref for _, ref in returned) == list(range(base, base + n))
    monkeypatch.setattr(bulk, "JSON_MIN_ROWS", 10**9)  # the same rows through executemany
    many = await bulk.insert_rows(
        db,
        table,
        await _rows(db, world, base + n, n),
        returning=("id", "origin_ref"),
        on_conflict_do_nothing=True,
    )
    assert len(many) == n
    db.expire_all()
    assert await _stored(db, base, n) == await _stored(db, base + n, n)
    assert (await _stored(db, base, n))[1][COMPARED.index("is_default")] is False  # constant
    # Encrypted at rest on both paths, the same way.
    raw = (
        await db.execute(
            text("SELECT rater_phone FROM evaluation WHERE origin_ref IN (:a, :b)"),
            {"a": base, "b": base + n},
        )
    ).scalars()
    assert all(v.startswith("hcp1:") for v in raw)


@pytest.mark.parametrize("json_rows", [True, False])
async def test_a_conflict_is_skipped_and_nothing_changes(db, monkeypatch, json_rows):
    world = await factories.build_world(db, suffix=f"-BC{uuid.uuid4().hex[:6]}")
    if not json_rows:
        monkeypatch.setattr(bulk, "JSON_MIN_ROWS", 10**9)
    base = 2 * 10**12 + uuid.uuid4().int % 10**9 * 1000
    n = bulk.JSON_MIN_ROWS + 10 if json_rows else 20
    rows = await _rows(db, world, base, n)
    table = Evaluation.__table__
    first = await bulk.insert_rows(
        db, table, rows, returning=("id", "origin_ref"), on_conflict_do_nothing=True
    )
    again = await bulk.insert_rows(
        db, table, rows, returning=("id", "origin_ref"), on_conflict_do_nothing=True
    )
    assert len(first) == n and again == []
    count = select(func.count()).where(Evaluation.origin_ref.between(base, base + n - 1))
    assert (await db.execute(count)).scalar_one() == n


async def test_rows_without_a_computed_default_are_refused(db):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's executemany computes the defaults itself")
    with pytest.raises(ValueError, match="rater_cert_hash"):
        await bulk.insert_rows(
            db, Evaluation.__table__, [{"stage": "x"} for _ in range(bulk.JSON_MIN_ROWS)]
        )
