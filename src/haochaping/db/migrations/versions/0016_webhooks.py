"""Webhook subscriptions to work-order events, delivered through the outbox (channel
`webhook`).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base
import haochaping.db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("org_id", BIGINT, nullable=False),
        sa.Column("client_id", BIGINT, nullable=True),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", haochaping.db.types.EncryptedString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_client.id"],
            name=op.f("fk_webhook_subscription_client_id_api_client"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["org.id"], name=op.f("fk_webhook_subscription_org_id_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_subscription_org_id"), ["org_id"], unique=False
        )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_message_channel_valid"), type_="check")
        batch_op.create_check_constraint("channel_valid", "channel IN ('email', 'sms', 'webhook')")


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_message_channel_valid"), type_="check")
        batch_op.create_check_constraint("channel_valid", "channel IN ('email', 'sms')")
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_subscription_org_id"))
    op.drop_table("webhook_subscription")
