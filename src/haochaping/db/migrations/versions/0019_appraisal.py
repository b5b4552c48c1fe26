"""The appraisal (issue 12): versioned indicator schemes per region and year, and the elastic
bonus/deduction items of units per month.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appraisal_scheme",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("judgements", sa.JSON(), nullable=False),
        sa.Column("lambda_max", sa.Float(), nullable=False),
        sa.Column("ci", sa.Float(), nullable=False),
        sa.Column("cr", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_appraisal_scheme_version_positive")),
        sa.CheckConstraint(
            "year BETWEEN 1900 AND 2999", name=op.f("ck_appraisal_scheme_year_valid")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_appraisal_scheme_region_code_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_scheme")),
        sa.UniqueConstraint(
            "region_code",
            "year",
            "version",
            name=op.f("uq_appraisal_scheme_region_code_year_version"),
        ),
    )
    with op.batch_alter_table("appraisal_scheme", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appraisal_scheme_region_code"), ["region_code"], unique=False
        )

    op.create_table(
        "appraisal_adjustment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("points_tenths", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "points_tenths <> 0", name=op.f("ck_appraisal_adjustment_points_nonzero")
        ),
        sa.CheckConstraint(
            "points_tenths BETWEEN -200 AND 200", name=op.f("ck_appraisal_adjustment_points_range")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["org.id"], name=op.f("fk_appraisal_adjustment_org_id_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_adjustment")),
    )
    with op.batch_alter_table("appraisal_adjustment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appraisal_adjustment_month"), ["month"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_appraisal_adjustment_org_id"), ["org_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("appraisal_adjustment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appraisal_adjustment_org_id"))
        batch_op.drop_index(batch_op.f("ix_appraisal_adjustment_month"))

    op.drop_table("appraisal_adjustment")
    with op.batch_alter_table("appraisal_scheme", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appraisal_scheme_region_code"))

    op.drop_table("appraisal_scheme")
