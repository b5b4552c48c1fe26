"""The command line creates the first accounts: `haochaping user create` / `client create`.

Runs the real commands (typer's CliRunner, in-process) against a temporary SQLite file named by
HAOCHAPING_DATABASE_URL, then uses what they printed against the app built on that file.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from haochaping.accounts.models import ApiClient
from haochaping.app import create_app, shutdown, startup
from haochaping.cli import app as cli
from haochaping.config import Settings
from haochaping.core.security import hash_api_key
from haochaping.db.session import make_engine, make_sessionmaker

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A migrated SQLite file and the environment that points the CLI at it."""
    folder = tmp_path_factory.mktemp("cli")
    env = {"HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/cli.db",
           "HAOCHAPING_ENV": "test", "HAOCHAPING_JOB_INTERVAL_SECONDS": "0"}
    result = runner.invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    return folder, env


@pytest.fixture
def env(cli_db, monkeypatch):
    folder, env = cli_db
    monkeypatch.chdir(folder)  # no stray .env file from the working directory
    return env


def invoke(env, *args):
    return runner.invoke(cli, list(args), env=env)


def call_api(env, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the app on the CLI's database, as a deployed server would answer it."""
    async def go():
        settings = Settings(database_url=env["HAOCHAPING_DATABASE_URL"], env="test",
                            job_interval_seconds=0, _env_file=None)
        app = create_app(settings)
        await startup(app)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, path, **kwargs)
        finally:
            await shutdown(app)

    return asyncio.run(go())


def stored_clients(env) -> list[ApiClient]:
    async def go():
        settings = Settings(database_url=env["HAOCHAPING_DATABASE_URL"], _env_file=None)
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                return list((await db.execute(select(ApiClient))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_the_first_administrator_and_a_channel_key(env):
    r = invoke(env, "user", "create", "--username", "boss", "--password", "pass-word-123",
               "--role", "admin")
    assert r.exit_code == 0, r.output
    assert "boss" in r.output and "admin" in r.output
    token = call_api(env, "POST", "/api/v1/auth/token",
                     data={"username": "boss", "password": "pass-word-123"})
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = call_api(env, "GET", "/api/v1/auth/me", headers=bearer)
    assert me.json()["role"] == "admin" and me.json()["org_path"] == "/ROOT/"

    r = invoke(env, "client", "create", "--name", "window-pads", "--org", "ROOT",
               "--channels", "pad, qrcode")
    assert r.exit_code == 0, r.output
    keys = [line.strip() for line in r.output.splitlines() if line.strip().startswith("hcp_")]
    assert len(keys) == 1, r.output
    key = keys[0]
    assert r.output.count(key) == 1  # printed once
    (row,) = [c for c in stored_clients(env) if c.name == "window-pads"]
    assert row.key_hash == hash_api_key(key) and row.channels == ["pad", "qrcode"]
    orgs = call_api(env, "GET", "/api/v1/orgs", headers={"X-Api-Key": key})
    assert orgs.status_code == 200 and [o["code"] for o in orgs.json()["items"]] == ["ROOT"]
    # The key's channels bind it: a general comment is not among them.
    review = call_api(env, "POST", "/api/v1/evaluations", headers={"X-Api-Key": key},
                      json={"channel": "review", "org_code": "ROOT", "level": 5})
    assert review.status_code == 403
    assert call_api(env, "GET", "/api/v1/orgs",
                    headers={"X-Api-Key": key + "x"}).status_code == 401


@pytest.mark.parametrize(("args", "code"), [
    (["client", "create", "--name", "c-bad", "--org", "ROOT", "--channels", "pad,fax"],
     "unknown_channel"),
    (["client", "create", "--name", "c-none", "--org", "NOPE", "--channels", "pad"],
     "org_not_found"),
    (["user", "create", "--username", "weak", "--password", "short"], "weak_password"),
    (["user", "create", "--username", "odd", "--password", "pass-word-123", "--role", "king"],
     "unknown_role"),
])
def test_refusals_exit_2_with_the_reason(env, args, code):
    r = invoke(env, *args)
    assert r.exit_code == 2, r.output
    assert code in r.output + (r.stderr or "")


def test_names_are_unique(env):
    assert invoke(env, "user", "create", "--username", "twice", "--password",
                  "pass-word-123").exit_code == 0
    r = invoke(env, "user", "create", "--username", "twice", "--password", "pass-word-123")
    assert r.exit_code == 2 and "duplicate_username" in r.output + (r.stderr or "")
    assert invoke(env, "client", "create", "--name", "dup", "--org", "ROOT",
                  "--channels", "sms").exit_code == 0
    r = invoke(env, "client", "create", "--name", "dup", "--org", "ROOT", "--channels", "sms")
    assert r.exit_code == 2 and "duplicate_client" in r.output + (r.stderr or "")
