"""Indexes for the reads that exist at scale: one unit's ratings newest first; organisation and
region path prefixes an index serves on PostgreSQL whatever the collation; BRIN on the time
ratings arrive (PostgreSQL), which replaces the b-tree on it there.

Revision ID: 0026
Revises: 0025

The measurements behind them are in docs/benchmarks.md ("The ratings table at scale").
"""

from __future__ import annotations

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_index(
        "ix_evaluation_org_evaluated_id", "evaluation", ["org_id", "evaluated_at", "id"]
    )
    if not pg:
        return
    op.create_index(
        "ix_evaluation_received_brin", "evaluation", ["received_at"], postgresql_using="brin"
    )
    # The b-tree on received_at goes on PostgreSQL: with it, the planner never chose the BRIN
    # index; without it, the month of a city and a day in id order were as fast (bench/scale.py
    # --time-indexes at 10M ratings), and it was 21 MB per million ratings.
    op.drop_index("ix_evaluation_received", table_name="evaluation")
    for table in ("org", "region"):
        op.drop_index(f"ix_{table}_path", table_name=table)
        op.create_index(
            f"ix_{table}_path",
            table,
            ["path"],
            postgresql_ops={"path": "varchar_pattern_ops"},
        )


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        for table in ("org", "region"):
            op.drop_index(f"ix_{table}_path", table_name=table)
            op.create_index(f"ix_{table}_path", table, ["path"])
        op.create_index("ix_evaluation_received", "evaluation", ["received_at"])
        op.drop_index("ix_evaluation_received_brin", table_name="evaluation")
    op.drop_index("ix_evaluation_org_evaluated_id", table_name="evaluation")
