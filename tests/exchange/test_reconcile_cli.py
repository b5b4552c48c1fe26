"""`haochaping exchange reconcile`'s exit codes without a reachable parent (the two-instance
test covers 0 and 1): 2 when none is configured or it does not answer, 2 for a bad day."""

from __future__ import annotations

from typer.testing import CliRunner

from haochaping.cli import app as cli
from tests.integrations.servers import free_port

runner = CliRunner()


def _env(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/child.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_UPSTREAM_URL": "",
        **extra,
    }


def test_reconcile_exit_codes_without_a_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env file
    r = runner.invoke(cli, ["exchange", "reconcile"], env=_env(tmp_path))
    assert r.exit_code == 2 and "HAOCHAPING_UPSTREAM_URL" in r.output
    down = _env(tmp_path, HAOCHAPING_UPSTREAM_URL=f"http://127.0.0.1:{free_port()}")
    r = runner.invoke(cli, ["exchange", "reconcile", "--day", "2026-12-06"], env=down)
    assert r.exit_code == 2 and "上级平台无法连接" in r.output
    r = runner.invoke(cli, ["exchange", "reconcile", "--day", "12/06"], env=down)
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
