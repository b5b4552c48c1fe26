"""SQLite gets the append-only guard PostgreSQL has had since 0008: triggers that refuse any
UPDATE or DELETE of ratings and of the ledger.

Revision ID: 0025
Revises: 0022

SQLite has no TRUNCATE (a `DELETE FROM t` without WHERE fires the trigger too). A later
migration that rebuilds `evaluation`, `ledger_block` or `ledger_entry` on SQLite
(`batch_alter_table` copies the table and drops the old one) drops these triggers with it and
must create them again; tests/evaluations/test_append_only.py fails at head if it does not.
"""

from __future__ import annotations

from alembic import op

revision: str = "0025"
down_revision: str | None = "0022"
branch_labels = None
depends_on = None

# The same messages as the PostgreSQL triggers of 0008.
APPEND_ONLY = {
    "evaluation": "评价记录不可修改或删除（好差评评价只增不改）",
    "ledger_block": "存证账本不可修改或删除",
    "ledger_entry": "存证账本不可修改或删除",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, message in APPEND_ONLY.items():
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in APPEND_ONLY:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
