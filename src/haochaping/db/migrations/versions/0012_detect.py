"""Keyed identity hashes in one canonical form (issue 16): re-hash what the stored originals
allow, with the data keys of the settings being migrated.

Revision ID: 0012
Revises: 0011

Before, a phone number written `+86 138…` and `138…` hashed differently. The hashes are now
taken of `db.crypto.normalise_identity` (country code, separators, full-width forms). A value
already written canonically hashes as before, so only rows whose hash changes are written:

* `service_case`: every applicant hash, from the encrypted originals.
* `evaluation`: rater hashes of ratings not yet sealed into the ledger. A sealed rating keeps
  the hash it was sealed with (the ledger's content hash covers it: changing it would make
  `ledger verify` report the rating as altered). On PostgreSQL the append-only trigger is
  suspended for this one data step, as in 0009.
* `malicious_rater`: recomputed from the rated evaluation's encrypted rater numbers (the
  register keeps hashes only, but each entry names its appeal and so its rating).
* `staff_identity` keeps hashes only, of numbers typed by an office: they cannot be
  recomputed; a staff identity recorded with a country code or full-width digits is to be
  recorded again (docs/detection.md).

Rows whose ciphertext names a data key this process was not given are left as they are and
counted in the log. Works the same on SQLite and PostgreSQL (plain SELECT/UPDATE in chunks).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from haochaping.db.crypto import DataKeys, MissingKey
from haochaping.db.types import dialect_keys

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
CHUNK = 5000
TABLES = {
    "service_case": (
        "applicant_cert_no",
        "applicant_phone",
        "applicant_cert_hash",
        "applicant_phone_hash",
    ),  # noqa: E501
    "evaluation": ("rater_cert_no", "rater_phone", "rater_cert_hash", "rater_phone_hash"),
}


def _plain(keys: DataKeys, stored: str | None) -> str | None:
    return keys.decrypt(stored) if stored else stored


def _rehash_table(bind, keys: DataKeys, table: str) -> tuple[int, int]:
    cert, phone, cert_hash, phone_hash = TABLES[table]
    unsealed = (
        " AND NOT EXISTS (SELECT 1 FROM ledger_entry l WHERE l.evaluation_id = t.id)"
        if table == "evaluation"
        else ""
    )
    changed: list[dict] = []
    unreadable = 0
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                f"SELECT t.id, t.{cert}, t.{phone}, t.{cert_hash}, t.{phone_hash} FROM {table} t "
                f"WHERE t.id > :last AND (t.{cert} IS NOT NULL OR t.{phone} IS NOT NULL)"
                f"{unsealed} ORDER BY t.id LIMIT {CHUNK}"
            ),
            {"last": last},
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        for row_id, c, p, ch, ph in rows:
            try:
                new_ch = keys.identity_hash(_plain(keys, c), "cert")
                new_ph = keys.identity_hash(_plain(keys, p), "phone")
            except (MissingKey, ValueError):
                unreadable += 1
                continue
            if (new_ch, new_ph) != (ch, ph):
                changed.append({"id": row_id, "ch": new_ch, "ph": new_ph})
    if changed:
        pg = bind.dialect.name == "postgresql"
        if pg and table == "evaluation":
            op.execute("ALTER TABLE evaluation DISABLE TRIGGER evaluation_append_only")
        for start in range(0, len(changed), CHUNK):
            bind.execute(
                sa.text(f"UPDATE {table} SET {cert_hash} = :ch, {phone_hash} = :ph WHERE id = :id"),
                changed[start : start + CHUNK],
            )
        if pg and table == "evaluation":
            op.execute("ALTER TABLE evaluation ENABLE TRIGGER evaluation_append_only")
    return len(changed), unreadable


def _rehash_register(bind, keys: DataKeys) -> tuple[int, int]:
    rows = bind.execute(
        sa.text(
            "SELECT m.id, m.kind, m.identity_hash, e.rater_cert_no, e.rater_phone "
            "FROM malicious_rater m JOIN appeal a ON a.id = m.appeal_id "
            "JOIN evaluation e ON e.id = a.evaluation_id"
        )
    ).all()
    changed, unreadable = [], 0
    for entry_id, kind, digest, c, p in rows:
        try:
            new = keys.identity_hash(_plain(keys, c if kind == "cert" else p), kind)
        except (MissingKey, ValueError):
            unreadable += 1
            continue
        if new and new != digest:
            changed.append({"id": entry_id, "h": new})
    if changed:
        bind.execute(
            sa.text("UPDATE malicious_rater SET identity_hash = :h WHERE id = :id"), changed
        )
    return len(changed), unreadable


def upgrade() -> None:
    bind = op.get_bind()
    if op.get_context().as_sql:  # offline SQL: there is nothing to decrypt
        return
    keys = dialect_keys(bind.dialect)  # attached by db/migrate.py (env.py) from the settings
    for table in TABLES:
        changed, unreadable = _rehash_table(bind, keys, table)
        if changed or unreadable:
            log.info("%s: %d identity hashes re-hashed, %d unreadable", table, changed, unreadable)
    changed, unreadable = _rehash_register(bind, keys)
    if changed or unreadable:
        log.info("malicious_rater: %d re-hashed, %d unreadable", changed, unreadable)


def downgrade() -> None:
    # The canonical hashes match whatever the old form matched and more: nothing to undo.
    pass
