"""Rollup tables of the statistics: day x node x channel, month x node x rated thing, month x
node x reason (analytics/rollups.py), each with the 14 measures of analytics/models.py.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None

MEASURES = ("v1", "v2", "v3", "v4", "v5", "h1", "h2", "h3", "h4", "h5", "inv", "d", "dh", "di")


def _measures() -> list[sa.Column]:
    return [sa.Column(m, sa.Integer(), server_default="0", nullable=False) for m in MEASURES]


def upgrade() -> None:
    op.create_table(
        "stat_day_node",
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("node_id", "day", "channel", name=op.f("pk_stat_day_node")),
    )
    op.create_table(
        "stat_month_key",
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("dim", sa.String(length=10), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("node_id", "dim", "month", "key", name=op.f("pk_stat_month_key")),
    )
    op.create_table(
        "stat_month_reason",
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("node_id", "month", "reason", name=op.f("pk_stat_month_reason")),
    )


def downgrade() -> None:
    op.drop_table("stat_month_reason")
    op.drop_table("stat_month_key")
    op.drop_table("stat_day_node")
