"""PostgreSQL: the ratings table `evaluation` partitioned by month of receipt.

Revision ID: 0033
Revises: 0032

On PostgreSQL `evaluation` becomes `PARTITION BY RANGE (received_at)`, one partition a month
(`evaluation_y2026m11`, bounds at 00:00 China Standard Time) and `evaluation_default` for a
rating outside every month (the periodic job creates three months ahead and reports DEFAULT).
A unique key on a partitioned table must contain the partition key, so what had to be unique
across the table moves to narrow, unpartitioned tables that a BEFORE INSERT trigger on the
ratings fills in the same statement:

- `evaluation_key (id PK, received_at)`: ids stay unique across months, and every reference to
  a rating (work orders, ledger, standings, integrity flags, appeals, spot checks, inspection
  visits, exchange) points at it instead of at the partitioned table;
- `evaluation_once (case_id, stage, eval_count) PK`: once per case, stage and count;
- `evaluation_origin (origin_client_id, origin_ref) PK`: once per child instance's rating.

A rating whose (case, stage, count) or origin is already taken is not stored and the INSERT
returns no row for it, as `INSERT … ON CONFLICT DO NOTHING` did on the unique constraints
(what intake and the exchange read through RETURNING). Rows of the narrow tables outlive a
detached month: the once-rule outlives retention.

The primary key becomes `(id, received_at)`. Append-only: the row triggers are created on the
parent (every partition inherits them); TRUNCATE triggers are per partition.

SQLite keeps one table: nothing changes there.

The upgrade rebuilds the table in one transaction (copy, then the indexes and keys set-based;
about the time of an index rebuild). The downgrade rebuilds the plain table from the attached
partitions; it fails if a month has been detached while ratings of it are still referenced
(restore and re-attach it first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

from alembic import op
from sqlalchemy import text

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CST = timezone(timedelta(hours=8))
MESSAGE = "评价记录不可修改或删除（好差评评价只增不改）"
MONTHS_AHEAD = 3
# Unique indexes of the plain table whose rule moves to a narrow table (not re-created).
MOVED_UNIQUE = ("pk_evaluation", "uq_evaluation_case_id_stage_eval_count", "ix_evaluation_origin")

CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION hcp_evaluation_claim() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.case_id IS NOT NULL THEN
        INSERT INTO evaluation_once (case_id, stage, eval_count, evaluation_id)
        VALUES (NEW.case_id, NEW.stage, NEW.eval_count, NEW.id)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN NULL;  -- rated before: skipped, as ON CONFLICT DO NOTHING
        END IF;
    END IF;
    IF NEW.origin_client_id IS NOT NULL AND NEW.origin_ref IS NOT NULL THEN
        INSERT INTO evaluation_origin (origin_client_id, origin_ref, evaluation_id)
        VALUES (NEW.origin_client_id, NEW.origin_ref, NEW.id)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            IF NEW.case_id IS NOT NULL THEN  -- give back the claim made above
                DELETE FROM evaluation_once
                WHERE case_id = NEW.case_id AND stage = NEW.stage
                  AND eval_count = NEW.eval_count AND evaluation_id = NEW.id;
            END IF;
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO evaluation_key (id, received_at) VALUES (NEW.id, NEW.received_at);
    RETURN NEW;
END
$$
"""

# A rating deleted underneath the service (the guard bypassed, as a replica or a restore does:
# a loss) gives its case and origin back, as deleting it from the plain table freed its unique
# keys, so that a repair can store it again. Fires ALWAYS (also under
# session_replication_role = replica). Detaching a month deletes nothing: its claims stay.
RELEASE_FUNCTION = """
CREATE OR REPLACE FUNCTION hcp_evaluation_release() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.case_id IS NOT NULL THEN
        DELETE FROM evaluation_once
        WHERE case_id = OLD.case_id AND stage = OLD.stage AND eval_count = OLD.eval_count
          AND evaluation_id = OLD.id;
    END IF;
    IF OLD.origin_client_id IS NOT NULL AND OLD.origin_ref IS NOT NULL THEN
        DELETE FROM evaluation_origin
        WHERE origin_client_id = OLD.origin_client_id AND origin_ref = OLD.origin_ref
          AND evaluation_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$
"""


def month_name(month: date) -> str:
    return f"evaluation_y{month.year:04d}m{month.month:02d}"


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def create_partition(month: date) -> None:
    lo = datetime(month.year, month.month, 1, tzinfo=CST).isoformat()
    hi = datetime(*next_month(month).timetuple()[:3], tzinfo=CST).isoformat()
    name = month_name(month)
    op.execute(f"CREATE TABLE {name} PARTITION OF evaluation FOR VALUES FROM ('{lo}') TO ('{hi}')")
    op.execute(
        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )


def _rows(sql: str) -> list:
    return list(op.get_bind().execute(text(sql)).all())


def _index_defs(table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in _rows(
            "SELECT indexname, indexdef FROM pg_indexes "
            f"WHERE schemaname = current_schema() AND tablename = '{table}' ORDER BY indexname"
        )
    ]


def _foreign_keys(where: str) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the foreign keys matching `where` (on pg_constraint c)."""
    return [
        (r[0], r[1], r[2])
        for r in _rows(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            f"FROM pg_constraint c WHERE c.contype = 'f' AND {where} ORDER BY 1, 2"
        )
    ]


def _month_of(moment: datetime) -> date:
    local = moment.astimezone(CST)
    return date(local.year, local.month, 1)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("LOCK TABLE evaluation IN ACCESS EXCLUSIVE MODE")
    indexes = [(n, d) for n, d in _index_defs("evaluation") if n not in MOVED_UNIQUE]
    outgoing = _foreign_keys("c.conrelid = 'evaluation'::regclass")
    incoming = _foreign_keys("c.confrelid = 'evaluation'::regclass")
    for table, name, _ in incoming:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE evaluation RENAME TO evaluation_old")
    op.execute("ALTER SEQUENCE evaluation_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE evaluation (LIKE evaluation_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (received_at)"
    )
    op.execute("CREATE TABLE evaluation_default PARTITION OF evaluation DEFAULT")
    op.execute(
        "CREATE TRIGGER evaluation_default_no_truncate BEFORE TRUNCATE ON evaluation_default "
        f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )
    # From the oldest rating's month (China time) to three months ahead of today.
    oldest = op.get_bind().execute(text("SELECT min(received_at) FROM evaluation_old")).scalar()
    today = _month_of(datetime.now(CST))
    month = _month_of(oldest) if oldest is not None else today
    month = min(month, today)
    last = today
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    while month <= last:
        create_partition(month)
        month = next_month(month)
    op.execute("INSERT INTO evaluation SELECT * FROM evaluation_old")
    op.execute("DROP TABLE evaluation_old")
    # After the old table's indexes are gone: the narrow tables reuse their names.
    op.execute(
        "CREATE TABLE evaluation_key (id bigint NOT NULL, "
        "received_at timestamp with time zone NOT NULL, "
        "CONSTRAINT pk_evaluation_key PRIMARY KEY (id))"
    )
    op.execute(
        "CREATE TABLE evaluation_once (case_id bigint NOT NULL, stage varchar(30) NOT NULL, "
        "eval_count smallint NOT NULL, evaluation_id bigint NOT NULL, "
        "CONSTRAINT uq_evaluation_case_id_stage_eval_count "
        "PRIMARY KEY (case_id, stage, eval_count))"
    )
    op.execute(
        "CREATE TABLE evaluation_origin (origin_client_id bigint NOT NULL, "
        "origin_ref bigint NOT NULL, evaluation_id bigint NOT NULL, "
        "CONSTRAINT ix_evaluation_origin PRIMARY KEY (origin_client_id, origin_ref))"
    )
    op.execute(
        "INSERT INTO evaluation_key (id, received_at) SELECT id, received_at FROM evaluation"
    )
    op.execute(
        "INSERT INTO evaluation_once (case_id, stage, eval_count, evaluation_id) "
        "SELECT case_id, stage, eval_count, id FROM evaluation WHERE case_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO evaluation_origin (origin_client_id, origin_ref, evaluation_id) "
        "SELECT origin_client_id, origin_ref, id FROM evaluation "
        "WHERE origin_client_id IS NOT NULL AND origin_ref IS NOT NULL"
    )
    op.execute("ALTER SEQUENCE evaluation_id_seq OWNED BY evaluation.id")
    op.execute("ALTER TABLE evaluation ADD CONSTRAINT pk_evaluation PRIMARY KEY (id, received_at)")
    for _name, definition in indexes:
        op.execute(definition)
    # The child instance's ratings are still looked up by their id there (not unique here).
    op.execute(
        "CREATE INDEX ix_evaluation_origin_lookup ON evaluation (origin_client_id, origin_ref)"
    )
    for _table, name, definition in outgoing:
        op.execute(f"ALTER TABLE evaluation ADD CONSTRAINT {name} {definition}")
    for table, name, definition in incoming:
        keyed = definition.replace("REFERENCES evaluation(id)", "REFERENCES evaluation_key(id)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {keyed}")
    op.execute(CLAIM_FUNCTION)
    op.execute(
        "CREATE TRIGGER evaluation_claim BEFORE INSERT ON evaluation "
        "FOR EACH ROW EXECUTE FUNCTION hcp_evaluation_claim()"
    )
    op.execute(RELEASE_FUNCTION)
    op.execute(
        "CREATE TRIGGER evaluation_release AFTER DELETE ON evaluation "
        "FOR EACH ROW EXECUTE FUNCTION hcp_evaluation_release()"
    )
    op.execute("ALTER TABLE evaluation ENABLE ALWAYS TRIGGER evaluation_release")
    op.execute(
        "CREATE TRIGGER evaluation_append_only BEFORE UPDATE OR DELETE ON evaluation "
        f"FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )
    op.execute(
        "CREATE TRIGGER evaluation_no_truncate BEFORE TRUNCATE ON evaluation "
        f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )
    op.execute("ANALYZE evaluation")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("LOCK TABLE evaluation IN ACCESS EXCLUSIVE MODE")
    indexes = [
        (n, d)
        for n, d in _index_defs("evaluation")
        if n not in ("pk_evaluation", "ix_evaluation_origin_lookup")
    ]
    outgoing = _foreign_keys("c.conrelid = 'evaluation'::regclass")
    incoming = _foreign_keys("c.confrelid = 'evaluation_key'::regclass")
    for table, name, _ in incoming:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE evaluation RENAME TO evaluation_part")
    op.execute("ALTER SEQUENCE evaluation_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE evaluation (LIKE evaluation_part INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS)"
    )
    op.execute("INSERT INTO evaluation SELECT * FROM evaluation_part")
    op.execute("DROP TABLE evaluation_part")  # its partitions with it (not detached ones)
    op.execute("DROP TABLE evaluation_key")
    op.execute("DROP TABLE evaluation_once")
    op.execute("DROP TABLE evaluation_origin")
    op.execute("DROP FUNCTION hcp_evaluation_claim()")
    op.execute("DROP FUNCTION IF EXISTS hcp_evaluation_release()")
    op.execute("ALTER SEQUENCE evaluation_id_seq OWNED BY evaluation.id")
    op.execute("ALTER TABLE evaluation ADD CONSTRAINT pk_evaluation PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE evaluation ADD CONSTRAINT uq_evaluation_case_id_stage_eval_count "
        "UNIQUE (case_id, stage, eval_count)"
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_evaluation_origin ON evaluation (origin_client_id, origin_ref)"
    )
    for _name, definition in indexes:
        op.execute(definition.replace(" ON ONLY ", " ON "))
    for _table, name, definition in outgoing:
        op.execute(f"ALTER TABLE evaluation ADD CONSTRAINT {name} {definition}")
    for table, name, definition in incoming:
        plain = definition.replace("REFERENCES evaluation_key(id)", "REFERENCES evaluation(id)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {plain}")
    op.execute(
        "CREATE TRIGGER evaluation_append_only BEFORE UPDATE OR DELETE ON evaluation "
        f"FOR EACH ROW EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )
    op.execute(
        "CREATE TRIGGER evaluation_no_truncate BEFORE TRUNCATE ON evaluation "
        f"FOR EACH STATEMENT EXECUTE FUNCTION hcp_refuse_change('{MESSAGE}')"
    )
