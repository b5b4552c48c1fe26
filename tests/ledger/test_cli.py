"""`haochaping ledger seal` and `haochaping ledger verify` on a SQLite file, tampered with the
sqlite3 module as anyone who can write the file could."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from haochaping.cli import app as cli_app
from haochaping.config import Settings
from haochaping.core.timeutil import SHANGHAI
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.orgs.models import Org, Region
from tests.append_only import unguarded_file
from tests.ledger.conftest import EvaluationRowFactory, add_ratings


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs `haochaping ...` against a fresh, migrated SQLite file with 6 ratings."""
    path = tmp_path / "cli.db"
    url = f"sqlite+aiosqlite:///{path}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli_app, list(args))

    assert run("migrate").exit_code == 0

    async def seed() -> list[int]:
        engine = make_engine(Settings(database_url=url, _env_file=None))
        try:
            async with make_sessionmaker(engine)() as db:
                db.add(
                    Region(code="330102", name="上城区", parent_code=None, tier=3, path="/330102/")
                )
                await db.flush()
                db.add(
                    Org(
                        code="HALL-A",
                        name="上城区市民之家",
                        kind="hall",
                        parent_id=None,
                        region_code="330102",
                        path="/HALL-A/",
                    )
                )
                await db.commit()
                return await add_ratings(db, 6)
        finally:
            await engine.dispose()

    run.ids = asyncio.run(seed())
    run.path = path
    return run


def hex_root(cli) -> str:
    """The newest block's root, as verify prints it."""
    with closing(sqlite3.connect(cli.path)) as conn:
        row = conn.execute("SELECT root FROM ledger_block ORDER BY height DESC LIMIT 1").fetchone()
    return row[0].hex()


def test_seal_then_verify_clean(cli):
    sealed = cli("ledger", "seal", "--block-size", "4")
    assert sealed.exit_code == 0, sealed.output
    assert "已封存 6 条评价，区块 1–2（共 2 个）" in sealed.output
    again = cli("ledger", "seal")
    assert again.exit_code == 0 and "没有需要封存的新评价" in again.output
    checked = cli("ledger", "verify")
    assert checked.exit_code == 0, checked.output
    assert "账本校验：区块 2 个，已封存评价 6 条，待封存 0 条" in checked.output
    assert "结论：校验通过" in checked.output
    assert not re.search(r"[A-Za-z]{2,}", checked.output.replace(hex_root(cli), ""))


def test_verify_names_altered_missing_and_inserted_ratings(cli):
    assert cli("ledger", "seal").exit_code == 0
    a, b, c, *_ = cli.ids
    row = EvaluationRowFactory(org_id=1, region_code="330102")
    with closing(sqlite3.connect(cli.path)) as conn:  # foreign keys are off by default
        with unguarded_file(conn, "evaluation"):
            conn.execute("UPDATE evaluation SET level = 5, comment = '很满意' WHERE id = ?", (b,))
            conn.execute("DELETE FROM evaluation WHERE id = ?", (c,))
        # A rating slipped in below the sealed ids, as if it had always been there.
        conn.execute(
            "INSERT INTO evaluation (id, stage, eval_count, channel, level, reasons, "
            "tagset_version, org_id, region_code, rater_type, anonymous, is_public, "
            "is_default, evaluated_at, received_at) VALUES "
            "(0, 'whole', 1, 'inspection', 5, '[\"517\"]', 'national-2020', 1, "
            "'330102', 'person', 0, 1, 0, ?, ?)",
            (str(row["evaluated_at"])[:26], str(row["received_at"])[:26]),
        )
        conn.commit()
    result = cli("ledger", "verify", "--grace", "0")
    assert result.exit_code == 1, result.output
    out = result.output
    assert re.search(rf"篡改：评价 {b} 的当前内容与区块 1 封存时的哈希不符", out)
    assert re.search(rf"缺失：评价 {c} 已封存于区块 1，但评价记录已不存在", out)
    assert re.search(r"插入：评价 0 位于已封存范围内", out)
    assert f"评价 {a} " not in out
    assert "结论：校验未通过（篡改 1，缺失 1，插入 1）" in out


def test_verify_compares_published_roots(cli):
    assert cli("ledger", "seal").exit_code == 0
    with closing(sqlite3.connect(cli.path)) as conn:
        root = conn.execute("SELECT root FROM ledger_block WHERE height = 1").fetchone()[0].hex()
    assert cli("ledger", "verify", "--anchor", f"1:{root}").exit_code == 0
    wrong = cli("ledger", "verify", "--anchor", f"1:{'0' * 64}")
    assert wrong.exit_code == 1 and "与公布的根不符：区块 1 的根" in wrong.output
    bad = cli("ledger", "verify", "--anchor", "one:xyz")
    assert bad.exit_code == 2 and "无法识别的根哈希" in bad.output


def test_rewriting_a_block_breaks_the_chain(cli):
    assert cli("ledger", "seal", "--block-size", "2").exit_code == 0
    with closing(sqlite3.connect(cli.path)) as conn:
        with unguarded_file(conn, "ledger_block"):
            conn.execute("UPDATE ledger_block SET root = zeroblob(32) WHERE height = 2")
        conn.commit()
    result = cli("ledger", "verify")
    assert result.exit_code == 1
    assert "区块根不符：区块 2" in result.output
    assert "哈希链断裂：区块 3" in result.output


def test_archive_export_read_verify_and_the_ledger_across_it(cli, tmp_path):
    assert cli("ledger", "seal").exit_code == 0
    bad = cli("archive", "export", "--before", "2024/01", "--out", str(tmp_path / "x"))
    assert bad.exit_code == 2 and "archive_invalid" in bad.output and "YYYY-MM" in bad.output
    unset = cli("archive", "export", "--out", str(tmp_path / "x"))
    assert unset.exit_code == 2 and "未设置评价在线保留期限" in unset.output
    now = datetime.now(SHANGHAI)
    after = (now.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")  # next month
    folder = tmp_path / "archive"
    exported = cli("archive", "export", "--before", after, "--out", str(folder))
    assert exported.exit_code == 0, exported.output
    name = f"evaluation-{now:%Y-%m}.parquet"
    assert f"{name}\t6 条（已封存 6）" in exported.output
    assert "已归档 6 条评价，1 个文件" in exported.output
    read = cli("archive", "read", str(folder / name), "--limit", "2")
    lines = read.output.strip().splitlines()
    assert read.exit_code == 0 and len(lines) == 2
    assert [json.loads(line)["id"] for line in lines] == cli.ids[:2]
    assert json.loads(lines[0])["rater_phone"].startswith("hcp1:")
    checked = cli("archive", "verify", str(folder))
    assert checked.exit_code == 0, checked.output
    assert "文件 1 个，评价 6 条，其中已封存 6 条与账本比对；结论：校验通过" in checked.output
    # The month leaves the table (on PostgreSQL: its partition detached).
    with closing(sqlite3.connect(cli.path)) as conn, unguarded_file(conn, "evaluation"):
        conn.execute("DELETE FROM evaluation")
        conn.commit()
    assert cli("ledger", "verify", "--grace", "0").exit_code == 1
    across = cli("ledger", "verify", "--grace", "0", "--archive", str(folder))
    assert across.exit_code == 0, across.output
    assert "结论：校验通过" in across.output
    missing = cli("ledger", "verify", "--archive", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "无法读取归档清单" in missing.output
