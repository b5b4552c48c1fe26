"""Abuse limits on the pages: sign-in lock-out and per-IP caps, the citizen links, the public
pages; a refusal is a Chinese page with status 429 and Retry-After."""

from __future__ import annotations

import httpx
import pytest

from haochaping.app import create_app, startup
from tests.factories import PASSWORD
from tests.pages.helpers import csrf_of, sign_in

TOO_MANY = "请求过于频繁，请稍后再试"


@pytest.fixture
async def limited(settings, engine, sessionmaker):
    """A client of an app whose limits are set by the test (settings are frozen: a copy)."""
    clients = []

    async def build(**limits) -> httpx.AsyncClient:
        app = create_app(settings.model_copy(update=limits))
        await startup(app, engine=engine, sessionmaker=sessionmaker)
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4444))
        c = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(c)
        return c

    yield build
    for c in clients:
        await c.aclose()


async def test_sign_in_locks_a_username_after_repeated_failures(app, client, world):
    user = world.users["unit_a"]
    for _ in range(5):
        r = await sign_in(client, user, password="wrong-password")
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = await sign_in(client, user)  # even the right password, while locked
    assert r.status_code == 429
    assert "登录失败次数过多，已暂时锁定" in r.text and 'role="alert"' in r.text
    assert r.headers["retry-after"] == "900"
    assert (await client.get("/console/evaluations")).status_code == 303
    r = await sign_in(client, world.users["unit_b"])
    assert r.status_code == 303
    # The lock holds only where the failures came from: the person signs in from their desk.
    transport = httpx.ASGITransport(app=app, client=("192.0.2.44", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as desk:
        r = await sign_in(desk, user)
        assert r.status_code == 303 and r.headers["location"] == "/console/evaluations"
        assert (await desk.get("/console/evaluations")).status_code == 200


async def test_a_successful_sign_in_forgets_earlier_failures(client, world):
    user = world.users["office"]
    for _ in range(4):
        assert (await sign_in(client, user, password="wrong-password")).status_code == 401
    assert (await sign_in(client, user)).status_code == 303
    for _ in range(4):
        assert (await sign_in(client, user, password="wrong-password")).status_code == 401
    assert (await sign_in(client, user)).status_code == 303


async def test_sign_in_attempts_are_capped_per_ip(limited, world):
    c = await limited(rate_login_per_minute=3)
    form = await c.get("/login")
    data = {"csrf_token": csrf_of(form.text), "password": "x"}
    codes = [
        (await c.post("/login", data={**data, "username": f"nobody{i}"})).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 401]
    r = await c.post(
        "/login", data={**data, "username": world.users["admin"], "password": PASSWORD}
    )
    assert r.status_code == 429 and TOO_MANY in r.text
    assert r.headers["content-type"].startswith("text/html") and r.headers["retry-after"] == "60"
    assert (await c.get("/login")).status_code == 200  # reading the form is not limited


async def test_citizen_links_are_capped_per_ip(limited):
    c = await limited(rate_citizen_per_minute=2)
    assert (await c.get("/p/forged")).status_code == 404
    assert (await c.get("/r/forged")).status_code == 404
    for path in ("/p/forged", "/r/forged", "/r/forged/thanks"):
        r = await c.get(path)
        assert r.status_code == 429, path
        assert TOO_MANY in r.text and "请 60 秒后再试" in r.text
        assert r.headers["retry-after"] == "60"
    r = await c.post("/p/forged/verdict", data={"verdict": "satisfied"})
    assert r.status_code == 429
    assert (await c.get("/")).status_code == 200  # another bucket


async def test_public_pages_are_capped_per_ip(limited):
    c = await limited(rate_public_per_minute=2)
    assert [(await c.get("/")).status_code for _ in range(2)] == [200, 200]
    r = await c.get("/")
    assert r.status_code == 429 and TOO_MANY in r.text and '<html lang="zh-CN"' in r.text
    assert (await c.get("/p/forged")).status_code == 404  # another bucket


async def test_a_zero_limit_switches_the_cap_off(limited):
    c = await limited(rate_public_per_minute=0)
    assert {(await c.get("/")).status_code for _ in range(5)} == {200}
