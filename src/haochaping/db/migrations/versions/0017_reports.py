"""The monthly reports' archive (月度通报) and the staff's consent to be named in public
(窗口服务之星).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monthly_report",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("sm3", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_monthly_report_region_code_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monthly_report")),
        sa.UniqueConstraint(
            "region_code", "month", name=op.f("uq_monthly_report_region_code_month")
        ),
    )
    with op.batch_alter_table("monthly_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monthly_report_region_code"), ["region_code"], unique=False
        )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "publish_consent_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("publish_consent_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("publish_consent_by")
        batch_op.drop_column("publish_consent_at")
    with op.batch_alter_table("monthly_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monthly_report_region_code"))
    op.drop_table("monthly_report")
