"""`haochaping topics word add|list`: administrators extend the segmentation dictionary, on
record in the audit trail; refusals exit 2 with the reason."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from typer.testing import CliRunner

from haochaping.cli import app as cli
from haochaping.config import Settings
from haochaping.core.models import AuditEvent
from haochaping.db.session import make_engine, make_sessionmaker

runner = CliRunner()


def test_a_word_is_added_listed_and_audited_and_a_duplicate_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "HAOCHAPING_ENV": "test",
    }
    added = runner.invoke(cli, ["topics", "word", "add", "浙里办码", "--note", "省级应用"], env=env)
    assert added.exit_code == 0, added.output
    assert "浙里办码" in added.output and "topics rebuild" in added.output
    listed = runner.invoke(cli, ["topics", "word", "list"], env=env)
    assert listed.exit_code == 0 and "浙里办码\tcli" in listed.output
    again = runner.invoke(cli, ["topics", "word", "add", "浙里办码"], env=env)
    assert again.exit_code == 2 and "duplicate_word" in again.output
    shipped = runner.invoke(cli, ["topics", "word", "add", "一网通办"], env=env)
    assert shipped.exit_code == 2 and "duplicate_word" in shipped.output
    bad = runner.invoke(cli, ["topics", "word", "add", "a1"], env=env)
    assert bad.exit_code == 2 and "invalid_word" in bad.output
    refreshed = runner.invoke(cli, ["topics", "refresh"], env=env)
    assert refreshed.exit_code == 0 and "comments segmented" in refreshed.output
    rows = asyncio.run(audit_rows(env["HAOCHAPING_DATABASE_URL"]))
    assert rows == [("cli", "add_topic_word", {"word": "浙里办码"})]


async def audit_rows(url: str) -> list[tuple]:
    engine = make_engine(Settings(database_url=url, _env_file=None))
    try:
        async with make_sessionmaker(engine)() as db:
            found = await db.execute(
                select(AuditEvent.actor, AuditEvent.action, AuditEvent.detail).where(
                    AuditEvent.action == "add_topic_word"
                )
            )
            return [tuple(r) for r in found]
    finally:
        await engine.dispose()
