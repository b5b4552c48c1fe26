"""The command line: serve, migrate, demo, user create, client create."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from haochaping.config import Settings

app = typer.Typer(help="好差评 Haochaping：政务服务“好差评”平台", no_args_is_help=True,
                  pretty_exceptions_enable=False)
user_app = typer.Typer(help="人员账号")
client_app = typer.Typer(help="API 客户端（渠道、业务系统）")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")


def _settings() -> Settings:
    return Settings()


async def _with_session(fn):
    from haochaping.db.session import make_engine, make_sessionmaker

    engine = make_engine(_settings())
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


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from haochaping.db import migrate as db_migrate

    settings = _settings()
    db_migrate.upgrade(settings)
    typer.echo(f"数据库已是最新结构：{settings.database_url.split('@')[-1]}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="load the demo province first if the DB is empty")]
    = False,
) -> None:
    """Migrate, then serve the API and the pages (127.0.0.1:8000 by default)."""
    import uvicorn

    from haochaping.db import migrate as db_migrate

    settings = _settings()
    db_migrate.upgrade(settings)
    if demo:
        from haochaping.demo import loader

        asyncio.run(loader.load_if_empty(settings))
    uvicorn.run("haochaping.asgi:app", host=host or settings.host, port=port or settings.port,
                workers=workers, log_level="info", proxy_headers=False)


@app.command("demo")
def demo_cmd(
    cases: Annotated[int, typer.Option(help="number of service cases")] = 200_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 2026,
) -> None:
    """Load the demo province (idempotent: a second run changes nothing)."""
    from haochaping.db import migrate as db_migrate
    from haochaping.demo import loader

    settings = _settings()
    db_migrate.upgrade(settings)
    summary = asyncio.run(loader.load(settings, cases=cases, seed=seed))
    typer.echo(summary)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="admin, office, unit, staff, assessor")] = "admin",
    org: Annotated[str | None, typer.Option(help="organisation code (default: the root)")]
    = None,
    email: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a person account."""
    from sqlalchemy import select

    from haochaping.accounts import service as account_service
    from haochaping.orgs.models import Org

    async def run(db):
        org_code = org
        if org_code is None:
            root = (await db.execute(select(Org).where(Org.parent_id.is_(None))
                                     .order_by(Org.id))).scalars().first()
            if root is None:
                org_code = await _bootstrap_root(db)
            else:
                org_code = root.code
        return await account_service.create_user(db=db, username=username, password=password,
                                                 role=role, org_code=org_code, email=email)

    try:
        user = asyncio.run(_with_session(run))
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
    db.add(Org(code="ROOT", name="政务服务管理办公室", kind="department", parent_id=None,
               region_code="000000", path="/ROOT/"))
    await db.flush()
    typer.echo("已创建根机构 ROOT（政务服务管理办公室）：本系统只有这一个根机构，"
               "未指定上级机构（parent_code）新建的机构都归入其下，由根机构的系统管理员管理")
    return "ROOT"


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Option()],
    org: Annotated[str, typer.Option(help="organisation code: the key's subtree")],
    channels: Annotated[str, typer.Option(help="comma-separated, e.g. pad,qrcode")],
) -> None:
    """Create an API client and print its key once."""
    from haochaping.accounts import service as account_service

    async def run(db):
        return await account_service.create_client(
            db=db, name=name, org_code=org,
            channels=[c.strip() for c in channels.split(",") if c.strip()])

    try:
        client, key = asyncio.run(_with_session(run))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"已创建客户端 {client.name}，渠道：{','.join(client.channels)}")
    typer.echo("API 密钥（只显示这一次，请妥善保存）：")
    typer.echo(key)


# --- calendar: the working-day calendar (法定节假日与调休) -----------------------------------

calendar_app = typer.Typer(help="工作日历：法定节假日与调休上班")
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("import")
def calendar_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns date,type,name")],
    year: Annotated[int, typer.Option(help="the year of the State Council's notice")],
    source: Annotated[
        str | None, typer.Option(help="e.g. 国办发明电〔2026〕x号 (default: the file name)")
    ] = None,
    by: Annotated[str, typer.Option(help="who imports, for the record")] = "cli",
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
            db=db, year=year, csv_text=text, source=source or file.name, actor=by)

    try:
        result = asyncio.run(_with_session(run))
    except Invalid as exc:
        typer.secho(f"错误（{exc.code}）：{exc.message}", fg="red", err=True)
        for detail in exc.details:
            typer.secho(f"  {detail['message']}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"已导入 {result.year} 年工作日历：放假 {result.holidays} 天，"
               f"调休上班 {result.workdays} 天（来源：{result.source}）")
    if result.replaced:
        typer.echo(f"已替换该年原有的 {result.replaced} 条记录")


@calendar_app.command("show")
def calendar_show(
    year: Annotated[int | None, typer.Option(help="default: this year")] = None,
) -> None:
    """List a year's days off and make-up working days."""
    from haochaping.core import calendar as work_calendar

    shown = year or work_calendar.local_today().year
    cal = asyncio.run(_with_session(work_calendar.load_calendar))
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


@calendar_app.command("status")
def calendar_status() -> None:
    """Which years from last year to next year are known, and which are missing."""
    from haochaping.core import calendar as work_calendar

    cal = asyncio.run(_with_session(work_calendar.load_calendar))
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


@app.command()
def worker(
    interval: Annotated[float, typer.Option(help="seconds between passes")] = 60.0,
    once: Annotated[bool, typer.Option(help="run one pass and exit")] = False,
) -> None:
    """Run the deadline job and outbox delivery (safe beside other workers and `serve`)."""
    import logging

    from haochaping.app import create_app, shutdown, startup
    from haochaping.db import migrate as db_migrate
    from haochaping.workorders import runner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    db_migrate.upgrade(settings)

    async def run() -> None:
        application = create_app(settings)
        await startup(application)
        try:
            if once:
                report, delivery = await runner.run_pass(application.state)
                typer.echo(f"{report}；投递：{delivery}")
            else:
                await runner.run_forever(application.state, interval)
        finally:
            await shutdown(application)

    asyncio.run(run())


# --- ledger: the tamper-evident record of ratings (评价存证账本) ------------------------------

ledger_app = typer.Typer(help="评价存证账本：SM3 哈希链的封存与校验")
app.add_typer(ledger_app, name="ledger")


async def _with_sessionmaker(fn):
    from haochaping.db.session import make_engine, make_sessionmaker

    engine = make_engine(_settings())
    try:
        return await fn(make_sessionmaker(engine))
    finally:
        await engine.dispose()


@ledger_app.command("seal")
def ledger_seal(
    block_size: Annotated[int, typer.Option(min=1, max=100_000, help="ratings per block")]
    = 10_000,
) -> None:
    """Seal every new rating into the ledger now (safe beside running workers)."""
    from haochaping.ledger import jobs as ledger_jobs

    report = asyncio.run(_with_sessionmaker(
        lambda maker: ledger_jobs.seal_pending(maker, block_size=block_size)))
    typer.echo(str(report))


@ledger_app.command("verify")
def ledger_verify(
    anchor: Annotated[list[str] | None, typer.Option(
        help="a published root to compare, HEIGHT:ROOT (repeatable)")] = None,
    grace: Annotated[float, typer.Option(
        min=0, help="seconds a rating may take to commit; older blocks' ranges are closed")]
    = 300.0,
) -> None:
    """Recompute every sealed rating and block; exit 1 naming what was altered or inserted."""
    from datetime import timedelta

    from haochaping.ledger import jobs as ledger_jobs

    try:
        anchors = ledger_jobs.parse_anchors(anchor or [])
    except ValueError as exc:
        typer.secho(f"错误：{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    report = asyncio.run(_with_sessionmaker(
        lambda maker: ledger_jobs.verify(maker, anchors=anchors,
                                         grace=timedelta(seconds=grace))))
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()
