"""While the database is away the service answers 503 with Retry-After (never 500), and
database errors are logged without the personal data their messages and parameters carry.

The outage is real: an engine pointed at a closed port (PostgreSQL) or at a database file
that cannot be opened (SQLite), and on PostgreSQL a TCP proxy in front of the test server
that is stopped mid-run and started again (the shared server itself is never stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from haochaping.app import create_app, shutdown, startup
from haochaping.config import Settings
from haochaping.core import handlers
from haochaping.db.session import make_engine, make_sessionmaker
from tests.factories import EvaluationPayloadFactory
from tests.integrations.servers import free_port

PHONE = "13987654321"


def dead_url(settings: Settings, tmp_path) -> str:
    """A database URL nothing answers on: a closed port, or a file that cannot be opened."""
    if settings.is_sqlite:
        (tmp_path / "not-a-folder").write_text("a file")
        return f"sqlite+aiosqlite:///{tmp_path}/not-a-folder/gone.db"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple]:
    app = create_app(settings)
    await startup(app)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c
    finally:
        await shutdown(app)


@pytest.fixture
async def outage(settings, tmp_path):
    """An app that started on the database, which is then gone."""
    async with served(settings) as (app, client):
        live_engine, live_maker = app.state.engine, app.state.sessionmaker
        dead = create_async_engine(dead_url(settings, tmp_path))
        app.state.engine, app.state.sessionmaker = dead, make_sessionmaker(dead)
        try:
            yield client
        finally:
            app.state.engine, app.state.sessionmaker = live_engine, live_maker
            await dead.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0


async def test_intake_answers_503_with_retry_after(outage):
    r = await outage.post(
        "/api/v1/evaluations",
        json=EvaluationPayloadFactory(),
        headers={"X-Api-Key": "hcp_any-key-the-database-would-check"},
    )
    assert_unavailable(r)
    assert r.json()["error"]["code"] == "database_unavailable"
    assert r.json()["error"]["message"] == "数据库暂时不可用，请稍后重试"


async def test_health_check_answers_503_with_retry_after(outage):
    r = await outage.get("/healthz")
    assert_unavailable(r)
    assert r.json()["error"]["code"] == "database_unavailable"


async def test_public_page_answers_a_chinese_503_page(outage):
    r = await outage.get("/ledger")  # the public ledger reads the database
    assert_unavailable(r)
    assert r.headers["content-type"].startswith("text/html")
    assert "数据库暂时不可用" in r.text and "服务暂时不可用" in r.text


async def test_console_sign_in_answers_a_chinese_503_page(outage):
    page = await outage.get("/login")  # the form itself needs no database
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = await outage.post(
        "/login", data={"username": "admin", "password": "x" * 12, "csrf_token": token}
    )
    assert_unavailable(r)
    assert r.headers["content-type"].startswith("text/html")
    assert "数据库暂时不可用" in r.text


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; `stop` drops the listener and every
    connection, as a database going down does; `start` brings it back on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def _client(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src, dst):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_postgresql_going_down_and_back_mid_run(settings):
    if settings.is_sqlite:
        pytest.skip("a TCP outage needs a database server (PostgreSQL)")
    url = urlsplit(settings.database_url)
    proxy = TcpProxy(url.hostname, url.port or 5432)
    await proxy.start()
    proxied = settings.model_copy(
        update={
            "database_url": settings.database_url.replace(
                url.netloc, f"{url.username}@127.0.0.1:{proxy.port}"
            )
        }
    )
    keys = iter(range(100))

    def headers() -> dict[str, str]:  # a new unknown key each time: none is cached
        return {"X-Api-Key": f"hcp_not-a-key-{next(keys)}"}

    try:
        async with served(proxied) as (_app, client):
            r = await client.get("/api/v1/work-orders", headers=headers())
            assert r.status_code == 401  # the database answered: the key is unknown
            await proxy.stop()
            for _ in range(3):  # connections broken in the pool, then refused
                r = await client.get("/api/v1/work-orders", headers=headers())
                assert_unavailable(r)
                assert r.json()["error"]["code"] == "database_unavailable"
            assert_unavailable(await client.get("/healthz"))
            await proxy.start()
            r = await client.get("/api/v1/work-orders", headers=headers())
            assert r.status_code == 401
            assert (await client.get("/healthz")).status_code == 200
    finally:
        with contextlib.suppress(Exception):
            await proxy.stop()


# --- what a database error leaves in the log -------------------------------------------


@pytest.fixture
async def probing(settings):
    """The app with routes that make the database fail on a statement about a phone."""
    async with served(settings) as (app, client):

        async def run(request: Request, sql: str) -> dict:
            async with request.app.state.sessionmaker() as db:
                for statement in sql.split(";"):
                    await db.execute(text(statement), {"p": PHONE})
            return {}

        async def missing_table(request: Request):
            return await run(request, "SELECT * FROM no_such_table WHERE phone = :p")

        async def duplicate(request: Request):
            return await run(
                request,
                "CREATE TEMPORARY TABLE probe (phone VARCHAR(20) UNIQUE);"
                "INSERT INTO probe (phone) VALUES (:p);"
                "INSERT INTO probe (phone) VALUES (:p)",
            )

        async def bad_number(request: Request):
            return await run(request, "SELECT CAST(CAST(:p AS VARCHAR(20)) || 'x' AS INTEGER)")

        app.add_api_route("/probe/missing-table", missing_table)
        app.add_api_route("/probe/duplicate", duplicate)
        app.add_api_route("/probe/bad-number", bad_number)
        yield client


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/probe/missing-table", 500, "internal_error"),
        ("/probe/duplicate", 409, "conflict"),
    ],
)
async def test_logged_database_errors_carry_no_phone_number(probing, caplog, path, status, code):
    caplog.set_level(logging.DEBUG)
    r = await probing.get(path)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    db_records = [rec for rec in caplog.records if rec.name == "haochaping"]
    assert db_records, "the database error was not logged"
    assert "Error" in caplog.text  # the error class is named ...
    assert PHONE not in caplog.text  # ... the number is not (nor in a traceback)
    assert PHONE not in r.text


async def test_data_exception_is_logged_without_the_value(probing, settings, caplog):
    if settings.is_sqlite:
        pytest.skip("SQLite converts 'x' to an integer without an error")
    caplog.set_level(logging.DEBUG)
    r = await probing.get("/probe/bad-number")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_value")
    assert "sqlstate=22" in caplog.text  # a data exception, named by its SQLSTATE
    assert PHONE not in caplog.text


def test_engine_hides_sql_parameters(settings):
    engine = make_engine(settings)
    assert engine.sync_engine.hide_parameters is True


# --- which driver errors mean "the database is away" -----------------------------------


@pytest.mark.parametrize(
    ("error", "away"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),  # 57P03
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), True),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            True,
        ),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)"),
            True,
        ),
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432), "
                "[Errno 99] Cannot assign requested address"
            ),
            True,
        ),
        (sqlite3.OperationalError("unable to open database file"), True),
        (asyncpg.UniqueViolationError("duplicate key value violates unique constraint"), False),
        (asyncpg.UndefinedTableError('relation "x" does not exist'), False),
        (sqlite3.OperationalError("no such table: x"), False),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
    ],
)
def test_which_errors_mean_the_database_is_away(error, away):
    assert handlers.is_database_unavailable(error) is away


async def test_a_raw_driver_error_on_connect_answers_503(settings):
    """asyncpg raises its own errors (not SQLAlchemy's) while connecting to a server that
    is starting up or shutting down; they reach the handlers as they are."""
    async with served(settings) as (app, client):

        async def starting_up():
            raise asyncpg.CannotConnectNowError("the database system is starting up")

        async def not_found():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")

        app.add_api_route("/api/v1/probe/starting-up", starting_up)
        app.add_api_route("/api/v1/probe/not-found", not_found)
        r = await client.get("/api/v1/probe/starting-up")
        assert_unavailable(r)
        assert r.json()["error"]["code"] == "database_unavailable"
        r = await client.get("/api/v1/probe/not-found")  # not the database: a plain 500
        assert (r.status_code, r.json()["error"]["code"]) == (500, "internal_error")
        assert "Retry-After" not in r.headers
