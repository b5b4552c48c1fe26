"""The command line: serve, migrate, demo, user create, client create."""

from __future__ import annotations

import asyncio
import os
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
) -> None:
    """Migrate, then serve the API and the pages (127.0.0.1:8000 by default)."""
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

        asyncio.run(loader.load_if_empty(settings, cases=demo_cases))
    typer.echo(f"对外地址（评价链接、二维码）：{settings.base_url}")
    uvicorn.run(
        "haochaping.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
    )


@app.command("demo", help="加载演示省份（可重复运行：再次运行不做任何改动）")
def demo_cmd(
    cases: Annotated[int, typer.Option(help="办件数")] = 200_000,
    seed: Annotated[int, typer.Option(help="随机数种子")] = 2026,
) -> None:
    """Load the demo province (idempotent: a second run changes nothing)."""
    from haochaping.demo import loader

    _refuse_demo_in_production(_settings())
    settings = _migrated_settings()
    summary = asyncio.run(loader.load(settings, cases=cases, seed=seed))
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
) -> None:
    """Run the deadline job and outbox delivery (safe beside other workers and `serve`)."""
    import logging

    from haochaping import scheduler
    from haochaping.app import create_app, shutdown, startup

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _migrated_settings()

    async def run() -> None:
        application = create_app(settings)
        await startup(application)
        try:
            if once:
                report, delivery = await scheduler.run_pass(application.state)
                typer.echo(f"{report}；投递：{delivery}")
            else:
                await scheduler.run_forever(application.state, interval)
        finally:
            await shutdown(application)

    asyncio.run(run())


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
) -> None:
    """Seal every new rating into the ledger now (safe beside running workers)."""
    from haochaping.ledger import jobs as ledger_jobs

    report = _in_sessionmaker(lambda maker: ledger_jobs.seal_pending(maker, block_size=block_size))
    typer.echo(str(report))


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
) -> None:
    """Recompute every sealed rating and block; exit 1 naming what was altered or inserted."""
    from datetime import timedelta

    from haochaping.ledger import jobs as ledger_jobs

    try:
        anchors = ledger_jobs.parse_anchors(anchor or [])
    except ValueError as exc:
        typer.secho(f"错误：{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    report = _in_sessionmaker(
        lambda maker: ledger_jobs.verify(maker, anchors=anchors, grace=timedelta(seconds=grace))
    )
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()
