"""12345 call ids on ratings (`evaluation.call_id`); 监督查评: each region's inspection
checklist, the visits and their photos.

Adding a nullable column leaves the PostgreSQL append-only trigger on `evaluation` as it is:
it fires on UPDATE and DELETE only, and no existing row is rewritten.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = haochaping.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no batch copy of the largest table).
    op.add_column("evaluation", sa.Column("call_id", sa.String(length=64), nullable=True))
    op.create_table(
        "inspection_checklist",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["region.code"],
            name=op.f("fk_inspection_checklist_region_code_region"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_checklist")),
    )
    op.create_index(
        "ix_inspection_checklist_region_id", "inspection_checklist", ["region_code", "id"]
    )
    op.create_table(
        "inspection_visit",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("org_id", BIGINT, nullable=False),
        sa.Column("inspector_id", BIGINT, nullable=False),
        sa.Column("visited_at", UTC, nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("checklist_id", BIGINT, nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("evaluation_id", BIGINT, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name=op.f("ck_inspection_visit_level_range")),
        sa.ForeignKeyConstraint(
            ["checklist_id"],
            ["inspection_checklist.id"],
            name=op.f("fk_inspection_visit_checklist_id_inspection_checklist"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluation.id"],
            name=op.f("fk_inspection_visit_evaluation_id_evaluation"),
        ),
        sa.ForeignKeyConstraint(
            ["inspector_id"],
            ["app_user.id"],
            name=op.f("fk_inspection_visit_inspector_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["org.id"], name=op.f("fk_inspection_visit_org_id_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_visit")),
        sa.UniqueConstraint("evaluation_id", name=op.f("uq_inspection_visit_evaluation_id")),
    )
    op.create_index("ix_inspection_visit_org_id", "inspection_visit", ["org_id"])
    op.create_index("ix_inspection_visit_inspector_id", "inspection_visit", ["inspector_id"])
    op.create_index("ix_inspection_visit_visited_id", "inspection_visit", ["visited_at", "id"])
    op.create_table(
        "inspection_photo",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("visit_id", BIGINT, nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["inspection_visit.id"],
            name=op.f("fk_inspection_photo_visit_id_inspection_visit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_photo")),
    )
    op.create_index("ix_inspection_photo_visit_id", "inspection_photo", ["visit_id"])


def downgrade() -> None:
    op.drop_index("ix_inspection_photo_visit_id", table_name="inspection_photo")
    op.drop_table("inspection_photo")
    op.drop_index("ix_inspection_visit_visited_id", table_name="inspection_visit")
    op.drop_index("ix_inspection_visit_inspector_id", table_name="inspection_visit")
    op.drop_index("ix_inspection_visit_org_id", table_name="inspection_visit")
    op.drop_table("inspection_visit")
    op.drop_index("ix_inspection_checklist_region_id", table_name="inspection_checklist")
    op.drop_table("inspection_checklist")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_column("call_id")
