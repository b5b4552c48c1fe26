"""Abuse limits: sign-in lock-out, per-IP limits, shared across processes through Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import httpx

from haochaping.core.ratelimit import MemoryCounter, RedisCounter
from tests.factories import PASSWORD, assert_error

REDIS_URL = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_memory_counter_counts_per_window():
    c = MemoryCounter()
    assert [await c.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert await c.get("k", 60) == 3 and await c.get("other", 60) == 0
    await c.reset("k", 60)
    assert await c.get("k", 60) == 0


async def test_redis_counter_is_shared_between_clients():
    key = f"t-{uuid.uuid4().hex}"
    a, b = RedisCounter(REDIS_URL), RedisCounter(REDIS_URL)
    try:
        assert await a.incr(key, 60) == 1
        assert await b.incr(key, 60) == 2
        assert await a.get(key, 60) == 2
    finally:
        await a.close()
        await b.close()


async def test_sign_in_locks_after_repeated_failures(client, world):
    user = world.users["unit_a"]
    for _ in range(5):
        r = await client.post("/api/v1/auth/token", data={"username": user, "password": "wrong"})
        assert_error(r, 401, "invalid_credentials")
    # Even the right password is refused while the account is locked.
    r = await client.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    err = assert_error(r, 429, "login_locked")
    assert "锁定" in err["message"]
    other = await client.post("/api/v1/auth/token",
                              data={"username": world.users["unit_b"], "password": PASSWORD})
    assert other.status_code == 200


async def test_sign_in_attempts_are_capped_per_ip(client, world):
    codes = []
    for i in range(25):
        r = await client.post("/api/v1/auth/token",
                              data={"username": f"nobody{i}", "password": "x"})
        codes.append(r.status_code)
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(settings, port: int, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "HAOCHAPING_DATABASE_URL": settings.database_url,
           "HAOCHAPING_SECRET_KEY": settings.secret_key, "HAOCHAPING_REDIS_URL": REDIS_URL,
           "HAOCHAPING_JOB_INTERVAL_SECONDS": "0", "HAOCHAPING_ENV": "test",
           "HAOCHAPING_SMS_LOG_PATH": str(tmp_path / "sms.jsonl")}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "haochaping.asgi:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"server on {port} did not start")


def test_lockout_is_shared_by_two_server_processes(settings, tmp_path):
    ports = [_free_port(), _free_port()]
    procs = [_start(settings, p, tmp_path) for p in ports]
    try:
        for p in ports:
            _wait(p)
        username = f"ghost-{uuid.uuid4().hex[:8]}"
        statuses = []
        for i in range(7):  # alternate between the two processes
            r = httpx.post(f"http://127.0.0.1:{ports[i % 2]}/api/v1/auth/token",
                           data={"username": username, "password": "wrong"}, timeout=10)
            statuses.append(r.status_code)
        # Five failures in all lock the name, whichever process saw them.
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
        assert r.json()["error"]["code"] == "login_locked"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
