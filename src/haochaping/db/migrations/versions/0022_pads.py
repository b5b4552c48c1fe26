"""The window evaluator: pads paired with a window (`pad_device`), the services announced
at each window (`window_service`), and when a rating's faces were shown
(`evaluation.displayed_at`).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = haochaping.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pad_device",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("window_id", BIGINT, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pairing_hash", sa.String(length=64), nullable=True),
        sa.Column("pairing_expires_at", UTC, nullable=True),
        sa.Column("credential_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("paired_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("last_seen_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["window_id"], ["org.id"], name=op.f("fk_pad_device_window_id_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pad_device")),
        sa.UniqueConstraint("credential_hash", name=op.f("uq_pad_device_credential_hash")),
    )
    with op.batch_alter_table("pad_device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pad_device_window_id"), ["window_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pad_device_pairing_hash"), ["pairing_hash"], unique=False
        )
    op.create_table(
        "window_service",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("window_id", BIGINT, nullable=False),
        sa.Column("case_id", BIGINT, nullable=False),
        sa.Column("flow_no", sa.String(length=50), nullable=False),
        sa.Column("item_id", BIGINT, nullable=False),
        sa.Column("staff_id", BIGINT, nullable=True),
        sa.Column("client_id", BIGINT, nullable=True),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["window_id"], ["org.id"], name=op.f("fk_window_service_window_id_org")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["service_case.id"], name=op.f("fk_window_service_case_id_service_case")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_window_service_item_id_item")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_window_service_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_client.id"], name=op.f("fk_window_service_client_id_api_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_window_service")),
    )
    with op.batch_alter_table("window_service", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_window_service_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_window_service_window_started", ["window_id", "started_at"], unique=False
        )
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("displayed_at", UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_column("displayed_at")
    with op.batch_alter_table("window_service", schema=None) as batch_op:
        batch_op.drop_index("ix_window_service_window_started")
        batch_op.drop_index(batch_op.f("ix_window_service_case_id"))
    op.drop_table("window_service")
    with op.batch_alter_table("pad_device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pad_device_pairing_hash"))
        batch_op.drop_index(batch_op.f("ix_pad_device_window_id"))
    op.drop_table("pad_device")
