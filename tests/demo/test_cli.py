"""`haochaping demo` and `serve --demo` against a throwaway SQLite file: the paths that commit.

These run on their own database file whatever HAOCHAPING_TEST_DATABASE_URL says: they test
the command's own engine and transaction, not the backend (the other demo tests do that).
"""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from haochaping import cli
from haochaping.config import Settings
from haochaping.db import migrate
from haochaping.demo import loader


def test_demo_command_loads_once_and_prints_the_accounts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    runner = CliRunner()
    first = runner.invoke(cli.app, ["demo", "--cases", "300"])
    assert first.exit_code == 0, first.output
    assert "示范省演示数据已加载" in first.output and "办件 300" in first.output
    assert "admin12345" in first.output and "hcp_" in first.output
    second = runner.invoke(cli.app, ["demo", "--cases", "300"])
    assert second.exit_code == 0, second.output
    assert "未做任何改动" in second.output and "hcp_" not in second.output


def test_serve_demo_loads_only_into_an_empty_database(tmp_path):
    settings = Settings(
        env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db", _env_file=None
    )
    migrate.upgrade(settings)
    printed: list[str] = []
    loaded = asyncio.run(loader.load_if_empty(settings, cases=300, echo=printed.append))
    assert loaded is not None and printed == [loaded] and "admin12345" in loaded
    assert asyncio.run(loader.load_if_empty(settings, cases=300, echo=printed.append)) is None
    assert len(printed) == 1
