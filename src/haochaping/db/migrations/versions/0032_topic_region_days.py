"""Term and volume counts per local day and region of the rating (`topic_term_region_day`,
`topic_volume_region_day`): a region's top terms over a month without grouping the day rows
of every unit and item.

Revision ID: 0032
Revises: 0031

The counts are a read side: the new tables cannot be filled from the old ones (those have no
region of the rating), so every count table is emptied and the text analysis watermarks are set
back to 0; the next job pass counts every rating again (as `haochaping topics rebuild` does).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels = None
depends_on = None

COUNT_TABLES = (
    "topic_term_day",
    "topic_volume_day",
    "topic_term_week",
    "topic_volume_week",
    "topic_term_run",
    "topic_volume_run",
)
WATERMARKS = ("topics.ratings", "topics.standing_events", "topics.run_week")


def _recount() -> None:
    for table in COUNT_TABLES:
        op.execute(f"DELETE FROM {table}")
    names = ", ".join(f"'{n}'" for n in WATERMARKS)
    op.execute(f"UPDATE job_state SET value = 0 WHERE name IN ({names})")


def upgrade() -> None:
    op.create_table(
        "topic_term_region_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("level_class", sa.String(length=5), nullable=False),
        sa.Column("gram", sa.String(length=6), nullable=False),
        sa.Column("term", sa.String(length=70), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "gram IN ('reason', 'term', 'phrase')",
            name=op.f("ck_topic_term_region_day_gram_valid"),
        ),
        sa.CheckConstraint(
            "level_class IN ('bad', 'basic', 'good')",
            name=op.f("ck_topic_term_region_day_level_class_valid"),
        ),
        sa.PrimaryKeyConstraint(
            "day",
            "region_code",
            "level_class",
            "gram",
            "term",
            name=op.f("pk_topic_term_region_day"),
        ),
    )
    op.create_table(
        "topic_volume_region_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("level_class", sa.String(length=5), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "level_class IN ('bad', 'basic', 'good')",
            name=op.f("ck_topic_volume_region_day_level_class_valid"),
        ),
        sa.PrimaryKeyConstraint(
            "day", "region_code", "level_class", name=op.f("pk_topic_volume_region_day")
        ),
    )
    _recount()


def downgrade() -> None:
    op.drop_table("topic_volume_region_day")
    op.drop_table("topic_term_region_day")
    # The old counts were counted with the new tables beside them: the same figures; kept.
