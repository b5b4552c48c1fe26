"""Reporting up between two real instances (issue 14's test that matters): a child and a
parent, each `haochaping serve` in its own process on its own database (two SQLite files, or
two PostgreSQL databases beside the suite's), the child configured with the parent's address
and a key made by `haochaping client create --channels exchange`.

Ratings posted at the child appear in the parent's figures; with the parent stopped the
child's queue grows, and after the parent restarts the counts and digests agree within a
minute; ratings lost on the parent (rows deleted underneath it) are named by `haochaping
exchange reconcile` (exit 1) and put back by `--repair` (the parent stores nothing twice).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from haochaping.config import Settings
from haochaping.core.timeutil import SHANGHAI
from haochaping.db import migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.models import Evaluation
from haochaping.exchange import jobs as exchange_jobs
from haochaping.integrations.upstream import HttpUpstream
from tests import factories
from tests.append_only import unguarded_file
from tests.evaluations.test_durability import ServerProcess, _free_port, _pg_admin

CLI = [sys.executable, "-c", "from haochaping.cli import main; main()"]


def _sibling(settings: Settings, role: str) -> tuple[Settings, list[str], Path | None]:
    """A migrated database of its own on the suite's backend; what drops it afterwards."""
    base, _, _ = settings.database_url.rpartition("/")
    if settings.is_sqlite:
        target = f"hcp_fed_{role}_{os.getpid()}_{uuid.uuid4().hex[:6]}.db"
        drop: list[str] = []
        path: Path | None = Path(base.split(":///", 1)[1], target)
    else:
        target = f"hcp_fed_{role}_{os.getpid()}"
        drop = [
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{target}"',
        ]
        asyncio.run(_pg_admin(settings.database_url, *drop, f'CREATE DATABASE "{target}"'))
        path = None
    s = Settings(
        env="test",
        database_url=f"{base}/{target}",
        secret_key=settings.secret_key,
        base_url="http://testserver",
        _env_file=None,
    )
    migrate.upgrade(s)
    return s, drop, path


@pytest.fixture(scope="module")
def pair(settings: Settings):
    """(child settings, parent settings), dropped afterwards."""
    made = [_sibling(settings, "child"), _sibling(settings, "parent")]
    yield made[0][0], made[1][0]
    for _, drop, path in made:
        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        else:
            asyncio.run(_pg_admin(settings.database_url, *drop))


def _cli(settings: Settings, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [*CLI, *args],
        env={
            **os.environ,
            "HAOCHAPING_DATABASE_URL": settings.database_url,
            "HAOCHAPING_ENV": "test",
            "HAOCHAPING_SECRET_KEY": settings.secret_key,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _record(world: factories.World, level: int) -> dict:
    """A rating with its case, as a business system sends it to the child."""
    given = datetime.now(SHANGHAI) - timedelta(minutes=2)
    return {
        "params": {
            "projectNo": f"FED-{uuid.uuid4().hex[:12]}",
            "taskCode": world.code("ITEM-A1"),
            "deptCode": world.code("HALL-A"),
            "pf": 4,
            "satisfaction": level,
            "evalDetail": "517" if level >= 3 else "108",
            "writingEvaluation": "窗口服务",
            "assessTime": given.strftime("%Y-%m-%d %H:%M:%S"),
            "winName": "综合受理1号窗口",
            "winUserName": "李娜",
        }
    }


async def _post_ratings(port: int, world: factories.World, n: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for i in range(n):
            r = await c.post(
                "/api/v1/compat/evaluations",
                json=_record(world, 1 if i % 5 == 4 else 5),
                headers={"X-Api-Key": world.keys["all"]},
            )
            assert r.json()["custom"]["code"] == "1", r.text


async def _agreement(child: Settings, upstream: HttpUpstream) -> list:
    engine = make_engine(child)
    try:
        maker = make_sessionmaker(engine)
        today = exchange_jobs.local_day(datetime.now(SHANGHAI))
        async with maker() as db:
            days = await exchange_jobs.days_with_ratings(
                db, since=today - timedelta(days=1), until=today
            )
        return await exchange_jobs.compare(maker, upstream, days)
    finally:
        await engine.dispose()


async def _wait_agree(child: Settings, upstream: HttpUpstream, timeout: float) -> float:
    """Seconds until every day agrees (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = await _agreement(child, upstream)
        if found and all(c.agrees for c in found):
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    raise AssertionError(f"no agreement after {timeout} s: {found}")


async def _lose_parent_rows(parent: Settings, n: int) -> None:
    """Simulate a loss on the parent: delete reported ratings underneath the service (on
    PostgreSQL the append-only trigger is bypassed as replication does, for this session)."""
    if parent.is_sqlite:
        path = parent.database_url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn, unguarded_file(conn, "evaluation"):
            conn.execute(
                "DELETE FROM evaluation WHERE id IN (SELECT id FROM evaluation "
                "WHERE origin_ref IS NOT NULL ORDER BY id DESC LIMIT ?)",
                (n,),
            )
        return
    await _pg_admin(
        parent.database_url,
        "SET session_replication_role = replica",
        "DELETE FROM evaluation WHERE id IN (SELECT id FROM evaluation "
        f"WHERE origin_ref IS NOT NULL ORDER BY id DESC LIMIT {n})",
    )


async def _parent_summary_when(port: int, world: factories.World, ready, timeout: float) -> dict:
    """The parent's figures of the child's subtree, once `ready(summary)` (or at `timeout`)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as pc:
        while True:
            summary = (
                await pc.get(
                    "/api/v1/stats/summary",
                    params={"org_code": "HALL-B-P"},
                    headers={"X-Api-Key": world.keys["all"]},
                )
            ).json()
            if ready(summary) or time.monotonic() > deadline:
                return summary
            await asyncio.sleep(0.5)


async def test_a_child_reports_to_its_parent_through_an_outage_and_a_loss(pair, tmp_path):
    child, parent = pair
    worlds = []
    # The parent's own organisations have codes of their own (a code the parent uses outside
    # the child's subtree refuses the child's record: org_out_of_scope).
    for s, suffix in zip(pair, ("", "-P"), strict=True):
        engine = make_engine(s)
        async with make_sessionmaker(engine)() as db:
            worlds.append(await factories.build_world(db, suffix=suffix))
            await db.commit()
        await engine.dispose()
    world, parent_world = worlds
    made = _cli(
        parent,
        "client",
        "create",
        "--name",
        "city-x",
        "--org",
        "HALL-B-P",
        "--channels",
        "exchange",
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    parent_port, child_port = _free_port(), _free_port()
    upstream_env = {
        "HAOCHAPING_UPSTREAM_URL": f"http://127.0.0.1:{parent_port}",
        "HAOCHAPING_UPSTREAM_KEY": key,
    }
    child_env = {
        **upstream_env,
        "HAOCHAPING_UPSTREAM_GRACE_SECONDS": "0.5",
        # Small batches, three in flight: the watermark moves in order through a pipeline.
        "HAOCHAPING_UPSTREAM_BATCH_SIZE": "4",
        "HAOCHAPING_UPSTREAM_IN_FLIGHT": "3",
        "HAOCHAPING_UPSTREAM_RECONCILE_INTERVAL_SECONDS": "0",
    }
    parent_server = ServerProcess(parent, parent_port, tmp_path / "parent.log")
    child_server = ServerProcess(child, child_port, tmp_path / "child.log", child_env)
    upstream = HttpUpstream(url=upstream_env["HAOCHAPING_UPSTREAM_URL"], key=key, timeout=10)
    try:
        parent_server.start()
        child_server.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{parent_port}") as pc:
            await parent_server.wait_ready(pc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{child_port}") as cc:
            await child_server.wait_ready(cc)
        await _post_ratings(child_port, world, 20)
        await _wait_agree(child, upstream, 30)
        # In the parent's figures, under the child's organisation.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{parent_port}") as pc:
            summary = (
                await pc.get(
                    "/api/v1/stats/summary",
                    params={"org_code": "HALL-B-P"},
                    headers={"X-Api-Key": parent_world.keys["all"]},
                )
            ).json()
        assert (summary["total"], summary["bad"]) == (20, 4), summary
        # The child's closed loop: each bad rating opened a work order there; its outcome is
        # reported too and counts in the parent's bad-review funnel.
        summary = await _parent_summary_when(
            parent_port, parent_world, lambda s: s["opened"] == 4, timeout=30
        )
        assert (summary["opened"], summary["overdue_open"]) == (4, 0), summary

        # The parent goes down: nothing is lost, the child's queue grows.
        parent_server.signal_group(signal.SIGTERM)
        await _post_ratings(child_port, world, 15)
        await asyncio.sleep(2)
        engine = make_engine(child)
        async with make_sessionmaker(engine)() as db:
            streams = {s.name: s for s in await exchange_jobs.status(db)}
        await engine.dispose()
        assert streams["ratings"].pending == 15
        assert streams["ratings"].failures >= 1 and streams["ratings"].last_error
        parent_server.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{parent_port}") as pc:
            await parent_server.wait_ready(pc)
        assert await _wait_agree(child, upstream, 60) < 60

        # A loss on the parent: reconcile names the day, --repair puts the ratings back.
        await _lose_parent_rows(parent, 3)
        checked = _cli(child, "exchange", "reconcile", env=child_env)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        today = exchange_jobs.local_day(datetime.now(SHANGHAI))
        assert "不一致的日期" in checked.stderr and str(today) in checked.stderr
        repaired = _cli(child, "exchange", "reconcile", "--repair", env=child_env)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "全部一致" in repaired.stdout
        assert all(c.agrees for c in await _agreement(child, upstream))
        engine = make_engine(parent)
        async with make_sessionmaker(engine)() as db:
            refs = (
                (await db.execute(select(Evaluation.origin_ref).where(Evaluation.origin_ref > 0)))
                .scalars()
                .all()
            )
        await engine.dispose()
        assert len(refs) == len(set(refs)) == 35  # every rating once, none twice

        # Export: the day as JSON lines, one record each, in the exchange format.
        out = tmp_path / "day.jsonl"
        engine = make_engine(child)
        config = exchange_jobs.UpstreamConfig.from_settings(child)
        assert await exchange_jobs.export_day(make_sessionmaker(engine), config, today, out) == 35
        await engine.dispose()
        first = json.loads(out.read_text().splitlines()[0])
        assert first["formatVersion"] == "hcp-exchange/1" and first["pf"] == 4

        # Without the child's server (its sender loop), `worker --once` reports what is due.
        child_server.signal_group(signal.SIGTERM)
        child_server.proc.wait(timeout=30)
        engine = make_engine(child)
        async with make_sessionmaker(engine)() as db:
            given = datetime.now(SHANGHAI) - timedelta(minutes=1)
            for level in (5, 4, 1):
                await factories.add_rating(db, world, level=level, at=given)
            await db.commit()
        await engine.dispose()
        once = _cli(child, "worker", "--once", env=child_env)
        assert once.returncode == 0, once.stdout + once.stderr
        assert "上报上级平台：上报 3 条（1 批），被拒 0 条" in once.stdout, once.stdout
        assert all(c.agrees for c in await _agreement(child, upstream))
    finally:
        await upstream.close()
        child_server.signal_group(signal.SIGTERM)
        if parent_server.proc is not None and parent_server.proc.poll() is None:
            parent_server.signal_group(signal.SIGTERM)


def _children(pid: int) -> dict[int, str]:
    """The processes `pid` started: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
    return {p: c.decode(errors="replace") for p, c in found.items()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_serve_runs_the_sender_in_a_process_of_its_own(pair, tmp_path):
    """`serve` drains to the parent from a separate, lower-priority process (not on the
    workers' event loop), started again when it dies, and ended with the server even when
    the server is killed."""
    child, _ = pair
    env = {"HAOCHAPING_UPSTREAM_URL": f"http://127.0.0.1:{_free_port()}"}  # a parent down
    server = ServerProcess(child, _free_port(), tmp_path / "serve.log", env)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            await server.wait_ready(client)
        senders = [p for p, cmd in _children(server.proc.pid).items() if "exchange send" in cmd]
        assert len(senders) == 1, _children(server.proc.pid)
        sender = senders[0]
        wanted = min(os.getpriority(os.PRIO_PROCESS, server.proc.pid) + 10, 19)
        deadline = time.monotonic() + 30  # it lowers its priority once it has started
        while os.getpriority(os.PRIO_PROCESS, sender) != wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert os.getpriority(os.PRIO_PROCESS, sender) == wanted
        # A sender that dies is started again.
        os.kill(sender, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = [
                p
                for p, cmd in _children(server.proc.pid).items()
                if "exchange send" in cmd and p != sender and _alive(p)
            ]
            if again:
                break
            await asyncio.sleep(0.2)
        assert again, "the sender was not started again"
        sender = again[0]
        os.kill(server.proc.pid, signal.SIGKILL)  # the server alone, not its group
        server.proc.wait(timeout=15)
        deadline = time.monotonic() + 20
        while _alive(sender) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert not _alive(sender), "the sender outlived the server that started it"
    finally:
        server.signal_group(signal.SIGKILL)


def test_the_sender_alone_needs_a_parent(pair):
    child, _ = pair
    result = _cli(child, "exchange", "send", env={"HAOCHAPING_UPSTREAM_URL": ""})
    assert result.returncode == 2 and "未配置上级平台" in result.stderr, result.stderr
