"""SMS replies: a bad level held until its reason arrives (`sms_dialogue`).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_dialogue",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("invitation_id", BIGINT, nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitation.id"],
            name=op.f("fk_sms_dialogue_invitation_id_invitation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_dialogue")),
    )
    with op.batch_alter_table("sms_dialogue", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sms_dialogue_invitation_id"), ["invitation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sms_dialogue_phone_hash"), ["phone_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_dialogue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_dialogue_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_sms_dialogue_invitation_id"))
    op.drop_table("sms_dialogue")
