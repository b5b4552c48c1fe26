"""The bad-review funnel of a child's work orders on the parent: the deadlines, milestones
and callback outcome each reported order carries (`exchange_work_order`), so that the
parent's figures (verified / rectified on time, called back, satisfied, supervised, overdue)
count the child's orders beside its own.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels = None
depends_on = None

UTC = haochaping.db.base.UTCDateTime(timezone=True)
TIMES = (
    "verify_due_at",
    "verified_at",
    "rectify_due_at",
    "rectified_at",
    "callback_due_at",
    "overdue_at",
)
FLAGS = ("supervised", "called_back", "callback_satisfied")


def upgrade() -> None:
    with op.batch_alter_table("exchange_work_order", schema=None) as batch_op:
        for name in TIMES:
            batch_op.add_column(sa.Column(name, UTC, nullable=True))
        for name in FLAGS:
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    with op.batch_alter_table("exchange_work_order", schema=None) as batch_op:
        for name in (*FLAGS, *TIMES):
            batch_op.drop_column(name)
