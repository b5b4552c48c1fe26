"""Keep the comment as typed only encrypted: phone and ID numbers are masked in `comment`.

Revision ID: 0010
Revises: 0009

Adds evaluation.comment_original (SM4-encrypted text, set only when intake masked something).
Comments stored before this revision are left as they are: rewriting them would change the
content of ratings already sealed in the ledger (ledger/hashing.py), and every answer and
page masks them on display as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: no table rebuild on SQLite, and PostgreSQL's
    # append-only trigger on evaluation fires on UPDATE/DELETE only.
    op.add_column("evaluation", sa.Column("comment_original", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_column("comment_original")
