"""The command line creates the first accounts: `haochaping user create` / `client create`.

Runs the real commands (typer's CliRunner, in-process) against a temporary SQLite file named by
HAOCHAPING_DATABASE_URL, then uses what they printed against the app built on that file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
from tests.integrations.servers import free_port

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A migrated SQLite file and the environment that points the CLI at it."""
    folder = tmp_path_factory.mktemp("cli")
    env = {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/cli.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
    }
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
        settings = Settings(
            database_url=env["HAOCHAPING_DATABASE_URL"],
            env="test",
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
    assert "boss" in r.output and "admin" in r.output
    token = call_api(
        env, "POST", "/api/v1/auth/token", data={"username": "boss", "password": "pass-word-123"}
    )
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = call_api(env, "GET", "/api/v1/auth/me", headers=bearer)
    assert me.json()["role"] == "admin" and me.json()["org_path"] == "/ROOT/"

    r = invoke(
        env,
        "client",
        "create",
        "--name",
        "window-pads",
        "--org",
        "ROOT",
        "--channels",
        "pad, qrcode",
    )
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
    review = call_api(
        env,
        "POST",
        "/api/v1/evaluations",
        headers={"X-Api-Key": key},
        json={"channel": "review", "org_code": "ROOT", "level": 5},
    )
    assert review.status_code == 403
    assert call_api(env, "GET", "/api/v1/orgs", headers={"X-Api-Key": key + "x"}).status_code == 401


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            ["client", "create", "--name", "c-bad", "--org", "ROOT", "--channels", "pad,fax"],
            "unknown_channel",
        ),
        (
            ["client", "create", "--name", "c-none", "--org", "NOPE", "--channels", "pad"],
            "org_not_found",
        ),
        (["user", "create", "--username", "weak", "--password", "short"], "weak_password"),
        # SQLite keeps one ratings table: no month to detach or attach.
        (["archive", "attach", "--month", "2023-11"], "partition_invalid"),
        (["archive", "detach", "--month", "2023-11", "--archive", "nowhere"], "archive_invalid"),
        (
            [
                "user",
                "create",
                "--username",
                "odd",
                "--password",
                "pass-word-123",
                "--role",
                "king",
            ],
            "unknown_role",
        ),
    ],
)
def test_refusals_exit_2_with_the_reason(env, args, code):
    r = invoke(env, *args)
    assert r.exit_code == 2, r.output
    assert code in r.output + (r.stderr or "")


def test_names_are_unique(env):
    assert (
        invoke(
            env, "user", "create", "--username", "twice", "--password", "pass-word-123"
        ).exit_code
        == 0
    )
    r = invoke(env, "user", "create", "--username", "twice", "--password", "pass-word-123")
    assert r.exit_code == 2 and "duplicate_username" in r.output + (r.stderr or "")
    assert (
        invoke(
            env, "client", "create", "--name", "dup", "--org", "ROOT", "--channels", "sms"
        ).exit_code
        == 0
    )
    r = invoke(env, "client", "create", "--name", "dup", "--org", "ROOT", "--channels", "sms")
    assert r.exit_code == 2 and "duplicate_client" in r.output + (r.stderr or "")


# --- a fresh machine: never-migrated databases, production, other ports (issue 8) -------


def fresh_env(tmp_path, **extra) -> dict[str, str]:
    """The CLI's environment on a database file that was never migrated."""
    return {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/fresh/never.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
        **extra,
    }


def test_user_create_on_a_never_migrated_database_migrates_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = fresh_env(tmp_path)
    r = invoke(env, "user", "create", "--username", "first", "--password", "pass-word-123")
    assert r.exit_code == 0, r.output
    assert "已创建用户 first" in r.output
    token = call_api(
        env, "POST", "/api/v1/auth/token", data={"username": "first", "password": "pass-word-123"}
    )
    assert token.status_code == 200, token.text


@pytest.mark.parametrize(
    "args",
    [
        ["client", "create", "--name", "early", "--org", "ROOT", "--channels", "pad"],
        ["calendar", "status"],
        ["ledger", "verify"],
        ["ledger", "seal"],
        ["archive", "export", "--before", "2024-01", "--out", "archive"],
    ],
)
def test_other_commands_on_a_never_migrated_database_do_not_crash(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = invoke(fresh_env(tmp_path), *args)
    if args[:2] == ["archive", "export"]:
        # Nothing to archive yet: an empty manifest, then the folder verifies clean.
        assert "已归档 0 条评价，0 个文件" in r.output
        assert invoke(fresh_env(tmp_path), "archive", "verify", "archive").exit_code == 0
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    # The client's organisation does not exist yet: a refusal, not a missing table.
    assert r.exit_code == (2 if args[0] == "client" else 0), r.output
    assert "no such table" not in r.output + (r.stderr or "")


def test_unreachable_database_is_said_plainly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = fresh_env(
        tmp_path,
        HAOCHAPING_DATABASE_URL=(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/gone"),
    )
    r = invoke(env, "user", "create", "--username", "x", "--password", "pass-word-123")
    assert r.exit_code == 2
    assert "无法连接数据库" in r.output + (r.stderr or "")
    assert "nobody" not in r.output + (r.stderr or "")  # the URL's credentials are not shown


def production_env(tmp_path) -> dict[str, str]:
    return fresh_env(
        tmp_path,
        HAOCHAPING_ENV="production",
        HAOCHAPING_SECRET_KEY=secrets.token_urlsafe(48),
        HAOCHAPING_DATA_KEYS="k1:AAECAwQFBgcICQoLDA0ODw==",
        HAOCHAPING_SMS_GATEWAY="none",
    )


@pytest.mark.parametrize(
    "args", [["demo", "--cases", "10"], ["serve", "--demo", "--demo-cases", "10"]]
)
def test_demo_is_refused_in_production(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = invoke(production_env(tmp_path), *args)
    assert r.exit_code == 2, r.output
    assert "生产环境" in r.output + (r.stderr or "")
    # Refused before anything is written: no database, no admin/admin12345.
    assert not (tmp_path / "fresh" / "never.db").exists()


def test_serve_refuses_a_public_address_with_the_development_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HAOCHAPING_SECRET_KEY", raising=False)
    # serve hands its address to uvicorn's workers in the environment; restored afterwards.
    monkeypatch.setenv("HAOCHAPING_HOST", "127.0.0.1")
    monkeypatch.setenv("HAOCHAPING_PORT", "8000")
    r = invoke(fresh_env(tmp_path), "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    assert "HAOCHAPING_SECRET_KEY" in r.output + (r.stderr or "")
    assert not (tmp_path / "fresh" / "never.db").exists()


def test_serve_on_another_port_gives_links_to_that_port(tmp_path):
    """`serve --port P` without HAOCHAPING_BASE_URL: rating links and QR codes point at P."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAOCHAPING_")}
    env.update(fresh_env(tmp_path))
    log = tmp_path / "server.log"
    exe = Path(sys.executable).with_name("haochaping")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(exe), "serve", "--demo", "--demo-cases", "300", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the server did not answer:\n" + log.read_text())
        with sqlite3.connect(tmp_path / "fresh" / "never.db") as db:
            (root,) = db.execute("SELECT code FROM org WHERE parent_id IS NULL").fetchone()
            (case_no,) = db.execute(
                "SELECT case_no FROM service_case WHERE status = "
                "'completed' ORDER BY completed_at DESC"
            ).fetchone()
        r = runner.invoke(
            cli,
            ["client", "create", "--name", "links", "--org", root, "--channels", "qrcode"],
            env=fresh_env(tmp_path),
        )
        assert r.exit_code == 0, r.output
        key = r.output.strip().splitlines()[-1]
        inv = httpx.post(
            f"{base}/api/v1/cases/{case_no}/invitations",
            headers={"X-Api-Key": key},
            json={"channel": "qrcode"},
            timeout=10,
        )
        assert inv.status_code == 201, inv.text
        assert inv.json()["url"].startswith(f"{base}/r/")
        assert inv.json()["qr_url"] == inv.json()["url"] + "/qr.svg"
        assert httpx.get(inv.json()["url"], timeout=10).status_code == 200
        assert f"对外地址（评价链接、二维码）：{base}" in log.read_text()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_worker_once_says_what_each_part_did_and_force_reruns_the_detectors(env):
    first = invoke(env, "worker", "--once")
    assert first.exit_code == 0, first.output
    for part in ("期限检查：", "疑似刷评检测已运行", "评价存证：", "通知投递："):
        assert part in first.output
    # Within 10 minutes the detectors' pass is skipped, and the output says so and how to force.
    again = invoke(env, "worker", "--once")
    assert again.exit_code == 0 and "疑似刷评检测未运行" in again.output
    assert "--force" in again.output
    forced = invoke(env, "worker", "--once", "--force")
    assert forced.exit_code == 0 and "疑似刷评检测已运行" in forced.output
    assert invoke(env, "worker", "--force").exit_code == 2  # --force belongs to --once


def test_device_pair_list_and_revoke(tmp_path, monkeypatch):
    """`device pair` prints a one-time code and the pairing page's QR; `device list` shows the
    pad waiting, `device revoke` stops it; an organisation that is no window is refused. (On
    a database of its own: its organisations would be a second root beside the module's.)"""
    from haochaping.orgs import schemas as org_schemas
    from haochaping.orgs import service as org_service
    from haochaping.pads import service as pad_service
    from haochaping.pads.models import PadDevice
    from tests.factories import ADMIN

    monkeypatch.chdir(tmp_path)
    env = {
        "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/pads.db",
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_JOB_INTERVAL_SECONDS": "0",
    }
    assert invoke(env, "migrate").exit_code == 0
    settings = Settings(database_url=env["HAOCHAPING_DATABASE_URL"], _env_file=None)

    async def make_window():
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                await org_service.create_region(
                    db=db,
                    actor=ADMIN,
                    data=org_schemas.RegionCreate(code="440000", name="广东省", parent_code=None),
                )
                for code, kind, parent in (
                    ("CLI-HALL", "hall", None),
                    ("WIN-C1", "window", "CLI-HALL"),
                ):
                    await org_service.create_org(
                        db=db,
                        actor=ADMIN,
                        data=org_schemas.OrgCreate(
                            code=code,
                            name="窗口" if kind == "window" else "大厅",
                            kind=kind,
                            parent_code=parent,
                            region_code="440000",
                        ),
                    )
                await db.commit()
        finally:
            await engine.dispose()

    async def stored(device_id: int) -> PadDevice:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                return await db.get(PadDevice, device_id)
        finally:
            await engine.dispose()

    asyncio.run(make_window())
    r = invoke(env, "device", "pair", "--window", "WIN-C1", "--name", "一号评价器")
    assert r.exit_code == 0, r.output
    code = r.output.split("配对码：")[1][:9]
    device_id = int(r.output.split("编号 ")[1].split("）")[0])
    assert "/pad/pair?code=" + code in r.output
    assert "█" in r.output or "▀" in r.output  # the QR drawn on the terminal
    row = asyncio.run(stored(device_id))
    assert row.pairing_hash == pad_service.code_digest(
        settings.secret_key, pad_service.normalise_code(code)
    )
    listed = invoke(env, "device", "list", "--window", "WIN-C1")
    assert f"{device_id}\tWIN-C1\t一号评价器\t待配对" in listed.output
    assert invoke(env, "device", "revoke", "--id", str(device_id)).exit_code == 0
    assert "已停用" in invoke(env, "device", "list").output
    assert asyncio.run(stored(device_id)).revoked_by == "cli"
    refused = invoke(env, "device", "pair", "--window", "CLI-HALL")
    assert refused.exit_code == 2 and "window_not_found" in refused.output + (refused.stderr or "")
