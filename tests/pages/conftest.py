"""Browser-test harness: the app served by a real uvicorn on 127.0.0.1, Debian's chromium
driven by Playwright, and reference data committed under a unique suffix.

The live server commits through its own engine, so nothing it writes is rolled back: every
code the tests create carries the suffix of `live_world`, and assertions only look at it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.app import create_app
from haochaping.config import Settings
from haochaping.db.session import make_sessionmaker
from tests import factories

AXE = Path(__file__).parent / "assets" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def api(self) -> httpx.AsyncClient:
        """An HTTP client for the live server's JSON API."""
        return httpx.AsyncClient(base_url=self.url, timeout=30)


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """create_app(settings) with its normal lifespan, served by uvicorn in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Every browser test comes from 127.0.0.1: the per-IP caps are tested over HTTP instead.
    live_settings = settings.model_copy(
        update={
            "base_url": url,
            "rate_citizen_per_minute": 1000,
            "rate_login_per_minute": 1000,
            "rate_public_per_minute": 1000,
            "rate_comment_per_hour": 1000,
        }
    )
    config = uvicorn.Config(create_app(live_settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="live-server"
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url=url, settings=live_settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app on the suite's test database, for the whole run."""
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="session")
def committing(engine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commits are real (for data the live server must see)."""
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
async def live_world(committing) -> factories.World:
    """A committed world whose codes, users and keys carry a suffix unique to this run."""
    async with committing() as db:
        world = await factories.build_world(db, suffix=f"-{uuid.uuid4().hex[:8]}")
        await db.commit()
    return world


async def live_case(committing, world: factories.World, **overrides) -> dict:
    """A completed case of the live world, committed."""
    async with committing() as db:
        return await factories.make_case(db, world, **overrides)


async def live_link(live: LiveServer, world: factories.World, case_no: str) -> str:
    """A rating link from the live server's API, as a window system would ask for it."""
    async with live.api() as api:
        r = await api.post(
            f"/api/v1/cases/{case_no}/invitations", headers={"X-Api-Key": world.keys["hall_a_pad"]}
        )
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith(live.url + "/r/"), url
    return urlsplit(url).path


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    """One headless chromium for the whole run (never `playwright install`)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def new_page(browser, live_server):
    """Open pages (phone or desktop) against the live server; closed after the test.

    CSP is enforced unless `bypass_csp` (only to inject axe-core); script errors and CSP
    refusals are collected in `page.errors` (4xx pages are not: tests assert statuses)."""
    contexts = []

    async def open_page(screen: dict, *, bypass_csp: bool = False):
        context = await browser.new_context(
            base_url=live_server.url, locale="zh-CN", bypass_csp=bypass_csp, **screen
        )
        contexts.append(context)
        page = await context.new_page()
        page.errors = []
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and page.errors.append(m.text)
            ),
        )
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield open_page
    for context in contexts:
        await context.close()


async def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document)")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def loaded_width(img, timeout: float = 10.0) -> int:
    """The image's natural width once the browser has finished loading it (0 if it failed).

    A visible <img> is only its box: the bytes may still be on their way, and reading
    naturalWidth at once then gives 0 (seen in CI under load)."""
    deadline = time.monotonic() + timeout
    while True:
        width = await img.evaluate("img => img.complete ? img.naturalWidth : -1")
        if width != -1 or time.monotonic() > deadline:
            return width
        await asyncio.sleep(0.1)


async def row_on_some_page(page, selector: str, pages: int = 20):
    """The row `selector` of a paginated console list, following its "下一页" links: other
    tests' live servers commit rows of the same lists (oldest first, 20 a page), which can
    push a test's own row off the first page."""
    for _ in range(pages):
        row = page.locator(selector)
        if await row.count():
            return row
        following = page.get_by_role("link", name="下一页")
        if not await following.count():
            break
        before = page.url
        await following.first.click()
        await page.wait_for_url(lambda url, before=before: url != before)  # hx-push-url
    return page.locator(selector)
