"""The command line: serve, migrate, demo, user create, client create."""

from __future__ import annotations

import asyncio
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
    """On an empty database, a root organisation for the first administrator."""
    from haochaping.orgs.models import Org, Region

    db.add(Region(code="000000", name="全国", parent_code=None, tier=1, path="/000000/"))
    await db.flush()
    db.add(Org(code="ROOT", name="政务服务管理办公室", kind="department", parent_id=None,
               region_code="000000", path="/ROOT/"))
    await db.flush()
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


def main() -> None:
    app()
