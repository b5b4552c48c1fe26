"""sweep indexes

Revision ID: 0005
Revises: 0004
The deadline job's warning indexes carry the due time too: (state, warn, due).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("verify", "rectify", "callback")


def upgrade() -> None:
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        for kind in KINDS:
            batch_op.drop_index(f"ix_work_order_state_{kind}_warn")
            batch_op.create_index(
                f"ix_work_order_state_{kind}_warn",
                ["state", f"{kind}_warn_at", f"{kind}_due_at"],
                unique=False,
            )


def downgrade() -> None:
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        for kind in KINDS:
            batch_op.drop_index(f"ix_work_order_state_{kind}_warn")
            batch_op.create_index(
                f"ix_work_order_state_{kind}_warn", ["state", f"{kind}_warn_at"], unique=False
            )
