"""A partial index of the bad first ratings by organisation and receipt
(`ix_evaluation_org_received_bad`): the bad-review funnel of a scope reads its organisations'
bad ratings of a period as index ranges, not every rating of the period (a city's 30 days at
10M ratings: ~330 bad of ~27,000).

Building it reads the ratings table once (at 10M ratings, tens of seconds during which
intake waits on PostgreSQL); the index holds about 1 % of the ratings.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels = None
depends_on = None

BAD = "level <= 2 AND eval_count = 1"


def upgrade() -> None:
    op.create_index(
        "ix_evaluation_org_received_bad",
        "evaluation",
        ["org_id", "received_at"],
        postgresql_where=sa.text(BAD),
        sqlite_where=sa.text(BAD),
    )


def downgrade() -> None:
    op.drop_index("ix_evaluation_org_received_bad", table_name="evaluation")
