"""The command line: serve, migrate, demo, user create, client create."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date as date_type
from pathlib import Path
from typing import Annotated

import typer
import typer.core
import typer.rich_utils

from haochaping.config import Settings

# The command line speaks Chinese, as the pages do: every command's and option's help, and
# the words Typer puts around them (its panel titles and notes are module settings of
# typer.rich_utils; the usage line and the --help option come from the command classes).
for _name, _text in {
    "OPTIONS_PANEL_TITLE": "选项",
    "ARGUMENTS_PANEL_TITLE": "参数",
    "COMMANDS_PANEL_TITLE": "命令",
    "ERRORS_PANEL_TITLE": "错误",
    "DEFAULT_STRING": "[默认：{}]",
    "REQUIRED_LONG_STRING": "[必填]",
    "DEPRECATED_STRING": "（已弃用）",
    "ENVVAR_STRING": "[环境变量：{}]",
    "ABORTED_TEXT": "已取消。",
    "RICH_HELP": "运行 [blue]'{command_path} {help_option}'[/] 查看帮助。",
}.items():
    setattr(typer.rich_utils, _name, _text)
HELP_OPTION = "显示此帮助并退出"
USAGE = "用法："


class _Chinese:
    """The usage line and the --help option in Chinese (mixed into Typer's classes)."""

    def format_usage(self, ctx, formatter) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=USAGE)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_OPTION
        return option


class Command(_Chinese, typer.core.TyperCommand):
    pass


class Group(_Chinese, typer.core.TyperGroup):
    pass


def _typer(help: str, **kwargs) -> typer.Typer:
    """A command group whose commands speak Chinese (no shell-completion options)."""
    app = typer.Typer(help=help, cls=Group, add_completion=False, **kwargs)
    command = app.command

    def chinese_command(*args, **kw):
        kw.setdefault("cls", Command)
        return command(*args, **kw)

    app.command = chinese_command  # type: ignore[method-assign]
    return app


app = _typer(
    "好差评 Haochaping：政务服务“好差评”平台的命令行",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = _typer("人员账号")
client_app = _typer("API 客户端（渠道、业务系统）")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError: a setting refused, said plainly
        typer.secho(f"配置错误：{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _migrated_settings() -> Settings:
    """The settings, after bringing the database schema up to date (a fresh database works)."""
    from haochaping.core.handlers import describe_db_error, is_database_unavailable
    from haochaping.db import migrate as db_migrate

    settings = _settings()
    try:
        db_migrate.upgrade(settings)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        typer.secho(
            f"错误：无法连接数据库 {_safe_url(settings)}（{describe_db_error(exc)}），"
            "请检查 HAOCHAPING_DATABASE_URL 与数据库是否已启动",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from exc
    return settings


def _safe_url(settings: Settings) -> str:
    return settings.database_url.split("@")[-1]


def _refuse_demo_in_production(settings: Settings) -> None:
    if settings.env == "production":
        typer.secho(
            "错误：生产环境（HAOCHAPING_ENV=production）不能加载演示数据："
            "演示数据会创建公开密码的账号和全渠道 API 密钥。",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)


def _in_session(fn):
    """Run `fn(db)` in one committed unit of work on the (migrated) database."""
    return asyncio.run(_with_session(_migrated_settings(), fn))


async def _with_session(settings: Settings, fn):
    from haochaping.db.session import make_engine, make_sessionmaker

    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db:
            result = await fn(db)
            await db.commit()
            return result
    finally:
        await engine.dispose()


Progress = Callable[[str, int, int], None]
QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="只显示结果摘要，不显示进度")]


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress | None]:
    """Progress bars on the terminal (stderr) while a long command runs, one per phase; None
    with `--quiet` or when stderr is not a terminal, so that only the summary is printed."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bars:
        tasks: dict[str, object] = {}

        def update(phase: str, done: int, total: int) -> None:
            task = tasks.get(phase)
            if task is None:
                task = tasks[phase] = bars.add_task(phase, total=max(total, 1))
            bars.update(task, completed=done, total=max(total, 1))  # type: ignore[arg-type]

        yield update


@contextmanager
def _demo_dead_letter_unlogged() -> Iterator[None]:
    """While the demo loads: its one dead letter is deliberate (a mistyped address) and
    counted in the summary, so the outbox's warning about it is not printed beside it."""
    import logging

    quiet = logging.NullHandler()
    outbox_log = logging.getLogger("haochaping.core.outbox")
    outbox_log.addHandler(quiet)
    try:
        yield
    finally:
        outbox_log.removeHandler(quiet)


def _fail(exc: Exception) -> None:
    from haochaping.core.errors import DomainError

    if isinstance(exc, DomainError):
        typer.secho(f"错误（{exc.code}）：{exc.message}", fg="red", err=True)
        raise typer.Exit(2) from exc
    raise exc


@app.command(help="把数据库结构升级到最新版本")
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = _migrated_settings()
    typer.echo(f"数据库已是最新结构：{_safe_url(settings)}")


@app.command(help="升级数据库结构，然后启动接口和页面服务（默认 127.0.0.1:8000）")
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口")] = None,
    workers: Annotated[int, typer.Option(help="服务进程数")] = 1,
    demo: Annotated[bool, typer.Option(help="数据库为空时先加载演示省份")] = False,
    demo_cases: Annotated[int, typer.Option(min=1, help="演示省份的办件数")] = 200_000,
    access_log: Annotated[
        bool, typer.Option(help="每个请求记录一行访问日志（默认记录）", show_default=False)
    ] = True,
) -> None:
    """Migrate, then serve the API and the pages (127.0.0.1:8000 by default); with a parent
    configured, the reporting-up sender runs beside the workers in a process of its own."""
    import uvicorn

    # The app is built from the environment in uvicorn's workers: hand them the address, so
    # that an unset HAOCHAPING_BASE_URL follows the port actually served.
    if host:
        os.environ["HAOCHAPING_HOST"] = host
    if port:
        os.environ["HAOCHAPING_PORT"] = str(port)
    settings = _settings()
    problem = settings.listening_problem(settings.host)
    if problem:
        typer.secho(f"错误：{problem}", fg="red", err=True)
        raise typer.Exit(2)
    if demo:
        _refuse_demo_in_production(settings)
    settings = _migrated_settings()
    if demo:
        from haochaping.demo import loader

        with _progress(quiet=False) as progress, _demo_dead_letter_unlogged():
            summary = asyncio.run(
                loader.load_if_empty(settings, cases=demo_cases, echo=None, progress=progress)
            )
        if summary is not None:
            typer.echo(summary)
    typer.echo(f"对外地址（评价链接、二维码）：{settings.base_url}")
    sender = _Sender.for_settings(settings)
    try:
        uvicorn.run(
            "haochaping.asgi:app",
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
            access_log=access_log,
            proxy_headers=False,
        )
    finally:
        if sender is not None:
            sender.stop()


class _Sender:
    """The reporting-up sender process `serve` runs beside its workers (`exchange send`, at
    a lower priority), started again five seconds after it dies (not after it was asked to
    stop); the workers then run none."""

    RESTART_SECONDS = 5.0

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.proc = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="upstream-sender", daemon=True)
        self._watcher.start()

    @classmethod
    def for_settings(cls, settings: Settings) -> _Sender | None:
        """None when there is no parent, or the settings keep the sender elsewhere."""
        if not settings.upstream_url or not settings.upstream_sender_inline:
            return None
        os.environ["HAOCHAPING_UPSTREAM_SENDER_INLINE"] = "false"  # for the workers
        return cls()

    def _spawn(self):
        import subprocess

        command = [sys.executable, "-c", "from haochaping.cli import main; main()"]
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*command, "exchange", "send", "--parent-pid", str(os.getpid())]
        )

    def _watch(self) -> None:
        while True:
            code = self.proc.wait()
            # 0: it was asked to stop (SIGTERM, or Ctrl-C reaching the whole terminal group
            # while the server shuts down), not a crash.
            if code == 0 or self._stopping.wait(self.RESTART_SECONDS):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                typer.secho(f"上报进程已退出（状态 {code}），重新启动", fg="yellow", err=True)
                self.proc = self._spawn()

    def stop(self) -> None:
        import subprocess

        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc.poll() is None:
            proc.terminate()  # it releases the stream's lease on its way out
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@app.command("demo", help="加载演示省份（可重复运行：再次运行不做任何改动）")
def demo_cmd(
    cases: Annotated[int, typer.Option(help="办件数")] = 200_000,
    seed: Annotated[int, typer.Option(help="随机数种子")] = 2026,
    quiet: QUIET = False,
) -> None:
    """Load the demo province (idempotent: a second run changes nothing)."""
    from haochaping.demo import loader

    _refuse_demo_in_production(_settings())
    settings = _migrated_settings()
    with _progress(quiet) as progress, _demo_dead_letter_unlogged():
        summary = asyncio.run(loader.load(settings, cases=cases, seed=seed, progress=progress))
    typer.echo(summary)


@user_app.command("create", help="创建人员账号")
def user_create(
    username: Annotated[str, typer.Option(help="用户名")],
    password: Annotated[
        str, typer.Option(prompt="密码", hide_input=True, help="密码（不填则提示输入）")
    ],
    role: Annotated[
        str,
        typer.Option(
            help="角色：admin 系统管理员、office 管理机构、unit 责任单位、"
            "staff 窗口人员、assessor 监督查评人员"
        ),
    ] = "admin",
    org: Annotated[str | None, typer.Option(help="所属机构编码（默认：根机构）")] = None,
    email: Annotated[str | None, typer.Option(help="电子邮箱")] = None,
) -> None:
    """Create a person account."""
    from sqlalchemy import select

    from haochaping.accounts import service as account_service
    from haochaping.orgs.models import Org

    async def run(db):
        org_code = org
        if org_code is None:
            root = (
                (await db.execute(select(Org).where(Org.parent_id.is_(None)).order_by(Org.id)))
                .scalars()
                .first()
            )
            if root is None:
                org_code = await _bootstrap_root(db)
            else:
                org_code = root.code
        return await account_service.create_user(
            db=db, username=username, password=password, role=role, org_code=org_code, email=email
        )

    try:
        user = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已创建用户 {user.username}（{user.role}）")


async def _bootstrap_root(db) -> str:
    """On an empty database, the installation's one root organisation for the first
    administrator: organisations created without `parent_code` go directly under it."""
    from haochaping.orgs.models import Org, Region

    db.add(Region(code="000000", name="全国", parent_code=None, tier=1, path="/000000/"))
    await db.flush()
    db.add(
        Org(
            code="ROOT",
            name="政务服务管理办公室",
            kind="department",
            parent_id=None,
            region_code="000000",
            path="/ROOT/",
        )
    )
    await db.flush()
    typer.echo(
        "已创建根机构 ROOT（政务服务管理办公室）：本系统只有这一个根机构，"
        "未指定上级机构（parent_code）新建的机构都归入其下，由根机构的系统管理员管理"
    )
    return "ROOT"


@client_app.command("create", help="创建 API 客户端，密钥只显示这一次")
def client_create(
    name: Annotated[str, typer.Option(help="客户端名称")],
    org: Annotated[str, typer.Option(help="机构编码：密钥只能访问该机构及其下级")],
    channels: Annotated[str, typer.Option(help="渠道，用逗号分隔，例如 pad,qrcode")],
) -> None:
    """Create an API client and print its key once."""
    from haochaping.accounts import service as account_service

    async def run(db):
        return await account_service.create_client(
            db=db,
            name=name,
            org_code=org,
            channels=[c.strip() for c in channels.split(",") if c.strip()],
        )

    try:
        client, key = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已创建客户端 {client.name}，渠道：{','.join(client.channels)}")
    typer.echo("API 密钥（只显示这一次，请妥善保存）：")
    typer.echo(key)


@user_app.command("password", help="重设人员的密码；其所有登录和令牌随即失效")
def user_password(
    username: Annotated[str, typer.Option(help="用户名")],
    password: Annotated[
        str,
        typer.Option(
            prompt="新密码",
            hide_input=True,
            confirmation_prompt=True,
            help="新密码（不填则提示输入）",
        ),
    ],
) -> None:
    """Set a person's password (a reset); every session and token of theirs ends."""
    from haochaping.accounts import service as account_service

    async def run(db):
        return await account_service.set_password(db=db, username=username, password=password)

    try:
        user = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已重设用户 {user.username} 的密码，其所有登录已失效")


@user_app.command("deactivate", help="停用人员账号：不能再登录，其所有登录和令牌随即失效")
def user_deactivate(username: Annotated[str, typer.Option(help="用户名")]) -> None:
    """Deactivate a person: no more sign-ins, and every session and token ends at once."""
    from haochaping.accounts import service as account_service

    async def run(db):
        return await account_service.deactivate_user(db=db, username=username)

    try:
        user = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已停用用户 {user.username}，其所有登录已失效")


@client_app.command("revoke", help="吊销 API 客户端的密钥（停用该客户端）")
def client_revoke(
    name: Annotated[str | None, typer.Option(help="客户端名称")] = None,
    id: Annotated[int | None, typer.Option("--id", help="客户端编号")] = None,
) -> None:
    """Revoke an API client's key (deactivate the client)."""
    from haochaping.accounts import service as account_service
    from haochaping.core.auth import CLIENT_CACHE_SECONDS, ClientCache
    from haochaping.core.ratelimit import build_counter

    if (name is None) == (id is None):
        typer.secho("错误：请指定 --name 或 --id 之一", fg="red", err=True)
        raise typer.Exit(2)
    settings = _migrated_settings()

    async def run():
        client = await _with_session(
            settings, lambda db: account_service.revoke_client(db=db, client_id=id, name=name)
        )
        counter = build_counter(settings.redis_url)
        try:
            await ClientCache(counter).revoked()  # servers sharing Redis drop it at once
        finally:
            if hasattr(counter, "close"):
                await counter.close()
        return client

    try:
        client = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已停用客户端 {client.name}（密钥前缀 {client.key_prefix}）")
    if not settings.redis_url:
        typer.echo(f"未配置 Redis：运行中的服务最迟 {int(CLIENT_CACHE_SECONDS)} 秒后拒绝该密钥")


# --- calendar: the working-day calendar (法定节假日与调休) -----------------------------------

calendar_app = _typer("工作日历：法定节假日与调休上班")
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("import", help="导入一年的放假日和调休上班日；该年随即视为已知")
def calendar_import(
    file: Annotated[Path, typer.Argument(help="CSV 文件，列为 date,type,name")],
    year: Annotated[int, typer.Option(help="国务院办公厅通知所属的年份")],
    source: Annotated[
        str | None, typer.Option(help="来源，例如 国办发明电〔2026〕x号（默认：文件名）")
    ] = None,
    by: Annotated[str, typer.Option(help="导入人，记入审计记录")] = "cli",
) -> None:
    """Import a year's holidays and make-up working days; the year then counts as known."""
    from haochaping.core import calendar as work_calendar
    from haochaping.core.errors import Invalid

    if not file.is_file():
        typer.secho(f"错误：找不到文件 {file}", fg="red", err=True)
        raise typer.Exit(2)

    async def run(db):
        text = work_calendar.decode_csv(file.read_bytes())
        return await work_calendar.import_year(
            db=db, year=year, csv_text=text, source=source or file.name, actor=by
        )

    try:
        result = _in_session(run)
    except Invalid as exc:
        typer.secho(f"错误（{exc.code}）：{exc.message}", fg="red", err=True)
        for detail in exc.details:
            typer.secho(f"  {detail['message']}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"已导入 {result.year} 年工作日历：放假 {result.holidays} 天，"
        f"调休上班 {result.workdays} 天（来源：{result.source}）"
    )
    if result.replaced:
        typer.echo(f"已替换该年原有的 {result.replaced} 条记录")


@calendar_app.command("show", help="列出某年的放假日和调休上班日")
def calendar_show(
    year: Annotated[int | None, typer.Option(help="年份（默认：今年）")] = None,
) -> None:
    """List a year's days off and make-up working days."""
    from haochaping.core import calendar as work_calendar

    shown = year or work_calendar.local_today().year
    cal = _in_session(work_calendar.load_calendar)
    source = cal.year_source(shown)
    if source is None:
        typer.secho(work_calendar.missing_warning(cal, [shown]), fg="yellow")
    else:
        typer.echo(f"{shown} 年工作日历（来源：{source}）")
    days = cal.special_days(shown)
    for day in days:
        typer.echo(work_calendar.describe_day(day))
    if not days:
        typer.echo("（没有节假日或调休记录）")


@calendar_app.command("status", help="去年至明年各年的工作日历是否已知")
def calendar_status() -> None:
    """Which years from last year to next year are known, and which are missing."""
    from haochaping.core import calendar as work_calendar

    cal = _in_session(work_calendar.load_calendar)
    years = work_calendar.status_years(work_calendar.local_today())
    for y in years:
        source = cal.year_source(y)
        if source is None:
            typer.secho(f"{y} 年  缺失  （期限按周一至周五推算，未经核实）", fg="yellow")
        else:
            typer.echo(f"{y} 年  已知  {source}")
    warning = work_calendar.missing_warning(cal, years)
    if warning:
        typer.secho(warning, fg="yellow")


@app.command(help="运行期限任务和通知投递（可与其他 worker 及 serve 同时运行）")
def worker(
    interval: Annotated[float, typer.Option(help="两次运行间隔的秒数")] = 60.0,
    once: Annotated[bool, typer.Option(help="只运行一次，然后退出")] = False,
    force: Annotated[
        bool,
        typer.Option(help="与 --once 同用：即使检测在 10 分钟内运行过，也立即运行批量检测"),
    ] = False,
) -> None:
    """Run the deadline job, the detectors' batch checks, ledger sealing, outbox delivery and
    reporting up to the parent (safe beside other workers and `serve`); `--once` prints what
    each part did."""
    import logging

    from haochaping import scheduler
    from haochaping.app import create_app, shutdown, startup

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if force and not once:
        typer.secho("错误：--force 只能与 --once 一起使用", fg="red", err=True)
        raise typer.Exit(2)
    settings = _migrated_settings()

    async def run() -> None:
        application = create_app(settings)
        await startup(application)
        try:
            if once:
                done = await scheduler.run_pass(
                    application.state, force_integrity=force, send_upstream=True
                )
                typer.echo(str(done))
            else:
                await _with_upstream_sender(
                    application.state, scheduler.run_forever(application.state, interval)
                )
        finally:
            await shutdown(application)

    asyncio.run(run())


async def _with_upstream_sender(state, work) -> None:
    """Run `work` with the reporting-up sender beside it when a parent is configured."""
    from haochaping.exchange import jobs as exchange_jobs

    sender = None
    if getattr(state, "upstream", None) is not None:
        sender = asyncio.create_task(exchange_jobs.run_forever(state))
    try:
        await work
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


# --- ledger: the tamper-evident record of ratings (评价存证账本) ------------------------------

ledger_app = _typer("评价存证账本：SM3 哈希链的封存与校验")
app.add_typer(ledger_app, name="ledger")


def _in_sessionmaker(fn):
    """Run `fn(sessionmaker)` on the (migrated) database."""
    return asyncio.run(_with_sessionmaker(_migrated_settings(), fn))


async def _with_sessionmaker(settings: Settings, fn):
    from haochaping.db.session import make_engine, make_sessionmaker

    engine = make_engine(settings)
    try:
        return await fn(make_sessionmaker(engine))
    finally:
        await engine.dispose()


@ledger_app.command("seal", help="立即把新评价封存进账本（可与运行中的 worker 同时运行）")
def ledger_seal(
    block_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="每个区块的评价条数")
    ] = 10_000,
    quiet: QUIET = False,
) -> None:
    """Seal every new rating into the ledger now (safe beside running workers)."""
    from haochaping.ledger import jobs as ledger_jobs

    async def seal(maker):
        with _progress(quiet) as progress:
            total = await ledger_jobs.pending_count(maker) if progress else 0

            def sealed(report: ledger_jobs.SealReport) -> None:
                if progress:
                    progress("封存评价", report.ratings, max(total, report.ratings))

            return await ledger_jobs.seal_pending(maker, block_size=block_size, on_block=sealed)

    typer.echo(str(_in_sessionmaker(seal)))


@ledger_app.command(
    "verify", help="重新计算每条已封存的评价和每个区块；发现篡改或插入时逐条列出，并以状态 1 退出"
)
def ledger_verify(
    anchor: Annotated[
        list[str] | None, typer.Option(help="要比对的已公布根哈希，格式 区块高度:根哈希（可重复）")
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            min=0, help="一条评价从取号到提交最多需要的秒数；封存早于此的区块范围视为封闭"
        ),
    ] = 300.0,
    archive: Annotated[
        Path | None,
        typer.Option(help="归档目录（归档导出命令写出的）：已移出数据库的评价按归档内容校验"),
    ] = None,
    quiet: QUIET = False,
) -> None:
    """Recompute every sealed rating and block; exit 1 naming what was altered or inserted."""
    from datetime import timedelta

    from haochaping.archive import service as archive_service
    from haochaping.ledger import jobs as ledger_jobs

    try:
        anchors = ledger_jobs.parse_anchors(anchor or [])
    except ValueError as exc:
        typer.secho(f"错误：{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    archived = None
    if archive is not None:
        try:
            archived = archive_service.ArchivedRatings(archive)
        except archive_service.ArchiveError as exc:
            _fail(exc)

    async def check(maker):
        with _progress(quiet) as progress:

            def checked(done: int, total: int) -> None:
                if progress:
                    progress("校验区块", done, total)

            return await ledger_jobs.verify(
                maker,
                anchors=anchors,
                grace=timedelta(seconds=grace),
                on_block=checked,
                archived=archived,
            )

    report = _in_sessionmaker(check)
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


# --- archive: ratings by month into Parquet files (评价归档) -------------------------------------

archive_app = _typer("评价归档：按受理月份导出为 Parquet 文件、读回、与账本核对")
app.add_typer(archive_app, name="archive")


@archive_app.command(
    "export", help="把某月之前收到的全部评价按月写成 Parquet 文件和清单（数据库中的评价不变）"
)
def archive_export(
    out: Annotated[Path, typer.Option(help="写入的目录（不能已有归档清单）")],
    before: Annotated[
        str | None,
        typer.Option(
            help="月份 YYYY-MM：导出此月之前（北京时间）收到的评价；不填则按政策的评价在线保留期限"
        ),
    ] = None,
) -> None:
    """Write the ratings received before a month (by default: past the policies' retention)
    into monthly Parquet files and a manifest."""
    from haochaping.archive import service as archive_service
    from haochaping.policies import service as policy_service

    async def run(db):
        month = (
            archive_service.parse_month(before)
            if before is not None
            else await archive_service.retention_before(db=db, today=policy_service.today_local())
        )
        return await archive_service.export(db=db, before=month, out=out)

    try:
        manifest = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    for item in manifest.files:
        typer.echo(f"{item.file}\t{item.ratings} 条（已封存 {item.sealed}）\tSM3 {item.sm3}")
    typer.echo(
        f"已归档 {manifest.ratings} 条评价，{len(manifest.files)} 个文件，"
        f"清单 {out / archive_service.MANIFEST}"
    )


@archive_app.command("read", help="读回一个归档文件：每条评价一行 JSON（个人信息保持密文）")
def archive_read(
    file: Annotated[Path, typer.Argument(help="归档文件（Parquet 格式）")],
    limit: Annotated[int | None, typer.Option(min=1, help="最多输出的条数")] = None,
) -> None:
    """Print an archive file's records as JSON lines."""
    import json

    from haochaping.archive import service as archive_service

    try:
        for k, record in enumerate(archive_service.read_records(file)):
            if limit is not None and k >= limit:
                break
            record["ledger_hash"] = record["ledger_hash"].hex() if record["ledger_hash"] else None
            typer.echo(json.dumps(record, ensure_ascii=False, default=str))
    except archive_service.ArchiveError as exc:
        _fail(exc)


@archive_app.command(
    "verify",
    help="按清单核对归档文件（SM3 摘要、条数），并逐条与账本封存的哈希比对；不符时以状态 1 退出",
)
def archive_verify(
    path: Annotated[Path, typer.Argument(help="归档目录")],
) -> None:
    """Check an archive folder against its manifest and the ledger."""
    from haochaping.archive import service as archive_service

    async def run(db):
        return await archive_service.verify_archive(db=db, folder=path)

    try:
        result = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    for problem in result.problems:
        typer.echo(problem)
    verdict = "校验通过" if result.ok else f"发现 {len(result.problems)} 处不符"
    typer.echo(
        f"归档校验：文件 {result.files} 个，评价 {result.ratings} 条，"
        f"其中已封存 {result.sealed} 条与账本比对；结论：{verdict}"
    )
    if not result.ok:
        raise typer.Exit(1)


@archive_app.command(
    "detach",
    help="把已归档且校验通过的月份从在线评价表分离（仅限按月分区的数据库；该月分区表保留，可再挂回）",
)
def archive_detach(
    month: Annotated[str, typer.Option(help="月份 YYYY-MM（北京时间的受理月份）")],
    archive: Annotated[Path, typer.Option(help="含该月文件的归档目录（先经 archive export）")],
) -> None:
    """Detach an archived month's partition of the ratings (audited, actor "cli")."""
    from haochaping.archive import service as archive_service

    async def run(db):
        return await archive_service.detach_month(
            db=db, folder=archive, month=archive_service.parse_month(month), actor="cli"
        )

    try:
        count = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已分离 {month} 的评价分区（{count} 条评价不再在线查询，分区表仍在数据库中）")


@archive_app.command("attach", help="把已分离的月份分区挂回在线评价表（仅限按月分区的数据库）")
def archive_attach(
    month: Annotated[str, typer.Option(help="月份 YYYY-MM")],
) -> None:
    """Re-attach a detached month's partition (audited, actor "cli")."""
    from haochaping.archive import service as archive_service

    async def run(db):
        return await archive_service.attach_month(
            db=db, month=archive_service.parse_month(month), actor="cli"
        )

    try:
        count = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已挂回 {month} 的评价分区（{count} 条评价）")


report_app = _typer("月度通报：生成、存档与导出")
app.add_typer(report_app, name="report")


@report_app.command(
    "monthly", help="生成（或取出已存档的）某地区某月的通报，写出电子表格文件；已存档的不会被替换"
)
def report_monthly(
    region: Annotated[str, typer.Option(help="行政区划代码，如 330100")],
    month: Annotated[str, typer.Option(help="月份，如 2026-11")],
    out: Annotated[Path, typer.Option(help="写出的电子表格文件")],
    quiet: QUIET = False,
) -> None:
    """Write a region's report of a month once (archived with its SM3 digest), and copy the
    archived workbook to `--out`."""
    from haochaping.reports import service as report_service

    settings = _migrated_settings()

    async def run(db):
        with _progress(quiet) as progress:
            report, created = await report_service.write_monthly(
                db=db,
                region_code=region,
                month=month,
                upload_dir=Path(settings.upload_dir),
                created_by="cli",
                progress=progress,
            )
        data = await report_service.read_workbook(
            report=report, upload_dir=Path(settings.upload_dir)
        )
        return report, created, data

    try:
        report, created, data = asyncio.run(_with_session(settings, run))
    except Exception as exc:
        _fail(exc)
        return
    out.write_bytes(data)
    state = "新生成并存档" if created else "已存档（未替换），导出存档文件"
    sections = report.content.get("sections", [])
    typer.echo(f"{report.content.get('title', '')}：{state}")
    typer.echo(f"  编号 {report.id}，生成于 {report.content.get('generated_at')}")
    typer.echo(f"  {len(sections)} 个部分，{report.size} 字节，SM3 {report.sm3}")
    typer.echo(f"  已写出 {out}")


# --- topics: the comments' terms (社情民意) ------------------------------------------------------

topics_app = _typer("评价文本分析（社情民意）：分词词典与词频统计")
app.add_typer(topics_app, name="topics")
topics_word_app = _typer("分词词典中管理员添加的服务词语")
topics_app.add_typer(topics_word_app, name="word")


@topics_word_app.command("add", help="向分词词典添加一个服务词语（此后新分词的评价生效）")
def topics_word_add(
    word: Annotated[str, typer.Argument(help="词语：2–32 个汉字、字母或数字")],
    note: Annotated[str | None, typer.Option(help="备注（来源、含义）")] = None,
) -> None:
    """Add a service term to the segmentation dictionary (audited, actor "cli")."""
    from haochaping.topics import service as topic_service

    async def run(db):
        return await topic_service.add_word(
            db=db, word=word, note=note, actor="cli", actor_role=None
        )

    try:
        row = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(
        f"已添加词语“{row.word}”：此后分词的评价按新词统计；已统计的评价不变，"
        "如需按新词典重新统计请运行 haochaping topics rebuild"
    )


@topics_word_app.command("list", help="列出管理员添加的服务词语")
def topics_word_list() -> None:
    """The administrators' words, oldest first."""
    from haochaping.topics import service as topic_service

    async def run(db):
        return await topic_service.list_words(db=db)

    for row in _in_session(run):
        typer.echo(f"{row.word}\t{row.created_by}\t{row.created_at:%Y-%m-%d}\t{row.note or ''}")


@topics_app.command("refresh", help="立即对新评价分词并计入词频（可与运行中的 worker 同时运行）")
def topics_refresh() -> None:
    """Segment and count the new comments now."""
    from haochaping.topics import jobs as topic_jobs

    typer.echo(str(_in_sessionmaker(topic_jobs.refresh)))


@topics_app.command("rebuild", help="清空词频并按当前词典对全部评价重新分词")
def topics_rebuild() -> None:
    """Empty the counts and segment every comment again with today's dictionary."""
    from haochaping.topics import jobs as topic_jobs

    typer.echo(str(_in_sessionmaker(topic_jobs.rebuild)))


def main() -> None:
    app()


# --- device: the window evaluators (评价器) ---------------------------------------------------

device_app = _typer("窗口评价器（pad）：配对、列表与停用")
app.add_typer(device_app, name="device")


@device_app.command("pair", help="为窗口生成一次性配对码（10 分钟内有效）及配对页二维码")
def device_pair(
    window: Annotated[str, typer.Option(help="窗口的机构编码")],
    name: Annotated[str | None, typer.Option(help="评价器名称（默认按窗口名称编号）")] = None,
) -> None:
    """A one-time pairing code for a new pad of the window, with the QR of the pairing page."""
    import segno

    from haochaping.pads import service as pad_service

    settings = _migrated_settings()

    async def run(db):
        return await pad_service.create_pairing(
            db=db, secret=settings.secret_key, window_code=window, name=name
        )

    try:
        made = asyncio.run(_with_session(settings, run))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    url = pad_service.pairing_url(settings.base_url, made["code"])
    typer.echo(f"窗口 {made['window_code']} 的评价器“{made['name']}”（编号 {made['device_id']}）")
    typer.echo(
        f"配对码：{made['code']}（{made['expires_at']:%Y-%m-%d %H:%M} UTC 前有效，只能使用一次）"
    )
    typer.echo(f"在评价器的浏览器中打开 {url} 输入配对码，或扫描下面的二维码：")
    segno.make(url, error="m").terminal(compact=True)


@device_app.command("list", help="列出评价器及其状态")
def device_list(
    window: Annotated[str | None, typer.Option(help="只列出此窗口的评价器")] = None,
) -> None:
    """Every pad (or a window's), newest first."""
    from haochaping.core.timeutil import utcnow
    from haochaping.pads import queries as pad_queries
    from haochaping.pads import service as pad_service

    async def run(db):
        return await pad_queries.pads(db=db, actor=pad_service.CLI, window_code=window)

    now = utcnow()
    for row in _in_session(run):
        state = pad_service.state_of(row, now)
        seen = f"{row.last_seen_at:%Y-%m-%d %H:%M}" if row.last_seen_at else "-"
        typer.echo(f"{row.id}\t{row.window_code}\t{row.name}\t{state.label}\t最近在线 {seen}")


@device_app.command("revoke", help="停用评价器：其凭据立即失效")
def device_revoke(
    id: Annotated[int, typer.Option("--id", help="评价器编号（device list 中的第一列）")],
) -> None:
    """Revoke a pad (audited, actor "cli")."""
    from haochaping.pads import service as pad_service

    async def run(db):
        return await pad_service.revoke(db=db, actor=pad_service.CLI, device_id=id)

    try:
        device = _in_session(run)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已停用评价器“{device.name}”（编号 {device.id}）")


# --- exchange: reporting up to the parent instance (上报) --------------------------------------

exchange_app = _typer("向上级平台上报：对账、补报与按日导出")
app.add_typer(exchange_app, name="exchange")
DAY = Annotated[str | None, typer.Option("--day", help="北京时间的日期（评价时间），如 2026-12-06")]


def _day_of(text: str) -> date_type:
    try:
        return date_type.fromisoformat(text)
    except ValueError:
        typer.secho(f"错误：日期 {text!r} 须为 YYYY-MM-DD", fg="red", err=True)
        raise typer.Exit(2) from None


@exchange_app.command(
    "reconcile",
    help="逐日比对本平台与上级平台的评价条数和 SM3 摘要；有差异时列出日期并以状态 1 退出",
)
def exchange_reconcile(
    day: DAY = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="不指定 --day 时比对最近几天")] = 7,
    repair: Annotated[
        bool, typer.Option(help="把有差异的日期重新上报（补报，上级不重复存储）")
    ] = False,
) -> None:
    """Compare each day's count and digest with the parent; exit 1 naming the days that
    differ (after `--repair`, 0 when the repair made them agree)."""
    from datetime import timedelta

    from haochaping.core.notify import DeliveryError
    from haochaping.core.timeutil import utcnow
    from haochaping.exchange import jobs as exchange_jobs
    from haochaping.integrations.upstream import HttpUpstream

    settings = _migrated_settings()
    if not settings.upstream_url:
        typer.secho("错误：未配置上级平台（HAOCHAPING_UPSTREAM_URL）", fg="red", err=True)
        raise typer.Exit(2)
    config = exchange_jobs.UpstreamConfig.from_settings(settings)

    async def run(maker):
        upstream = HttpUpstream(
            url=settings.upstream_url,
            key=settings.upstream_key,
            timeout=settings.upstream_timeout_seconds,
        )
        try:
            if day is not None:
                wanted = [_day_of(day)]
            else:
                today = exchange_jobs.local_day(utcnow())
                async with maker() as db:
                    wanted = await exchange_jobs.days_with_ratings(
                        db, since=today - timedelta(days=days - 1), until=today
                    )
            found = await exchange_jobs.compare(maker, upstream, wanted)
            differ = [c for c in found if not c.agrees]
            if repair and differ:
                for c in differ:
                    sent = await exchange_jobs.resend_day(maker, upstream, config, c.day)
                    typer.echo(f"{c.day} 补报：{sent}")
                found = await exchange_jobs.compare(maker, upstream, [c.day for c in differ])
            return found
        finally:
            await upstream.close()

    try:
        found = _in_sessionmaker(run)
    except DeliveryError as exc:
        typer.secho(f"错误：{exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    bad = [c for c in found if not c.agrees]
    for c in found:
        mark = "一致" if c.agrees else "不一致"
        typer.echo(
            f"{c.day}  本平台 {c.ours.count} 条 {c.ours.digest[:16]}  "
            f"上级 {c.parent_count} 条 {c.parent_digest[:16]}  {mark}"
        )
    if bad:
        typer.secho("不一致的日期：" + "、".join(str(c.day) for c in bad), fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(found)} 天全部一致")


@exchange_app.command(
    "send", help="持续向上级平台报送评价和工单结果，直到被停止（serve 会在单独的进程中自动运行）"
)
def exchange_send(
    parent_pid: Annotated[
        int | None, typer.Option(hidden=True, help="启动本进程的 serve 进程号：其退出时一并退出")
    ] = None,
) -> None:
    """Run the reporting-up sender alone, at the configured lower priority, until SIGTERM
    or Ctrl-C (or, started by `serve`, until that process is gone)."""
    import logging
    import signal

    from haochaping.app import create_app, shutdown, startup
    from haochaping.exchange import jobs as exchange_jobs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    if not settings.upstream_url:
        typer.secho("错误：未配置上级平台（HAOCHAPING_UPSTREAM_URL）", fg="red", err=True)
        raise typer.Exit(2)
    os.nice(settings.upstream_sender_nice)  # first: everything after runs at it
    settings = _migrated_settings()

    async def orphaned() -> None:
        while os.getppid() == parent_pid:
            await asyncio.sleep(1.0)

    async def run() -> None:
        application = create_app(settings.model_copy(update={"upstream_sender_inline": False}))
        await startup(application)
        sender = asyncio.create_task(exchange_jobs.run_forever(application.state))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sender.cancel)
        watch = asyncio.create_task(orphaned()) if parent_pid else None
        if watch is not None:
            watch.add_done_callback(lambda _: sender.cancel())
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await sender  # cancelled: the stream's lease is released on the way out
        finally:
            if watch is not None:
                watch.cancel()
            await shutdown(application)

    asyncio.run(run())


@exchange_app.command("export", help="把一天的评价按上报格式写成文件（每行一条记录）")
def exchange_export(
    day: Annotated[str, typer.Option("--day", help="北京时间的日期（评价时间）")],
    out: Annotated[Path, typer.Option("--out", help="输出文件")],
) -> None:
    """Write a day's ratings in the exchange format as JSON lines."""
    from haochaping.exchange import jobs as exchange_jobs

    settings = _migrated_settings()
    config = exchange_jobs.UpstreamConfig.from_settings(settings)
    wanted = _day_of(day)

    async def run(maker):
        return await exchange_jobs.export_day(maker, config, wanted, out)

    count = _in_sessionmaker(run)
    typer.echo(f"已写出 {count} 条评价（{wanted}）到 {out}")
