"""`haochaping ... --help` speaks one language, Chinese, for every command and group: the
descriptions, every option's help and the words Typer puts around them."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from haochaping.cli import app as cli

runner = CliRunner()
# Latin words a Chinese help may still show: the program's name, option names and values
# typed as they are (roles, channels, CSV columns), the usage line's placeholders, type names.
ALLOWED = {
    "haochaping",
    "Haochaping",
    "OPTIONS",
    "COMMAND",
    "ARGS",
    "API",
    "CSV",
    "SM",  # SM3
    "admin",
    "office",
    "unit",
    "staff",
    "assessor",
    "pad",
    "qrcode",
    "date",
    "type",
    "name",
    "serve",
    "worker",
    "cli",
    "file",
    "str",
    "int",
    "float",
    "bool",
    "path",
    "list",
    "range",
    "no",
    "demo",
    "once",
    "Parquet",  # the archive's file format
    "JSON",
    "YYYY",
    "MM",
}


def command_paths(command=None, prefix=()) -> list[tuple[str, ...]]:
    """Every group and command of the CLI, as the words that name it."""
    command = command or typer.main.get_command(cli)
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


PATHS = command_paths()
NAMES = {word for path in PATHS for word in path}  # groups list their commands


def test_every_command_is_covered():
    assert len(PATHS) >= 19 and ("ledger", "verify") in PATHS and ("user", "create") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "haochaping")
def test_help_is_in_chinese(path):
    result = runner.invoke(
        cli, [*path, "--help"], prog_name="haochaping", env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "用法：haochaping" in out and "显示此帮助并退出" in out
    assert re.search(r"^ (\S.*[\u4e00-\u9fff].*)$", out, re.M), "no description in Chinese"
    words = set(re.findall(r"(?<![-\w])[A-Za-z]{2,}", re.sub(r"--[\w-]+", "", out)))
    assert words <= ALLOWED | NAMES, sorted(words - ALLOWED - NAMES)
