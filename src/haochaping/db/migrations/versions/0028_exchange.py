"""Reporting up (issue 14): the child's send position per stream (`upstream_stream`), the
parent's copy of reported work-order outcomes (`exchange_work_order`) and the origin of a
reported rating (`evaluation.origin_client_id`, `origin_ref`).

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = haochaping.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upstream_stream",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("locked_by", sa.String(length=100), nullable=True),
        sa.Column("locked_until", TIME, nullable=True),
        sa.Column("last_attempt_at", TIME, nullable=True),
        sa.Column("last_success_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TIME, nullable=True),
        sa.Column("sent_through", TIME, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_upstream_stream")),
    )
    op.create_table(
        "exchange_work_order",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("client_id", BIGINT, nullable=False),
        sa.Column("origin_ref", sa.BigInteger(), nullable=False),
        sa.Column("evaluation_id", BIGINT, nullable=True),
        sa.Column("case_no", sa.String(length=50), nullable=True),
        sa.Column("stage", sa.String(length=30), nullable=False),
        sa.Column("eval_count", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("close_reason", sa.String(length=200), nullable=True),
        sa.Column("event_ref", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_client.id"],
            name=op.f("fk_exchange_work_order_client_id_api_client"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluation.id"],
            name=op.f("fk_exchange_work_order_evaluation_id_evaluation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_work_order")),
        sa.UniqueConstraint(
            "client_id", "origin_ref", name=op.f("uq_exchange_work_order_client_id_origin_ref")
        ),
    )
    with op.batch_alter_table("exchange_work_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_work_order_evaluation_id"), ["evaluation_id"], unique=False
        )
    # Plain columns and an index: SQLite adds them without copying the ratings table.
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_client_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("origin_ref", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            "ix_evaluation_origin", ["origin_client_id", "origin_ref"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluation_origin")
        batch_op.drop_column("origin_ref")
        batch_op.drop_column("origin_client_id")
    with op.batch_alter_table("exchange_work_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_work_order_evaluation_id"))
    op.drop_table("exchange_work_order")
    op.drop_table("upstream_stream")
