"""`haochaping demo` and `serve --demo` against a throwaway SQLite file: the paths that commit.

These run on their own database file whatever HAOCHAPING_TEST_DATABASE_URL says: they test
the command's own engine and transaction, not the backend (the other demo tests do that).
"""

from __future__ import annotations

import asyncio
import io
import re

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
    assert "示范省演示数据已加载" in first.output
    extra = re.search(r"办件 (\d+)（含演示工单和预置异常评价的 (\d+) 件）", first.output)
    assert extra and int(extra[1]) - int(extra[2]) == 300
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


class Terminal(io.StringIO):
    """What a terminal is to Rich: a stream that says it is one."""

    def isatty(self) -> bool:
        return True


def test_long_commands_show_progress_on_a_terminal_and_only_the_summary_otherwise(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    runner = CliRunner()
    # Not a terminal (CliRunner's streams): the summary alone.
    piped = runner.invoke(cli.app, ["demo", "--cases", "200"])
    assert piped.exit_code == 0, piped.output
    assert piped.output.startswith("示范省演示数据已加载") and "━" not in piped.output
    # On a terminal: a bar on stderr while it runs, then the summary (on stdout).
    capsys.readouterr()
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    cli.ledger_verify(anchor=None, grace=300.0, quiet=False)
    shown = capsys.readouterr().out
    assert "校验区块" in screen.getvalue() and "1/1" in screen.getvalue()
    assert "结论：校验通过" in shown and "校验区块" not in shown
    # --quiet: no progress even on a terminal.
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    cli.ledger_seal(block_size=10_000, quiet=True)
    assert quiet.getvalue() == "" and "没有需要封存的新评价" in capsys.readouterr().out
