"""Personal data at rest: SM4-encrypted, found by keyed hash, revealed only on record."""

from __future__ import annotations

import base64
import os
import re

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4
from sqlalchemy import Column, Integer, MetaData, Table, select, text

from haochaping.core.models import AuditEvent
from haochaping.core.outbox_models import OutboxMessage
from haochaping.db import crypto
from haochaping.db.crypto import DataKeys
from haochaping.db.session import engine_keys, make_engine
from haochaping.db.types import EncryptedString
from haochaping.evaluations.models import Evaluation
from tests.factories import EvaluationPayloadFactory, assert_error, make_case

PHONE_RE = re.compile(rb"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def test_openssl_sm4_matches_the_gmssl_reference():
    key, block = os.urandom(16), os.urandom(16)
    ours = Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update(block)
    ref = CryptSM4()
    ref.set_key(key, SM4_ENCRYPT)
    assert ref.crypt_ecb(block)[:16] == ours  # gmssl pads a second block; the first is SM4(block)


def test_round_trip_rotation_and_tampering():
    old = base64.b64encode(b"A" * 16).decode()
    new = base64.b64encode(b"B" * 16).decode()
    before = crypto.DataKeys(secret="s", keys_spec=f"k1:{old}")
    stored_old = before.encrypt("13812345678")
    after = crypto.DataKeys(secret="s", keys_spec=f"k1:{old},k2:{new}", active="k2")
    stored_new = after.encrypt("13812345678")
    assert crypto.key_id_of(stored_old) == "k1" and crypto.key_id_of(stored_new) == "k2"
    assert after.decrypt(stored_old) == after.decrypt(stored_new) == "13812345678"
    assert stored_new != after.encrypt("13812345678")  # a fresh nonce every time
    raw = bytearray(base64.b64decode(stored_new.split(":", 2)[2]))
    raw[-1] ^= 1
    with pytest.raises(ValueError, match="integrity"):
        after.decrypt("hcp1:k2:" + base64.b64encode(bytes(raw)).decode())
    # A value naming a key this configuration was never given cannot be read.
    with pytest.raises(crypto.MissingKey):
        after.decrypt("hcp1:k9:" + stored_old.split(":", 2)[2])
    with pytest.raises(crypto.MissingKey):
        before.decrypt(stored_new)


async def test_stored_identifiers_are_ciphertext_and_searchable_by_hash(client, db, world):
    case = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
    )
    assert r.status_code == 201
    cert, phone = case["applicant"]["cert_no"], case["applicant"]["phone"]
    raw = (
        await db.execute(
            text(
                "SELECT rater_cert_no, rater_phone, rater_cert_hash FROM evaluation WHERE id = :id"
            ),
            {"id": r.json()["id"]},
        )
    ).one()
    assert raw[0].startswith("hcp1:") and cert not in raw[0]
    assert raw[1].startswith("hcp1:") and phone not in raw[1]
    raw_case = (
        await db.execute(
            text("SELECT applicant_cert_no, applicant_phone FROM service_case WHERE case_no = :n"),
            {"n": case["case_no"]},
        )
    ).one()
    assert all(v.startswith("hcp1:") for v in raw_case)
    found = (
        (
            await db.execute(
                select(Evaluation.id).where(
                    Evaluation.rater_cert_hash == engine_keys(db).identity_hash(cert, "cert")
                )
            )
        )
        .scalars()
        .all()
    )
    assert r.json()["id"] in found
    assert (await db.get(Evaluation, r.json()["id"])).rater_phone == phone  # read back


async def test_sms_recipients_are_stored_encrypted(client, db, world):
    from tests.workorders.conftest import rate_badly

    ev, _order = await rate_badly(client, db, world)
    raw = (
        (await db.execute(text("SELECT recipient FROM outbox_message WHERE channel = 'sms'")))
        .scalars()
        .all()
    )
    assert raw and all(v.startswith("hcp1:") for v in raw)
    # Read through the model, the recipient is the number again (to send to it); found by
    # equality, as the lookup encryption allows (other tests' messages are in the table too).
    phone = (await db.get(Evaluation, ev["id"])).rater_phone
    msg = (
        (
            await db.execute(
                select(OutboxMessage).where(
                    OutboxMessage.channel == "sms", OutboxMessage.recipient == phone
                )
            )
        )
        .scalars()
        .first()
    )
    assert msg is not None and PHONE_RE.fullmatch(msg.recipient.encode())


async def test_the_handler_reveals_the_phone_on_record(client, db, world):
    from tests.factories import bearer_headers
    from tests.workorders.conftest import rate_badly

    ev, order = await rate_badly(client, db, world)
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await client.post(f"/api/v1/work-orders/{order.id}/reveal-phone", headers=unit)
    assert r.status_code == 200 and PHONE_RE.fullmatch(r.json()["phone"].encode())
    audit = (
        (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.target_type == "work_order", AuditEvent.target_id == order.id
                )
            )
        )
        .scalars()
        .all()
    )
    assert [(a.action, a.actor) for a in audit] == [("reveal_phone", world.users["unit_a"])]
    other = await bearer_headers(client, world.users["unit_b"])
    assert_error(
        await client.post(f"/api/v1/work-orders/{order.id}/reveal-phone", headers=other), 403
    )
    # Everywhere else the number stays masked.
    r = await client.get(f"/api/v1/work-orders/{order.id}", headers=unit)
    assert "*" in r.json()["evaluation"]["rater"]["phone"]


def test_no_clear_identifier_in_the_database_file_after_a_demo_load(tmp_path, settings):
    import asyncio

    from haochaping.cases.models import Case
    from haochaping.db import migrate
    from haochaping.db.session import make_engine, make_sessionmaker
    from haochaping.demo import loader

    path = tmp_path / "demo.db"
    # The same secret as the suite's, so the process keeps one data key.
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{path}"})
    migrate.upgrade(s)
    asyncio.run(loader.load(s, cases=3000, seed=7))

    async def identifiers() -> set[bytes]:
        engine = make_engine(s)
        try:
            async with make_sessionmaker(engine)() as db:  # read back through decryption
                rows = (
                    await db.execute(select(Case.applicant_cert_no, Case.applicant_phone))
                ).all()
                rows += (
                    await db.execute(select(Evaluation.rater_cert_no, Evaluation.rater_phone))
                ).all()
        finally:
            await engine.dispose()
        return {v.encode() for row in rows for v in row if v}

    known = asyncio.run(identifiers())
    assert len(known) > 1000  # the demo's applicants really have numbers
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("demo.db"))
    leaks = [v for v in known if v in blob]
    assert not leaks, f"identifiers stored in the clear: {leaks[:3]}"
    # Nor any other mobile number (e.g. typed into a demo comment).
    assert not PHONE_RE.findall(blob)


async def test_an_engine_made_with_other_settings_changes_nothing_here(client, db, world, settings):
    # Issue 9: making an engine used to install its keys for the whole process, so every
    # later rating was hashed and encrypted under the other secret.
    other = make_engine(settings.model_copy(update={"secret_key": "another-" + "y" * 40}))
    await other.dispose()
    case = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json=EvaluationPayloadFactory(case_no=case["case_no"]),
    )
    assert r.status_code == 201
    stored = (
        await db.execute(
            select(Evaluation.rater_cert_hash, Evaluation.rater_phone).where(
                Evaluation.id == r.json()["id"]
            )
        )
    ).one()
    assert stored.rater_cert_hash == DataKeys.from_settings(settings).identity_hash(
        case["applicant"]["cert_no"], "cert"
    )
    assert stored.rater_phone == case["applicant"]["phone"]  # readable with this engine's keys
    with pytest.raises(crypto.MissingKey):  # and written with them, not the other's
        DataKeys(secret="another-" + "y" * 40).decrypt(
            (
                await db.execute(
                    text("SELECT rater_phone FROM evaluation WHERE id = :id"),
                    {"id": r.json()["id"]},
                )
            ).scalar_one()
        )


async def test_one_statement_in_two_engines_uses_each_engine_s_keys(tmp_path, settings):
    # Column types get their keys from the engine's dialect; a statement compiled and cached
    # for one engine must not carry its keys into another.
    table = Table(
        "note",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("value", EncryptedString()),
    )
    insert, read = table.insert(), select(table.c.value)
    stored = {}
    for name in ("a", "b"):
        own = settings.model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
                "secret_key": f"{name}-secret-" + "k" * 40,
            }
        )
        engine = make_engine(own)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(table.metadata.create_all)
                await conn.execute(insert, {"value": "13812345678"})
                assert (await conn.execute(read)).scalar_one() == "13812345678"
                stored[name] = (await conn.execute(text("SELECT value FROM note"))).scalar_one()
        finally:
            await engine.dispose()
        assert DataKeys.from_settings(own).decrypt(stored[name]) == "13812345678"
    assert crypto.key_id_of(stored["a"]) != crypto.key_id_of(stored["b"])
