"""Ranked rows of closed periods, kept (`stat_ranking_snapshot`), and the directory's changes
(`directory_change`): a trigger adds a row for every change of an organisation, region, staff
member or item (issue 10: a closed month's ranking becomes one indexed read).

A snapshot holds the answer of `analytics.metrics.rankings` for one resolved question
(scope, tier, period, formula) of a period that closed more than the intake grace ago. It
stays good while no directory change follows its directory mark and no standing change after
its event mark touches a rating of its range (`analytics/snapshots.py`). The change rows are
only inserted, never updated: concurrent writers take no common lock (a counter row would
serialise them, and deadlock two exchange batches learning staff in code order).

The triggers fire on INSERT, DELETE and on UPDATE of the columns a ranking shows or groups
by (not, say, a staff member's photo). A later migration that rebuilds one of these tables on
SQLite (`batch_alter_table`) drops its triggers and must create them again;
tests/analytics/test_snapshots.py fails at head if it does not.

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Table -> the columns whose change can change a ranking (names, codes, the tree).
WATCHED = {
    "org": ("code", "name", "kind", "parent_id", "region_code", "path", "active"),
    "region": ("code", "name", "parent_code", "tier", "path"),
    "staff": ("staff_no", "name", "org_id", "active", "publish_consent_at"),
    "item": ("code", "basic_code", "name", "org_id", "active"),
}
# clock_timestamp(), not now(): the time of the change, not of its transaction's start (the
# marks take changes older than the intake grace as committed).
NOTE_PG = "INSERT INTO directory_change (created_at) VALUES (clock_timestamp())"
NOTE_SQLITE = "INSERT INTO directory_change (created_at) VALUES (CURRENT_TIMESTAMP)"


def upgrade() -> None:
    op.create_table(
        "directory_change",
        sa.Column("id", BigIntPK, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stat_ranking_snapshot",
        sa.Column("id", BigIntPK, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        # The ratings the answer read: [since, until) (the period and the one before it).
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("directory_mark", sa.BigInteger(), nullable=False),
        sa.Column("event_mark", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        # The API's JSON of the same answer, served as stored (no parse, no model).
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION directory_change_note() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {NOTE_PG}; RETURN NULL; END $$"
        )
        for table, columns in WATCHED.items():
            op.execute(
                f"CREATE TRIGGER {table}_directory_change AFTER INSERT OR DELETE OR UPDATE OF "
                f"{', '.join(columns)} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION directory_change_note()"
            )
    else:
        for table, columns in WATCHED.items():
            for event in ("INSERT", "DELETE", f"UPDATE OF {', '.join(columns)}"):
                name = f"{table}_directory_change_{event.split()[0].lower()}"
                op.execute(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {NOTE_SQLITE}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_directory_change ON {table}")
        op.execute("DROP FUNCTION IF EXISTS directory_change_note()")
    else:
        for table in WATCHED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_directory_change_{event}")
    op.drop_table("stat_ranking_snapshot")
    op.drop_table("directory_change")
