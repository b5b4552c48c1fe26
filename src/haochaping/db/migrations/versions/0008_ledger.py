"""ledger

Revision ID: 0008
Revises: 0007
The tamper-evident rating ledger (blocks, entries); on PostgreSQL, triggers that refuse any
UPDATE, DELETE or TRUNCATE of ratings and of the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A later feature that must change a column of `evaluation` that no content hash covers has
# to narrow these triggers (e.g. BEFORE UPDATE OF <content columns>) in its own migration.
APPEND_ONLY = {
    "evaluation": "评价记录不可修改或删除（好差评评价只增不改）",
    "ledger_block": "存证账本不可修改或删除",
    "ledger_entry": "存证账本不可修改或删除",
}

REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION hcp_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0]
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append-only table ' || TG_TABLE_NAME || ': corrections are new records';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "ledger_block",
        sa.Column(
            "height",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("prev_root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("merkle_root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("high_water", sa.BigInteger(), nullable=False),
        sa.Column("content_version", sa.SmallInteger(), nullable=False),
        sa.Column("sealed_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("entry_count >= 1", name=op.f("ck_ledger_block_entry_count_positive")),
        sa.CheckConstraint(
            "last_seq = first_seq + entry_count - 1", name=op.f("ck_ledger_block_seq_range")
        ),
        sa.PrimaryKeyConstraint("height", name=op.f("pk_ledger_block")),
        sa.UniqueConstraint("first_seq", name=op.f("uq_ledger_block_first_seq")),
        sa.UniqueConstraint("prev_root", name=op.f("uq_ledger_block_prev_root")),
        sa.UniqueConstraint("root", name=op.f("uq_ledger_block_root")),
    )
    op.create_table(
        "ledger_entry",
        sa.Column(
            "evaluation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "block_height", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("content_hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluation.id"],
            name=op.f("fk_ledger_entry_evaluation_id_evaluation"),
        ),
        sa.PrimaryKeyConstraint("evaluation_id", name=op.f("pk_ledger_entry")),
        sa.UniqueConstraint("seq", name=op.f("uq_ledger_entry_seq")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE_FUNCTION)
        for table, message in APPEND_ONLY.items():
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change('{message}')"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{message}')"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS hcp_refuse_change()")
    op.drop_table("ledger_entry")
    op.drop_table("ledger_block")
