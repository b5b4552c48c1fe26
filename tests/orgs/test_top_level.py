"""One root per installation: an organisation created without `parent_code` lands under the
administrator's own organisation (the root for the one `haochaping user create` makes), so the
administrator can go on to manage it (issue 8)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from haochaping.app import create_app, shutdown, startup
from haochaping.cli import app as cli
from haochaping.config import Settings
from tests.conftest import TEST_SECRET
from tests.test_cli import invoke, runner


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh migrated SQLite file, as on a new installation."""
    # The suite's secret: the CLI and the app install the process's data keys from it, and
    # tests that run later read what the suite's own app wrote under it.
    env = {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/top.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
        "HAOCHAPING_SECRET_KEY": TEST_SECRET,
    }
    monkeypatch.chdir(tmp_path)  # no stray .env file from the working directory
    result = runner.invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    return env


def call_api(env, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to an app on the CLI's database, as a deployed server would answer it."""

    async def go():
        settings = Settings(
            database_url=env["HAOCHAPING_DATABASE_URL"],
            env="test",
            secret_key=TEST_SECRET,
            job_interval_seconds=0,
            _env_file=None,
        )
        app = create_app(settings)
        await startup(app)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, path, **kwargs)
        finally:
            await shutdown(app)

    return asyncio.run(go())


def test_the_first_administrator_manages_the_department_it_creates(env):
    r = invoke(
        env,
        "user",
        "create",
        "--username",
        "boss",
        "--password",
        "pass-word-123",
        "--role",
        "admin",
    )
    assert r.exit_code == 0, r.output
    assert "ROOT" in r.output and "parent_code" in r.output  # the CLI names the rule
    token = call_api(
        env, "POST", "/api/v1/auth/token", data={"username": "boss", "password": "pass-word-123"}
    )
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    dept = call_api(
        env,
        "POST",
        "/api/v1/orgs",
        headers=bearer,
        json={
            "code": "DEPT-1",
            "name": "市场监督管理局",
            "kind": "department",
            "region_code": "000000",
        },
    )
    assert dept.status_code == 201, dept.text
    assert dept.json()["parent_code"] == "ROOT"
    hall = call_api(
        env,
        "POST",
        "/api/v1/orgs",
        headers=bearer,
        json={
            "code": "HALL-1",
            "name": "市民中心",
            "kind": "hall",
            "parent_code": "DEPT-1",
            "region_code": "000000",
        },
    )
    assert hall.status_code == 201, hall.text
    # Posting the department again without a parent renames it; nothing moves.
    again = call_api(
        env,
        "POST",
        "/api/v1/orgs",
        headers=bearer,
        json={
            "code": "DEPT-1",
            "name": "市场监管局",
            "kind": "department",
            "region_code": "000000",
        },
    )
    assert again.status_code == 200, again.text
    assert again.json()["parent_code"] == "ROOT" and again.json()["name"] == "市场监管局"
    seen = call_api(env, "GET", "/api/v1/orgs", headers=bearer)
    assert [o["code"] for o in seen.json()["items"]] == ["ROOT", "DEPT-1", "HALL-1"]
