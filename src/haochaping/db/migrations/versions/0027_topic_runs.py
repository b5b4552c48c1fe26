"""Running sums of the default emerging-topics question (`topic_term_run`,
`topic_volume_run`), and the indexes of its weekly counts and examples.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topic_term_run",
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.String(length=70), nullable=False),
        sa.Column("recent", sa.Integer(), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_code", "item_id", "term", name=op.f("pk_topic_term_run")),
    )
    op.create_table(
        "topic_volume_run",
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("recent", sa.Integer(), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_code", "item_id", name=op.f("pk_topic_volume_run")),
    )
    # The sums are built by the next job pass (its week watermark starts at 0).
    with op.batch_alter_table("topic_term_week", schema=None) as batch_op:
        batch_op.create_index("ix_topic_term_week_item_term", ["item_id", "term"], unique=False)
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evaluation_item_received", ["item_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluation_item_received")
    with op.batch_alter_table("topic_term_week", schema=None) as batch_op:
        batch_op.drop_index("ix_topic_term_week_item_term")
    op.drop_table("topic_volume_run")
    op.drop_table("topic_term_run")
