"""sweep_indexes (empty until that work lands)

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
