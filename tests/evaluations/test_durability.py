"""A rating answered 201 is committed: it survives SIGKILL of the server under load.

The service runs as a real subprocess (`haochaping serve`) on the suite's database backend.
It writes for real, so it gets a sibling database of its own (a file next to the suite's
SQLite file, or `<db>_durability` on the same PostgreSQL server): committed rows in the shared
test database would break other tests' counts. `bench/durability.py` is the longer version.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from haochaping.config import Settings
from haochaping.db import migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.models import Evaluation
from haochaping.policies import service as policy_service
from haochaping.policies.schemas import PolicyCreate, PolicyValuesPatch
from tests import factories

LOAD_SECONDS = 2.0
CLIENTS = 8
CASES, STAGES = 100, 20
CHANNELS = ["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms"]


async def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def durable_settings(settings: Settings):
    """Settings for a migrated sibling database on the suite's backend, dropped afterwards."""
    base, _, name = settings.database_url.rpartition("/")
    drop: list[str] = []
    if settings.is_sqlite:
        target = f"durability-{uuid.uuid4().hex[:8]}.db"
    else:
        target = f"{name}_durability"
        drop = [
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{target}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{target}"',
        ]
        asyncio.run(_pg_admin(settings.database_url, *drop, f'CREATE DATABASE "{target}"'))
    s = Settings(
        env="test",
        database_url=f"{base}/{target}",
        secret_key=settings.secret_key,
        base_url="http://testserver",
        _env_file=None,
    )
    migrate.upgrade(s)
    yield s
    if settings.is_sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(base.split(":///", 1)[1], target + suffix).unlink(missing_ok=True)
    else:
        asyncio.run(_pg_admin(settings.database_url, *drop))


@pytest.fixture
async def durable_engine(durable_settings):
    """A committing engine on the sibling database (the suite's engine rolls back)."""
    engine = make_engine(durable_settings)
    yield engine
    await engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`haochaping serve` in its own process group, so SIGKILL reaches every process."""

    def __init__(
        self, settings: Settings, port: int, log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings, self.port, self.log, self.proc = settings, port, log, None
        self.extra_env = extra_env or {}

    def start(self) -> None:
        env = {
            **os.environ,
            "HAOCHAPING_DATABASE_URL": self.settings.database_url,
            "HAOCHAPING_ENV": "test",
            "HAOCHAPING_SECRET_KEY": self.settings.secret_key,
            **self.extra_env,
        }
        with open(self.log, "ab") as log:  # a file, not a pipe: a full pipe would stall it
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from haochaping.cli import main; main()",
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, client: httpx.AsyncClient, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError("server did not answer /healthz in time")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


async def test_every_acknowledged_rating_survives_sigkill(
    durable_settings, durable_engine, tmp_path
):
    async with make_sessionmaker(durable_engine)() as db:
        world = await factories.build_world(db, suffix=f"-D{uuid.uuid4().hex[:6]}")
        # Each (case, stage) may be rated once, at a stage of the region's closed list: the
        # load spreads over cases and the steps of a bundled "一件事".
        await policy_service.create_policy(
            db=db,
            actor=factories.ADMIN,
            data=PolicyCreate(
                region_code="330102",
                values=PolicyValuesPatch(
                    stages=[{"code": f"s{i}", "label": f"第 {i + 1} 步"} for i in range(STAGES)]
                ),
            ),
        )
        await db.commit()
        cases = [(await factories.make_case(db, world))["case_no"] for _ in range(CASES)]
    server = ServerProcess(durable_settings, _free_port(), tmp_path / "server.log")
    acked: dict[int, tuple[int, str]] = {}
    counter = iter(range(10**9))
    killed = asyncio.Event()

    async def rater(client: httpx.AsyncClient) -> None:
        while not killed.is_set():
            k = next(counter)
            if k >= CASES * STAGES:
                return  # every (case, stage) rated
            level = 5 - k % 5
            body = factories.EvaluationPayloadFactory(
                case_no=cases[k % CASES],
                stage=f"s{k // CASES}",
                channel=CHANNELS[k % 7],
                level=level,
                reasons=[],
                comment=f"评价 {k}",
            )
            try:
                r = await client.post(
                    "/api/v1/evaluations", json=body, headers={"X-Api-Key": world.keys["all"]}
                )
            except httpx.TransportError:
                return  # cut off by the kill: no answer, so nothing was promised
            assert r.status_code == 201, f"{r.text}\n{server.log.read_text()[-3000:]}"
            acked[r.json()["id"]] = (level, body["channel"])

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", limits=limits, timeout=30
    ) as client:
        server.start()
        try:
            await server.wait_ready(client)
            tasks = [asyncio.create_task(rater(client)) for _ in range(CLIENTS)]
            await asyncio.sleep(LOAD_SECONDS)
            # On a loaded CI machine the first answers can be slow to come: load on until
            # enough are acknowledged to prove something (the kill still lands mid-load).
            deadline = time.monotonic() + 30
            while len(acked) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            server.signal_group(signal.SIGKILL)  # mid-load, no chance to flush or clean up
            killed.set()
            await asyncio.gather(*tasks)
            assert len(acked) >= 10, "too few ratings acknowledged to prove anything"

            server.start()
            await server.wait_ready(client)
            for eid in list(acked)[:: max(1, len(acked) // 25)]:
                r = await client.get(
                    f"/api/v1/evaluations/{eid}", headers={"X-Api-Key": world.keys["all"]}
                )
                assert r.status_code == 200, r.text
                assert (r.json()["level"], r.json()["channel"]) == acked[eid]
        finally:
            if server.proc is not None and server.proc.poll() is None:
                server.signal_group(signal.SIGTERM)

    async with durable_engine.connect() as conn:
        rows = await conn.execute(select(Evaluation.id, Evaluation.level, Evaluation.channel))
        stored = {eid: (level, channel) for eid, level, channel in rows}
    missing = sorted(set(acked) - set(stored))
    assert missing == [], f"{len(missing)} of {len(acked)} acknowledged ratings lost"
    assert {eid: stored[eid] for eid in acked} == acked
