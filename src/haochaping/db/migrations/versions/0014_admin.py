"""Administration in the console: organisations, staff and service items can be
deactivated (never deleted: ratings and work orders keep pointing at them); a staff member's
photo (stored like work-order attachments, under a random key).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None

TABLES = ("org", "staff", "item")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
            )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("photo_type", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("photo_type")
        batch_op.drop_column("photo_key")
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("active")
