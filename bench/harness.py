"""Shared machinery of the benchmarks: databases, seed data, the server process, a lean client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text

from haochaping.accounts import service as account_service
from haochaping.cases.models import Case
from haochaping.config import Settings
from haochaping.core.auth import Principal
from haochaping.db import migrate as db_migrate
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.schemas import StageRule
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item, Org, Staff
from haochaping.policies import schemas as policy_schemas
from haochaping.policies import service as policy_service

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN = Principal(kind="user", id=0, name="bench", org_id=0, org_path="/", role="admin")
CASE_CHANNELS = ["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms"]
# One valid reason per level, so that every rating passes the level/reason rules.
REASON_BY_LEVEL = {5: "517", 4: "413", 3: "314", 2: "209", 1: "110"}
COMMENT_BY_LEVEL = {5: "办事很快", 4: "服务不错", 3: "一般", 2: "等了很久", 1: "多次往返仍未办成"}
# Levels of 20 consecutive ratings: one bad rating in 20 (5 %), which opens a work order.
# Real 好差评 data is better still (well over 95 % good); this keeps the closed loop in the path.
LEVEL_CYCLE = (5, 5, 4, 5, 5, 3, 5, 4, 5, 5, 5, 4, 5, 5, 3, 5, 4, 5, 5, 2)


# --- databases ---------------------------------------------------------------------------


async def create_pg_database(prefix: str) -> tuple[str, str]:
    """A fresh PostgreSQL database; returns its name and SQLAlchemy URL."""
    import asyncpg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_pg_database(name: str) -> None:
    """Drop a benchmark database, ending whatever sessions still use it."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def pg_connect(dsn: str, patience: float = 60.0):
    """An asyncpg connection, waiting while the server is at max_connections (shared box)."""
    import asyncpg

    deadline = time.monotonic() + patience
    while True:
        try:
            return await asyncpg.connect(dsn)
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def sqlite_url() -> tuple[Path, str]:
    """A fresh SQLite file in a temporary folder; returns the folder and the URL."""
    folder = Path(tempfile.mkdtemp(prefix="hcp-bench-"))
    return folder, f"sqlite+aiosqlite:///{folder}/bench.db"


def settings_for(url: str) -> Settings:
    """Settings of the benchmark process itself (the server reads its own environment)."""
    return Settings(database_url=url, _env_file=None)


def migrate(url: str) -> None:
    """Bring a benchmark database to the newest schema."""
    db_migrate.upgrade(settings_for(url))


# --- seed data ---------------------------------------------------------------------------


@dataclass
class World:
    """What the seed created: the client key and the ids every rating row refers to."""

    key: str
    cases: int
    client_id: int
    org_id: int
    window_id: int
    item_id: int
    staff_id: int
    region_code: str = "330102"
    case_ids: list[int] = field(default_factory=list)


def case_no(i: int) -> str:
    """The number of seeded case i."""
    return f"BENCH-{i:09d}"


async def seed(url: str, cases: int) -> World:
    """Reference data, one API client for every channel, and `cases` completed cases."""
    engine = make_engine(settings_for(url))
    try:
        async with make_sessionmaker(engine)() as db:
            for code, name, parent in [
                ("330000", "浙江省", None),
                ("330100", "杭州市", "330000"),
                ("330102", "上城区", "330100"),
            ]:
                await org_service.create_region(
                    db=db,
                    actor=ADMIN,
                    data=org_schemas.RegionCreate(code=code, name=name, parent_code=parent),
                )
            for code, name, kind, parent in [
                ("OFFICE", "省政务服务管理办公室", "department", None),
                ("HALL-A", "上城区市民之家", "hall", "OFFICE"),
                ("W-A1", "综合受理1号窗口", "window", "HALL-A"),
            ]:
                await org_service.create_org(
                    db=db,
                    actor=ADMIN,
                    data=org_schemas.OrgCreate(
                        code=code, name=name, kind=kind, parent_code=parent, region_code="330102"
                    ),
                )
            await org_service.create_staff(
                db=db,
                actor=ADMIN,
                data=org_schemas.StaffCreate(staff_no="S-A1", name="李娜", org_code="W-A1"),
            )
            await org_service.create_item(
                db=db,
                actor=ADMIN,
                data=org_schemas.ItemCreate(code="ITEM-A1", name="营业执照核发", org_code="HALL-A"),
            )
            client, key = await account_service.create_client(
                db=db, name="bench", org_code="OFFICE", channels=CASE_CHANNELS
            )
            # Stages are a closed list per region (policies): the phases rate each case once
            # per stage, so the region lists the stages rating_target hands out.
            await policy_service.create_policy(
                db=db,
                actor=ADMIN,
                data=policy_schemas.PolicyCreate(
                    region_code="330100",
                    effective_from=datetime.now(UTC).date() - timedelta(days=400),
                    values=policy_schemas.PolicyValuesPatch(
                        stages=[StageRule(code="whole")]
                        + [
                            StageRule(code=f"{p}{i}", label=f"压测{p}{i}")
                            for p, n in (("a", 6), ("b", 13))
                            for i in range(n)
                        ]
                    ),
                ),
            )
            ids = dict((await db.execute(select(Org.code, Org.id))).all())
            item_id = (await db.execute(select(Item.id))).scalar_one()
            staff_id = (await db.execute(select(Staff.id))).scalar_one()
            await db.commit()
        world = World(
            key=key,
            cases=cases,
            client_id=client.id,
            org_id=ids["HALL-A"],
            window_id=ids["W-A1"],
            item_id=item_id,
            staff_id=staff_id,
        )
        async with engine.begin() as conn:
            await _insert_cases(conn, world)
            world.case_ids = list(
                (await conn.execute(select(Case.id).order_by(Case.case_no))).scalars()
            )
        if not settings_for(url).is_sqlite:
            async with engine.begin() as conn:  # fresh statistics for the case lookups
                await conn.execute(text("ANALYZE"))
        return world
    finally:
        await engine.dispose()


async def _insert_cases(conn, world: World) -> None:
    """Many completed cases quickly: one set-based INSERT on PostgreSQL, batches on SQLite."""
    done = datetime.now(UTC) - timedelta(hours=2)
    common = {
        "item_id": world.item_id,
        "org_id": world.org_id,
        "window_id": world.window_id,
        "staff_id": world.staff_id,
        "mode": "offline",
        "case_type": "immediate",
        "status": "completed",
        "applicant_type": "person",
        "applicant_name": "张三",
        "applicant_cert_type": "id_card",
        "applicant_cert_no": "330102199001011234",
        "applicant_phone": "13800001234",
        "received_at": done - timedelta(hours=1),
        "accepted_at": done - timedelta(minutes=30),
        "completed_at": done,
        "client_id": world.client_id,
        "created_at": done,
        "updated_at": done,
    }
    if conn.dialect.name == "postgresql":
        cols = ", ".join(common)
        await conn.execute(
            text(
                f"INSERT INTO service_case (case_no, {cols}) "
                f"SELECT 'BENCH-' || lpad(g::text, 9, '0'), "
                + ", ".join(f":{c}" for c in common)
                + " FROM generate_series(0, :n - 1) AS g"
            ),
            {**common, "n": world.cases},
        )
        return
    for start in range(0, world.cases, 5000):
        rows = [
            {"case_no": case_no(i), **common} for i in range(start, min(start + 5000, world.cases))
        ]
        await conn.execute(insert(Case), rows)


def rating_target(world: World, k: int, prefix: str) -> tuple[int, str]:
    """Request k of a phase: a seeded case and a stage never rated before in the run."""
    n = world.cases
    return k % n, f"{prefix}{k // n}"


def rating_body(world: World, k: int, prefix: str, *, own_phone: bool = False) -> dict:
    """The JSON body of rating k: channels and levels rotate, each level with a valid reason.

    With `own_phone` the rater names a phone of their own, a different one per rating (the
    seeded cases all share one applicant, which would give the detectors one source only)."""
    i, stage = rating_target(world, k, prefix)
    level = LEVEL_CYCLE[k % len(LEVEL_CYCLE)]
    body = {
        "case_no": case_no(i),
        "stage": stage,
        "channel": CASE_CHANNELS[k % 7],
        "level": level,
        "reasons": [REASON_BY_LEVEL[level]],
        "comment": COMMENT_BY_LEVEL[level],
    }
    if own_phone:
        body["rater"] = {"type": "person", "name": "张三", "phone": f"139{k % 10**8:08d}"}
    return body


# --- the server --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real service in its own process group, started through the `haochaping` CLI."""

    def __init__(
        self,
        url: str,
        *,
        port: int | None = None,
        workers: int = 1,
        access_log: bool = True,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        uvicorn: bool | None = None,
    ) -> None:
        self.url, self.workers, self.access_log = url, workers, access_log
        # uvicorn directly: without what `serve` adds (the sender process); by default when
        # the access log is off, as before `serve --no-access-log` existed (older trees in
        # code A/B runs have no such option)
        self.uvicorn = not access_log if uvicorn is None else uvicorn
        self.extra_env = env or {}
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="hcp-server-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn the server; it migrates, then listens."""
        env = {
            **os.environ,
            "HAOCHAPING_DATABASE_URL": self.url,
            "HAOCHAPING_ENV": "development",
            **self.extra_env,
        }
        if not self.uvicorn:
            cmd = [
                sys.executable,
                "-c",
                "from haochaping.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *([] if self.access_log else ["--no-access-log"]),
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "haochaping.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *([] if self.access_log else ["--no-access-log"]),
            ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll /healthz until it answers 200 (and every worker had time to boot)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.tail()}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                conn = await HttpConnection.open("127.0.0.1", self.port)
                try:
                    status, _ = await conn.request("GET", "/healthz")
                finally:
                    conn.close()
                if status == 200:
                    if self.workers > 1:  # the first worker up answers; let the others boot
                        await asyncio.sleep(1.0 + 0.3 * self.workers)
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.log_path}")

    def pids(self) -> list[int]:
        """The processes of the server's group (supervisor and workers)."""
        if self.proc is None:
            return []
        out = subprocess.run(
            ["ps", "-o", "pid=", "-g", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(p) for p in out.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the whole process group and reap the leader."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        if sig == signal.SIGKILL:  # orphaned workers die with the group, but wait for it
            for _ in range(50):
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), forced after a timeout."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        self.proc = None

    def tail(self, lines: int = 20) -> str:
        """The end of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- a lean HTTP/1.1 client ----------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, with as little client-side work as possible."""

    # The load generator shares the two cores with the server and PostgreSQL. Measured here at
    # 32 concurrent requests: httpx.AsyncClient ~4.5 ms of CPU per request, this ~70 us.

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, f"{host}:{port}")

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer; returns status and body."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        head.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length, chunked = 0, False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(parts)
            parts.append(chunk[:-2])

    def close(self) -> None:
        self.writer.close()

    @property
    def local_port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]


def connection_owners(port: int) -> dict[int, int]:
    """Client port -> pid of the server process holding that connection (from `ss`)."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        return {}
    owners = {}
    for line in out.splitlines():
        fields = line.split()
        if "pid=" in line and len(fields) >= 4:
            owners[int(fields[3].rsplit(":", 1)[1])] = int(line.split("pid=")[1].split(",")[0])
    return owners


async def open_balanced(server: Server, n: int) -> list[HttpConnection]:
    """`n` keep-alive connections spread evenly over the server's worker processes."""
    # Workers share one listening socket, and a burst of connects is mostly accepted by
    # whichever worker wakes first; keep-alive then pins the load to it (seen: 32 of 32 on one
    # of two workers). Open one by one, then reopen those of an overfull worker.
    conns = []
    for _ in range(n):
        conns.append(await HttpConnection.open("127.0.0.1", server.port))
        await conns[-1].request("GET", "/healthz")  # accepted and served before the next
    if server.workers < 2:
        return conns
    fair = -(-n // server.workers)
    for _ in range(20 * n):
        owners = connection_owners(server.port)
        per_pid: dict[int, list[int]] = {}
        for i, conn in enumerate(conns):
            per_pid.setdefault(owners.get(conn.local_port, 0), []).append(i)
        if list(per_pid) == [0]:
            break  # ss cannot see the owners here: keep the spread we got
        heavy = max(per_pid.values(), key=len)
        if len(heavy) <= fair:
            break
        i = heavy[-1]
        conns[i].close()
        conns[i] = await HttpConnection.open("127.0.0.1", server.port)
        await conns[i].request("GET", "/healthz")
    return conns


def worker_spread(server: Server, conns: list[HttpConnection]) -> list[int]:
    """How many of the connections each server process holds, largest first."""
    owners = connection_owners(server.port)
    counts: dict[int, int] = {}
    for conn in conns:
        pid = owners.get(conn.local_port)
        if pid is not None:
            counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by the given processes (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


PG_AUXILIARY = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "stats collector",
)


def postgres_pids(dbname: str, *, auxiliary: bool = True) -> list[int]:
    """PostgreSQL backends of one database, and the shared WAL writer, checkpointer..."""
    # Backends of other databases are someone else's load on a shared machine.
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        title = cmdline.split(": ", 2)[-1]
        if f" {dbname} " in f" {title} " or (auxiliary and title.startswith(PG_AUXILIARY)):
            pids.append(int(entry.name))
    return pids


def renice(pids: list[int], niceness: int) -> None:
    """Set the scheduling priority of processes (negative: ahead of other work; needs root)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, niceness)


def percentile(sorted_values: list[float], p: float) -> float:
    """The p-th percentile (0..100) of sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def run(coro):
    """Run a coroutine on uvloop when available (a cheaper client loop), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
