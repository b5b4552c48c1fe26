"""The command line ends sessions and keys: `user password`, `user deactivate`,
`client revoke` (at once in servers sharing Redis with it). The command-line fixtures are
tests/test_cli.py's."""

from __future__ import annotations

import asyncio
import os

import httpx

from haochaping.app import create_app, shutdown, startup
from haochaping.config import Settings
from tests import test_cli as cli_tests
from tests.test_cli import call_api, invoke

# The command-line fixtures of tests/test_cli.py: a migrated SQLite file and its environment.
cli_db, env = cli_tests.cli_db, cli_tests.env

REDIS_URL = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def token_of(env, username: str, password: str) -> dict[str, str]:
    r = call_api(
        env, "POST", "/api/v1/auth/token", data={"username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def new_key(env, name: str) -> dict[str, str]:
    # The first account creates the root organisation: make sure it exists, whichever test
    # of the module runs first (a second run of this command is refused, harmlessly).
    invoke(env, "user", "create", "--username", "keeper", "--password", "pass-word-123")
    r = invoke(env, "client", "create", "--name", name, "--org", "ROOT", "--channels", "pad")
    assert r.exit_code == 0, r.output
    (key,) = [line for line in r.output.splitlines() if line.startswith("hcp_")]
    return {"X-Api-Key": key}


def test_a_password_reset_and_a_deactivation_end_the_tokens(env):
    assert (
        invoke(
            env,
            "user",
            "create",
            "--username",
            "clerk",
            "--password",
            "pass-word-123",
            "--role",
            "admin",
        ).exit_code
        == 0
    )
    token = token_of(env, "clerk", "pass-word-123")
    r = invoke(env, "user", "password", "--username", "clerk", "--password", "other-pass-456")
    assert r.exit_code == 0 and "clerk" in r.output, r.output
    assert call_api(env, "GET", "/api/v1/auth/me", headers=token).status_code == 401
    token = token_of(env, "clerk", "other-pass-456")
    r = invoke(env, "user", "deactivate", "--username", "clerk")
    assert r.exit_code == 0, r.output
    assert call_api(env, "GET", "/api/v1/auth/me", headers=token).status_code == 401
    r = call_api(
        env, "POST", "/api/v1/auth/token", data={"username": "clerk", "password": "other-pass-456"}
    )
    assert r.status_code == 401
    r = invoke(env, "user", "deactivate", "--username", "nobody-here")
    assert r.exit_code == 2 and "user_not_found" in r.output + (r.stderr or "")


def test_client_revoke_by_name_or_id(env):
    key = new_key(env, "kiosk-1")
    assert call_api(env, "GET", "/api/v1/orgs", headers=key).status_code == 200
    r = invoke(env, "client", "revoke", "--name", "kiosk-1")
    assert r.exit_code == 0 and "kiosk-1" in r.output, r.output
    assert "30 秒" in r.output  # no Redis: running servers learn it from their cache's age
    assert call_api(env, "GET", "/api/v1/orgs", headers=key).status_code == 401
    for args in ([], ["--name", "a", "--id", "1"]):
        assert invoke(env, "client", "revoke", *args).exit_code == 2
    r = invoke(env, "client", "revoke", "--id", "987654")
    assert r.exit_code == 2 and "client_not_found" in r.output + (r.stderr or "")


def test_a_server_sharing_redis_refuses_a_key_revoked_from_the_command_line(env):
    key = new_key(env, "kiosk-2")
    with_redis = {**env, "HAOCHAPING_REDIS_URL": REDIS_URL}

    async def go():
        app = create_app(
            Settings(
                database_url=env["HAOCHAPING_DATABASE_URL"],
                env="test",
                redis_url=REDIS_URL,
                job_interval_seconds=0,
                _env_file=None,
            )
        )
        await startup(app)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/api/v1/orgs", headers=key)).status_code == 200
                r = await asyncio.to_thread(
                    invoke, with_redis, "client", "revoke", "--name", "kiosk-2"
                )
                assert r.exit_code == 0 and "30 秒" not in r.output, r.output
                return (await c.get("/api/v1/orgs", headers=key)).status_code
        finally:
            await shutdown(app)

    assert asyncio.run(go()) == 401
