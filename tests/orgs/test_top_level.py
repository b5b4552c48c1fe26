"""One root per installation: an organisation created without `parent_code` lands under the
administrator's own organisation (the root for the one `haochaping user create` makes), so the
administrator can go on to manage it (issue 8)."""

from __future__ import annotations

import pytest

from haochaping.cli import app as cli
from tests.test_cli import call_api, invoke, runner


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh migrated SQLite file, as on a new installation."""
    env = {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/top.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
    }
    monkeypatch.chdir(tmp_path)  # no stray .env file from the working directory
    result = runner.invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    return env


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
