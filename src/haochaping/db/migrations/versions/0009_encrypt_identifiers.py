"""Encrypt certificate and phone numbers at rest (SM4-GCM) and add their keyed hashes.

Revision ID: 0009
Revises: 0008

Existing clear-text values are encrypted in place and hashed. On PostgreSQL the evaluation
table's append-only trigger is suspended for this one data step (the stored plaintext of
already-sealed ratings does not change, see ledger/hashing.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base
from haochaping.db.types import dialect_keys

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None

TABLES = {
    "service_case": (
        "applicant_cert_no",
        "applicant_phone",
        "applicant_cert_hash",
        "applicant_phone_hash",
    ),
    "evaluation": ("rater_cert_no", "rater_phone", "rater_cert_hash", "rater_phone_hash"),
}


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_created_at"), ["created_at"], unique=False)
    for table, (cert, phone, cert_hash, phone_hash) in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                cert,
                existing_type=sa.String(length=64),
                type_=sa.String(length=200),
                existing_nullable=True,
            )
            batch_op.alter_column(
                phone,
                existing_type=sa.String(length=32),
                type_=sa.String(length=200),
                existing_nullable=True,
            )
            batch_op.add_column(sa.Column(cert_hash, sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column(phone_hash, sa.String(length=64), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_{cert_hash}"), [cert_hash], unique=False)
            batch_op.create_index(
                batch_op.f(f"ix_{table}_{phone_hash}"), [phone_hash], unique=False
            )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.alter_column(
            "recipient",
            existing_type=sa.String(length=254),
            type_=sa.String(length=500),
            existing_nullable=False,
        )
    _encrypt_existing()


def _encrypt_existing() -> None:
    bind = op.get_bind()
    keys = dialect_keys(bind.dialect)  # attached by db/migrate.py (env.py) from the settings
    pg = bind.dialect.name == "postgresql"
    for table, (cert, phone, cert_hash, phone_hash) in TABLES.items():
        rows = bind.execute(
            sa.text(
                f"SELECT id, {cert}, {phone} FROM {table} "
                f"WHERE ({cert} IS NOT NULL AND {cert} NOT LIKE 'hcp1:%') "
                f"OR ({phone} IS NOT NULL AND {phone} NOT LIKE 'hcp1:%')"
            )
        ).all()
        if not rows:
            continue
        if pg and table == "evaluation":
            op.execute("ALTER TABLE evaluation DISABLE TRIGGER evaluation_append_only")
        bind.execute(
            sa.text(
                f"UPDATE {table} SET {cert} = :c, {phone} = :p, {cert_hash} = :ch, "
                f"{phone_hash} = :ph WHERE id = :id"
            ),
            [
                {
                    "id": r[0],
                    "c": keys.encrypt(r[1]) if r[1] else r[1],
                    "p": keys.encrypt(r[2]) if r[2] else r[2],
                    "ch": keys.identity_hash(r[1], "cert"),
                    "ph": keys.identity_hash(r[2], "phone"),
                }
                for r in rows
            ],
        )
        if pg and table == "evaluation":
            op.execute("ALTER TABLE evaluation ENABLE TRIGGER evaluation_append_only")
    rows = bind.execute(
        sa.text("SELECT id, recipient FROM outbox_message WHERE recipient NOT LIKE 'hcp1:%'")
    ).all()
    if rows:
        bind.execute(
            sa.text("UPDATE outbox_message SET recipient = :r WHERE id = :id"),
            [{"id": i, "r": keys.encrypt(r, deterministic=True)} for i, r in rows],
        )


def downgrade() -> None:
    op.drop_table("audit_event")
    for table, (_cert, _phone, cert_hash, phone_hash) in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{phone_hash}"))
            batch_op.drop_index(batch_op.f(f"ix_{table}_{cert_hash}"))
            batch_op.drop_column(phone_hash)
            batch_op.drop_column(cert_hash)
