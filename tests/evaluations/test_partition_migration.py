"""Migration 0033 on a PostgreSQL database that holds ratings at 0032: the table partitioned by
month, every rating in its month's partition with every column as it was, the references
moved to the key table, the once-rules and the append-only guard kept; down again to the
plain table with the same rows, and up once more. (SQLite: the migration changes nothing.)"""

from __future__ import annotations

import pytest
from alembic import command

from haochaping.db import migrate
from tests.evaluations.test_table_migrations import database, execute  # noqa: F401 (fixture)

COLUMNS = (
    "case_id, stage, eval_count, channel, level, reasons, comment, tagset_version, org_id, "
    "region_code, rater_type, anonymous, is_public, is_default, evaluated_at, received_at, "
    "origin_client_id, origin_ref"
)
REFERENCE = [
    "INSERT INTO region (code, name, tier, path, created_at) VALUES "
    "('330102', '上城区', 3, '/330102/', '2023-01-01 00:00:00+00:00')",
    "INSERT INTO org (id, code, name, kind, region_code, path, created_at, active) VALUES "
    "(1, 'HALL-A', '市民之家', 'hall', '330102', '/HALL-A/', '2023-01-01 00:00:00+00:00', true)",
    "INSERT INTO item (id, code, name, org_id, created_at, active) VALUES "
    "(1, 'ITEM-A1', '事项', 1, '2023-01-01 00:00:00+00:00', true)",
]


def _case(n: int) -> str:
    return (
        "INSERT INTO service_case (id, case_no, item_id, org_id, mode, case_type, status, "
        f"applicant_type, created_at, updated_at) VALUES ({n}, 'HZ-{n}', 1, 1, 'offline', "
        "'即办件', 'completed', 'person', '2023-10-01 00:00:00+00', '2023-10-01 00:00:00+00')"
    )


def _rating(case: str, count: int, received: str, origin: str = "NULL, NULL") -> str:
    return (
        f"INSERT INTO evaluation ({COLUMNS}) VALUES ({case}, 'whole', {count}, 'pad', 5, "
        f"'[\"517\"]', '办事很快 {received}', 'national-2020', 1, '330102', 'person', false, "
        f"true, false, '{received}', '{received}', {origin})"
    )


# China time: 2023-10-31 23:59 +08:00 is October, 2023-11-01 00:00 +08:00 November.
RATINGS = [
    _rating("1", 1, "2023-10-31 15:59:00+00"),
    _rating("1", 2, "2023-10-31 16:00:00+00"),
    _rating("2", 1, "2024-01-15 08:00:00+00"),
    _rating("NULL", 1, "2024-01-15 09:00:00+00", origin="7, 4242"),
    _rating("3", 1, "2024-02-29 20:00:00+00"),
]
SNAPSHOT = f"SELECT id, {COLUMNS}, tableoid::regclass::text AS part FROM evaluation ORDER BY id"


def _rows(settings) -> list[dict]:
    return [dict(r) for r in execute(settings, [SNAPSHOT])]


def test_0033_moves_a_database_with_ratings_to_monthly_partitions(database):  # noqa: F811
    if not database.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite keeps one ratings table")
    config = migrate.alembic_config(database)
    command.upgrade(config, "0032")
    execute(
        database,
        [
            *REFERENCE,
            _case(1),
            _case(2),
            _case(3),
            *RATINGS,
            "INSERT INTO evaluation_standing (evaluation_id, standing, reason, decided_by, "
            "updated_at) SELECT id, 'held', 'test', 'system', now() FROM evaluation "
            "WHERE case_id = 2",
            "SELECT 1",
        ],
    )
    before = _rows(database)
    assert len(before) == 5
    command.upgrade(config, "0033")
    after = _rows(database)
    # Every rating and column as it was, each in its month's partition (China time).
    strip = [{k: v for k, v in r.items() if k != "part"} for r in after]
    assert strip == [{k: v for k, v in r.items() if k != "part"} for r in before]
    assert [r["part"] for r in after] == [
        "evaluation_y2023m10",
        "evaluation_y2023m11",
        "evaluation_y2024m01",
        "evaluation_y2024m01",
        "evaluation_y2024m03",
    ]
    ids = [r["id"] for r in after]
    assert [r[0] for r in execute(database, ["SELECT id FROM evaluation_key ORDER BY id"])] == ids
    once = execute(
        database, ["SELECT case_id, eval_count, evaluation_id FROM evaluation_once ORDER BY 1, 2"]
    )
    assert [tuple(r) for r in once] == [
        (1, 1, ids[0]),
        (1, 2, ids[1]),
        (2, 1, ids[2]),
        (3, 1, ids[4]),
    ]
    assert [tuple(r) for r in execute(database, ["SELECT * FROM evaluation_origin"])] == [
        (7, 4242, ids[3])
    ]
    # The reference now points at the key table and still holds.
    target = execute(
        database,
        [
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conname = 'fk_evaluation_standing_evaluation_id_evaluation'"
        ],
    )
    assert target[0][0] == "evaluation_key"
    with pytest.raises(Exception, match="foreign key"):
        execute(
            database,
            [
                "INSERT INTO evaluation_standing (evaluation_id, standing, reason, decided_by, "
                "updated_at) VALUES (999999, 'held', 'x', 'system', now())",
                "SELECT 1",
            ],
        )
    # The once-rule across months, the sequence going on, the guard on every partition.
    added = execute(
        database,
        [
            _rating("1", 1, "2024-03-01 00:00:00+00") + " RETURNING id",
        ],
    )
    assert added == []
    new = execute(database, [_rating("NULL", 1, "2024-03-02 00:00:00+00") + " RETURNING id"])
    assert new[0][0] > max(ids)
    with pytest.raises(Exception, match="评价记录不可修改或删除"):
        execute(database, ["UPDATE evaluation SET level = 1 WHERE received_at < '2023-11-01'"])
    with pytest.raises(Exception, match="评价记录不可修改或删除"):
        execute(database, ["TRUNCATE evaluation_y2023m10"])
    # Down: the plain table with the same rows, constraints back on it.
    command.downgrade(config, "0032")
    down = _rows(database)
    assert [r["id"] for r in down] == [*ids, new[0][0]]
    assert {r["part"] for r in down} == {"evaluation"}
    assert (
        execute(
            database,
            [
                "SELECT confrelid::regclass::text FROM pg_constraint "
                "WHERE conname = 'fk_evaluation_standing_evaluation_id_evaluation'"
            ],
        )[0][0]
        == "evaluation"
    )
    with pytest.raises(Exception, match="uq_evaluation_case_id_stage_eval_count"):
        execute(database, [_rating("1", 1, "2024-03-01 00:00:00+00"), "SELECT 1"])
    command.upgrade(config, "head")
    assert [r["id"] for r in _rows(database)] == [*ids, new[0][0]]
