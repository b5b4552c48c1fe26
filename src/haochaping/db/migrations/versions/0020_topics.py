"""The text analysis (社情民意, issue 12): term counts per day x unit x item x level class and
per week x region x item, the rating volume beside them, and the administrators' dictionary
words.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topic_term_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("level_class", sa.String(length=5), nullable=False),
        sa.Column("gram", sa.String(length=6), nullable=False),
        sa.Column("term", sa.String(length=70), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "gram IN ('reason', 'term', 'phrase')", name=op.f("ck_topic_term_day_gram_valid")
        ),
        sa.CheckConstraint(
            "level_class IN ('bad', 'basic', 'good')",
            name=op.f("ck_topic_term_day_level_class_valid"),
        ),
        sa.PrimaryKeyConstraint(
            "day",
            "org_id",
            "item_id",
            "level_class",
            "gram",
            "term",
            name=op.f("pk_topic_term_day"),
        ),
    )
    with op.batch_alter_table("topic_term_day", schema=None) as batch_op:
        batch_op.create_index("ix_topic_term_day_item_day", ["item_id", "day"], unique=False)

    op.create_table(
        "topic_term_week",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.String(length=70), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "week", "region_code", "item_id", "term", name=op.f("pk_topic_term_week")
        ),
    )
    op.create_table(
        "topic_volume_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("level_class", sa.String(length=5), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "level_class IN ('bad', 'basic', 'good')",
            name=op.f("ck_topic_volume_day_level_class_valid"),
        ),
        sa.PrimaryKeyConstraint(
            "day", "org_id", "item_id", "level_class", name=op.f("pk_topic_volume_day")
        ),
    )
    with op.batch_alter_table("topic_volume_day", schema=None) as batch_op:
        batch_op.create_index("ix_topic_volume_day_day", ["day"], unique=False)

    op.create_table(
        "topic_volume_week",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "week", "region_code", "item_id", name=op.f("pk_topic_volume_week")
        ),
    )
    op.create_table(
        "topic_word",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("word", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topic_word")),
        sa.UniqueConstraint("word", name=op.f("uq_topic_word_word")),
    )


def downgrade() -> None:
    op.drop_table("topic_word")
    op.drop_table("topic_volume_week")
    with op.batch_alter_table("topic_volume_day", schema=None) as batch_op:
        batch_op.drop_index("ix_topic_volume_day_day")

    op.drop_table("topic_volume_day")
    op.drop_table("topic_term_week")
    with op.batch_alter_table("topic_term_day", schema=None) as batch_op:
        batch_op.drop_index("ix_topic_term_day_item_day")

    op.drop_table("topic_term_day")
