"""The malicious-rater register as an office keeps it: each entry's organisation (its scope),
a masked hint of the identifier, the evidence of an entry made outside an appeal, and the
early revocation (who, when, why).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haochaping.db.base

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("malicious_rater", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_id", BIGINT, nullable=True))
        batch_op.add_column(sa.Column("masked", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("evidence", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("revoked_at", haochaping.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("revoke_note", sa.Text(), nullable=True))
        batch_op.alter_column("appeal_id", existing_type=BIGINT, nullable=True)
    # Entries made by an appeal's decision belong to the appealing unit's organisation.
    op.execute(
        "UPDATE malicious_rater SET org_id = "
        "(SELECT appeal.org_id FROM appeal WHERE appeal.id = malicious_rater.appeal_id)"
    )
    with op.batch_alter_table("malicious_rater", schema=None) as batch_op:
        batch_op.alter_column("org_id", existing_type=BIGINT, nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_malicious_rater_org_id_org"), "org", ["org_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_malicious_rater_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("malicious_rater", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_malicious_rater_org_id"))
        batch_op.drop_constraint(batch_op.f("fk_malicious_rater_org_id_org"), type_="foreignkey")
        batch_op.drop_column("revoke_note")
        batch_op.drop_column("revoked_by")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("evidence")
        batch_op.drop_column("masked")
        batch_op.drop_column("org_id")
    # Entries made outside an appeal cannot survive the older schema.
    op.execute("DELETE FROM malicious_rater WHERE appeal_id IS NULL")
    with op.batch_alter_table("malicious_rater", schema=None) as batch_op:
        batch_op.alter_column("appeal_id", existing_type=BIGINT, nullable=False)
