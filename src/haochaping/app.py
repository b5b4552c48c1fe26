"""The application factory: `create_app(settings)` mounts the API and the pages."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from haochaping import __version__, scheduler
from haochaping.accounts import api as accounts_api
from haochaping.accounts.principals import AccountPrincipals
from haochaping.analytics import api as analytics_api
from haochaping.appeals import api as appeals_api
from haochaping.appeals.register import RegisterCache, make_register_hook
from haochaping.appraisal import api as appraisal_api
from haochaping.cases import api as cases_api
from haochaping.config import Settings
from haochaping.console import inspection_pages
from haochaping.console import layout as console_layout
from haochaping.console import pages as console_pages
from haochaping.console.todo import TodoCache
from haochaping.core import apidocs, errors, handlers, openapi, templating
from haochaping.core.auth import ClientCache
from haochaping.core.lean import LeanRoutes
from haochaping.core.middleware import BodySizeLimit, NoCookies
from haochaping.core.ratelimit import LoginGuard, build_counter
from haochaping.db.session import engine_keys, make_engine, make_sessionmaker
from haochaping.evaluations import api as evaluations_api
from haochaping.evaluations import hooks, sms_api, tags
from haochaping.evaluations.choices import CHANNEL_LABELS, LEVEL_LABELS
from haochaping.evaluations.group import GroupWriter
from haochaping.evaluations.service import IntakeRules
from haochaping.exchange import api as exchange_api
from haochaping.exchange import jobs as exchange_jobs
from haochaping.integrations import build_notifier
from haochaping.integrations.upstream import HttpUpstream
from haochaping.integrity import api as integrity_api
from haochaping.integrity import detectors as integrity_detectors
from haochaping.ledger import api as ledger_api
from haochaping.ledger import pages as ledger_pages
from haochaping.orgs import api as orgs_api
from haochaping.pads import api as pads_api
from haochaping.pads import pages as pads_pages
from haochaping.policies import api as policies_api
from haochaping.policies.service import PolicyCache
from haochaping.portal import pages as portal_pages
from haochaping.portal import results_pages
from haochaping.reports import api as reports_api
from haochaping.topics import api as topics_api
from haochaping.topics import jobs as topic_jobs
from haochaping.workorders import api as workorders_api
from haochaping.workorders import webhook_api
from haochaping.workorders.intake import make_on_stored
from haochaping.workorders.loop import CalendarCache

STATIC = Path(__file__).parent / "static"


async def load_rules(app: FastAPI) -> IntakeRules:
    """Seed the national reason tags if missing and build the intake rules."""
    settings: Settings = app.state.settings
    async with app.state.sessionmaker() as db:
        await tags.seed(db)
        await db.commit()
        sets = await tags.load(db)
    return IntakeRules(
        tagset_version=tags.NATIONAL_VERSION,
        tags=sets[tags.NATIONAL_VERSION],
        keys=app.state.keys,
        window_days=settings.evaluation_window_days,
        good_levels=frozenset(settings.good_levels),
    )


async def startup(app: FastAPI, *, engine=None, sessionmaker=None) -> None:
    """Open the database and load what every request needs (lifespan, or tests directly)."""
    app.state.engine = engine or make_engine(app.state.settings)
    app.state.owns_engine = engine is None
    app.state.sessionmaker = sessionmaker or make_sessionmaker(app.state.engine)
    # The engine's data keys (made from the settings by make_engine): whatever hashes or
    # encrypts outside the ORM takes them from here, so it matches what the columns store.
    app.state.keys = engine_keys(app.state.engine)
    app.state.policy_cache = PolicyCache()
    app.state.topic_lexicons = topic_jobs.Lexicons()  # the segmentation dictionary, built once
    app.state.todo_cache = TodoCache()  # the console navigation's to-do badges
    app.state.calendar_cache = CalendarCache()
    app.state.notifier = build_notifier(app.state.settings)
    app.state.rate_counter = build_counter(app.state.settings.redis_url)
    app.state.register_cache = RegisterCache(app.state.rate_counter)
    app.state.login_guard = LoginGuard.from_settings(app.state.rate_counter, app.state.settings)
    app.state.client_cache = ClientCache(app.state.rate_counter)
    settings = app.state.settings
    # Reporting up (issue 14): the parent's exchange routes, when this instance has one.
    app.state.upstream = (
        HttpUpstream(
            url=settings.upstream_url,
            key=settings.upstream_key,
            timeout=settings.upstream_timeout_seconds,
        )
        if settings.upstream_url
        else None
    )
    rules = await load_rules(app)
    # Hooks on stored ratings, in the intake transaction: the work order of a bad rating,
    # holding ratings of registered malicious raters, the intake checks of the detectors.
    on_stored = [make_on_stored(app.state), make_register_hook(app.state)]
    if app.state.settings.integrity_intake_checks:
        on_stored.append(integrity_detectors.make_intake_hook(app.state))
    app.state.rules = dataclasses.replace(
        rules,
        on_stored=hooks.compose(*on_stored),
        window_of=app.state.policy_cache.window_days,
        stages_of=app.state.policy_cache.stages,
    )
    settings = app.state.settings
    app.state.intake_group = (
        GroupWriter(
            sessionmaker=app.state.sessionmaker,
            rules=lambda: app.state.rules,
            max_size=settings.intake_group_max,
            wait_seconds=settings.intake_group_wait_ms / 1000,
            writers=1 if settings.is_sqlite else settings.intake_group_writers,
        )
        if settings.intake_group_commit
        else None
    )


async def shutdown(app: FastAPI) -> None:
    """Release what startup opened."""
    counter = getattr(app.state, "rate_counter", None)
    close = getattr(counter, "close", None)
    if close is not None:
        await close()
    group = getattr(app.state, "intake_group", None)
    if group is not None:
        await group.close()
    upstream = getattr(app.state, "upstream", None)
    if upstream is not None:
        await upstream.close()
    guard = getattr(app.state, "integrity_guard", None)
    if guard is not None:
        await guard.refusals.close()
    if getattr(app.state, "owns_engine", False):
        await app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app for the given settings (tests pass their own)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await startup(app)
        job = None
        if settings.job_interval_seconds > 0:
            # The embedded default runs the deadline job in-process; production may set the
            # interval to 0 and run `haochaping worker` instead (safe either way).
            job = asyncio.create_task(
                scheduler.run_forever(app.state, settings.job_interval_seconds)
            )
        # Reporting up runs in its own loop, also when the periodic job runs elsewhere: a
        # backlog of millions drains without holding up a pass (the stream's lease keeps one
        # sender at a time across processes).
        sender = None
        if app.state.upstream is not None and settings.upstream_sender_inline:
            sender = asyncio.create_task(exchange_jobs.run_forever(app.state))
        # What startup built lives as long as the process: out of the collector's sight, a
        # full collection walks only what requests allocate. Without it every ~10th request
        # that allocates a lot (a kept ranking of 2,850 rows) paid a ~125 ms full collection
        # over the ~240,000 objects of the modules and caches (docs/benchmarks.md, issue 10).
        gc.freeze()
        yield
        for task in (job, sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await shutdown(app)

    app = FastAPI(
        title="好差评 Haochaping",
        version=__version__,
        description="政务服务“好差评”平台接口：办件、评价、差评整改、统计上报。",
        lifespan=lifespan,
        # /docs and /redoc are served from the package (core/apidocs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Core authenticates and renders without importing a domain: the accounts domain loads
    # principals, and the evaluations' labels are handed to the templates.
    app.state.principals = AccountPrincipals()
    templating.add_globals(LEVEL_LABELS=LEVEL_LABELS, CHANNEL_LABELS=CHANNEL_LABELS)
    # The console's error pages keep the navigation of the person signed in.
    app.state.error_contexts = {"console/error.html": console_layout.error_context}
    handlers.install(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="hcp_session",
        same_site="lax",
        https_only=settings.session_cookie_secure,
        max_age=12 * 3600,
    )
    # Outside the sessions: the public results pages may be cached, so they set no cookie.
    app.add_middleware(NoCookies, prefixes=(results_pages.PREFIX,))
    # Inside the body-size limit and the proxy headers (both still apply), outside the rest.
    app.add_middleware(LeanRoutes, routes=evaluations_api.LEAN_ROUTES, enabled=settings.intake_lean)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.attachment_max_bytes,
        upload_suffix=("/attachments", inspection_pages.VISITS),
    )
    for module in (
        accounts_api,
        orgs_api,
        cases_api,
        evaluations_api,
        workorders_api,
        policies_api,
        appeals_api,
        analytics_api,
        appraisal_api,
        ledger_api,
        reports_api,
        console_pages,
        portal_pages,
        ledger_pages,
        integrity_api,
        exchange_api,
        webhook_api,
        topics_api,
        sms_api,
        pads_api,
        pads_pages,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get(
        "/healthz",
        tags=["health"],
        responses=errors.declare(503, codes={503: "database_unavailable"}),
    )
    async def healthz(request: Request):
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            handlers.log.warning("health check: %s", handlers.describe_db_error(exc))
            return JSONResponse(
                {
                    "error": {
                        "code": handlers.UNAVAILABLE_CODE,
                        "message": "数据库不可用",
                        "details": [],
                    }
                },
                status_code=503,
                headers={"Retry-After": str(handlers.RETRY_AFTER_SECONDS)},
            )
        return {"status": "ok", "version": __version__}

    if settings.proxy_networks:
        # Outermost: every route, the rate limits and the detectors see the client behind a
        # trusted proxy (the right-most address of X-Forwarded-For not itself trusted); from
        # any other peer the header is ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.proxy_networks)
    openapi.install(app)
    apidocs.install(app)
    return app
