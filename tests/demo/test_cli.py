"""`haochaping demo` and `serve --demo` against a throwaway SQLite file: the paths that commit.

These run on their own database file whatever HAOCHAPING_TEST_DATABASE_URL says: they test
the command's own engine and transaction, not the backend (the other demo tests do that).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from pathlib import Path

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
    extra = re.search(
        r"办件 (\d+)（含演示工单、预置异常评价、今日评价器叫号和下级平台报送的 (\d+) 件）",
        first.output,
    )
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


# The long commands, each with the phrase of its progress bar and one of its summary.
LONG_COMMANDS = [
    (["demo", "--cases", "150"], "办件与评价", "示范省演示数据已加载"),
    (["ledger", "seal"], "封存评价", "没有需要封存的新评价"),
    (["ledger", "verify"], "校验区块", "结论：校验通过"),
]
BAR = "━"


def test_each_long_command_prints_only_its_summary_off_a_terminal_or_with_quiet(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/long.db")
    runner = CliRunner()
    for args, phase, summary in LONG_COMMANDS:
        # CliRunner's streams are not terminals: the summary, no bar, no phase name.
        piped = runner.invoke(cli.app, args)
        assert piped.exit_code == 0, piped.output
        assert summary in piped.output, args
        assert BAR not in piped.output and phase not in piped.output, args
        # --quiet on a terminal: still only the summary.
        screen = Terminal()
        monkeypatch.setattr("sys.stderr", screen)
        quiet = runner.invoke(cli.app, [*args, "--quiet"])
        monkeypatch.undo()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/long.db")
        assert quiet.exit_code == 0, quiet.output
        assert screen.getvalue() == "" and BAR not in quiet.output, args
        assert phase not in quiet.output, args


def test_the_demo_load_shows_each_phase_on_a_terminal_then_its_summary(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/tty.db")
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    cli.demo_cmd(cases=150, seed=2026, quiet=False)
    shown = screen.getvalue()
    for phase in ("办件与评价", "差评工单办理", "抽查回访抽样", "评价存证封存", "通知投递"):
        assert phase in shown, phase
    out = capsys.readouterr().out
    assert out.startswith("示范省演示数据已加载") and BAR not in out
    assert "死信） 1" in out


def test_the_demo_command_in_a_pipe_prints_the_summary_and_nothing_else(tmp_path):
    """A real process: stdout and stderr are pipes, and nothing but the summary is written
    (no bar, no phase, no log line about the demo's deliberate dead letter)."""
    env = {
        **os.environ,
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/pipe.db",
        "HAOCHAPING_SMS_LOG_PATH": f"{tmp_path}/sms.jsonl",
    }
    exe = Path(sys.executable).with_name("haochaping")
    done = subprocess.run(
        [str(exe), "demo", "--cases", "150"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("示范省演示数据已加载") and "死信） 1" in done.stdout
    assert done.stderr == ""
