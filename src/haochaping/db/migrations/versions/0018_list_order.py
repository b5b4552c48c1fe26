"""The console's lists ordered by the time people care about: indexes on (time, id) for the
rating list, the spot-check queue and the review queue of flags.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_evaluation_evaluated_id", "evaluation", ["evaluated_at", "id"])
    op.create_index("ix_spot_check_state_created_id", "spot_check", ["state", "created_at", "id"])
    op.create_index(
        "ix_integrity_flag_state_created_id", "integrity_flag", ["state", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_integrity_flag_state_created_id", table_name="integrity_flag")
    op.drop_index("ix_spot_check_state_created_id", table_name="spot_check")
    op.drop_index("ix_evaluation_evaluated_id", table_name="evaluation")
