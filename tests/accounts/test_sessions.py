"""Sessions end when they should: sign-out, a password change and deactivation end every
cookie and token of the person at once; cookie-authenticated JSON changes need the CSRF
header; a revoked API key is refused at once, in every process sharing Redis."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from haochaping.accounts import service as account_service
from haochaping.accounts.models import ApiClient, User
from haochaping.app import create_app, shutdown, startup
from haochaping.core.models import AuditEvent
from tests.factories import PASSWORD, assert_error, bearer_headers, key_headers
from tests.pages.helpers import csrf_of, sign_in
from tests.workorders.conftest import rate_badly

REDIS_URL = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NEW_PASSWORD = "a-new-pass-word-456"


@pytest.fixture
async def browsers(app) -> AsyncIterator:
    """Clients of the app, each with its own cookie jar (a browser, or a thief's copy)."""
    opened: list[httpx.AsyncClient] = []

    def new(cookies: dict[str, str] | None = None, ip: str = "192.0.2.10"):
        transport = httpx.ASGITransport(app=app, client=(ip, 5000 + len(opened)))
        c = httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)
        opened.append(c)
        return c

    yield new
    for c in opened:
        await c.aclose()


async def signed_in(browsers, username: str):
    """A browser signed in to the console, and a copy of its session cookie elsewhere."""
    b = browsers()
    r = await sign_in(b, username)
    assert r.status_code == 303, r.text
    return b, browsers({"hcp_session": b.cookies["hcp_session"]}, ip="198.51.100.66")


async def session_version(db, username: str) -> int:
    return (
        await db.execute(select(User.session_version).where(User.username == username))
    ).scalar_one()


async def audit_count(db, action: str, target: tuple[str, int] | None = None) -> int:
    """Audit rows of an act (on one target): other tests commit such rows too."""
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    if target is not None:
        query = query.where(AuditEvent.target_type == target[0], AuditEvent.target_id == target[1])
    return (await db.execute(query)).scalar_one()


async def assert_signed_out(copy) -> None:
    page = await copy.get("/console/evaluations")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert_error(await copy.get("/api/v1/auth/me"), 401, "unauthenticated")


async def test_a_copied_cookie_stops_working_when_its_owner_signs_out(browsers, db, world):
    owner, copy = await signed_in(browsers, world.users["unit_a"])
    assert (await copy.get("/console/evaluations")).status_code == 200
    assert (await copy.get("/api/v1/auth/me")).json()["username"] == "unit_a"
    token = await bearer_headers(owner, world.users["unit_a"])
    csrf = csrf_of((await owner.get("/console/evaluations")).text)
    r = await owner.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert await session_version(db, "unit_a") == 1
    await assert_signed_out(copy)
    await assert_signed_out(owner)
    # The bearer tokens of the person end with the sign-out too.
    assert_error(await owner.get("/api/v1/auth/me", headers=token), 401, "invalid_token")
    # Signing in again starts a session that works; the old copy stays dead.
    again = browsers()
    assert (await sign_in(again, world.users["unit_a"])).status_code == 303
    assert (await again.get("/console/evaluations")).status_code == 200
    await assert_signed_out(copy)
    # Other people's sessions are untouched.
    other, _ = await signed_in(browsers, world.users["unit_b"])
    assert (await other.get("/console/evaluations")).status_code == 200


async def test_signing_out_through_the_api_ends_tokens_and_console_sessions(browsers, db, world):
    _owner, copy = await signed_in(browsers, world.users["office"])
    api = browsers()
    token = await bearer_headers(api, world.users["office"])
    second = await bearer_headers(api, world.users["office"])
    r = await api.post("/api/v1/auth/logout", headers=token)
    assert r.status_code == 204
    for headers in (token, second):
        assert_error(await api.get("/api/v1/orgs", headers=headers), 401, "invalid_token")
    await assert_signed_out(copy)


async def test_changing_the_password_ends_every_other_session(browsers, db, world):
    _owner, copy = await signed_in(browsers, world.users["unit_a"])
    api = browsers()
    token = await bearer_headers(api, world.users["unit_a"])
    r = await api.post(
        "/api/v1/auth/password",
        headers=token,
        data={"old_password": "not-the-password", "new_password": NEW_PASSWORD},
    )
    assert_error(r, 422, "wrong_password")
    r = await api.post(
        "/api/v1/auth/password",
        headers=token,
        data={"old_password": PASSWORD, "new_password": "short"},
    )
    assert_error(r, 422, "weak_password")
    assert await session_version(db, "unit_a") == 0  # refusals change nothing
    assert (await api.get("/api/v1/auth/me", headers=token)).status_code == 200

    r = await api.post(
        "/api/v1/auth/password",
        headers=token,
        data={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert_error(await api.get("/api/v1/auth/me", headers=token), 401, "invalid_token")
    assert (await api.get("/api/v1/auth/me", headers=fresh)).status_code == 200
    await assert_signed_out(copy)
    r = await api.post(
        "/api/v1/auth/token", data={"username": world.users["unit_a"], "password": PASSWORD}
    )
    assert_error(r, 401, "invalid_credentials")
    await bearer_headers(api, world.users["unit_a"], NEW_PASSWORD)


async def test_the_console_session_that_changes_the_password_stays_signed_in(browsers, db, world):
    owner, copy = await signed_in(browsers, world.users["unit_b"])
    csrf = csrf_of((await owner.get("/console/evaluations")).text)
    r = await owner.post(
        "/api/v1/auth/password",
        headers={"X-CSRF-Token": csrf},
        data={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert (await owner.get("/console/evaluations")).status_code == 200
    await assert_signed_out(copy)


async def test_deactivating_a_person_ends_their_sessions(browsers, db, world):
    owner, _copy = await signed_in(browsers, world.users["assessor"])
    token = await bearer_headers(owner, world.users["assessor"])
    before = await audit_count(db, "deactivate_user")
    await account_service.deactivate_user(db=db, username="assessor")
    await db.commit()
    await assert_signed_out(owner)
    assert_error(await owner.get("/api/v1/auth/me", headers=token), 401, "invalid_token")
    assert await audit_count(db, "deactivate_user") == before + 1


# --- CSRF on JSON routes reached with the console cookie -----------------------------------


async def test_a_cross_site_post_with_only_the_cookie_is_refused(browsers, client, db, world):
    _ev, order = await rate_badly(client, db, world)
    owner, _copy = await signed_in(browsers, world.users["unit_a"])
    page = (await owner.get("/console/evaluations")).text
    csrf = csrf_of(page)
    # The console's htmx calls carry the token in a header, from the body tag.
    assert f'hx-headers=\'{{"X-CSRF-Token": "{csrf}"}}\'' in page
    path = f"/api/v1/work-orders/{order.id}/reveal-phone"
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        r = await owner.post(path, headers=headers)
        assert_error(r, 403, "csrf_failed")
    assert_error(await owner.post("/api/v1/auth/logout"), 403, "csrf_failed")
    assert await audit_count(db, "reveal_phone", ("work_order", order.id)) == 0
    assert await session_version(db, "unit_a") == 0
    # GETs with the cookie are unaffected, and the page's own token opens the POST.
    assert (await owner.get(f"/api/v1/work-orders/{order.id}")).status_code == 200
    r = await owner.post(path, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["phone"]
    assert await audit_count(db, "reveal_phone", ("work_order", order.id)) == 1


async def test_bearer_and_key_callers_need_no_csrf_token(client, db, world):
    _ev, order = await rate_badly(client, db, world)
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await client.post(f"/api/v1/work-orders/{order.id}/reveal-phone", headers=unit)
    assert r.status_code == 200
    r = await client.post("/api/v1/evaluations", headers=key_headers(world, "hall_a_pad"), json={})
    assert r.status_code == 422  # authenticated, then refused for its body


# --- revoking API keys ----------------------------------------------------------------------


async def client_id(db, name: str) -> int:
    return (await db.execute(select(ApiClient.id).where(ApiClient.name == name))).scalar_one()


async def test_a_revoked_key_is_refused_at_once(client, db, world):
    key = key_headers(world, "hall_b")
    assert (await client.get("/api/v1/orgs", headers=key)).status_code == 200  # now cached
    cid = await client_id(db, "hall_b")
    unit = await bearer_headers(client, world.users["unit_a"])
    assert_error(
        await client.post(f"/api/v1/clients/{cid}/revoke", headers=unit), 403, "role_forbidden"
    )
    assert (await client.get("/api/v1/orgs", headers=key)).status_code == 200
    admin = await bearer_headers(client, world.users["admin"])
    assert_error(
        await client.post("/api/v1/clients/987654/revoke", headers=admin), 404, "client_not_found"
    )
    assert_error(await client.post(f"/api/v1/clients/{2**63}/revoke", headers=admin), 422)
    r = await client.post(f"/api/v1/clients/{cid}/revoke", headers=admin)
    assert r.status_code == 200 and r.json() == {"id": cid, "name": "hall_b", "active": False}
    assert_error(await client.get("/api/v1/orgs", headers=key), 401, "invalid_api_key")
    assert (await client.get("/api/v1/orgs", headers=key_headers(world))).status_code == 200
    (audit,) = (
        await db.execute(
            select(AuditEvent).where(
                AuditEvent.action == "revoke_client", AuditEvent.target_id == cid
            )
        )
    ).scalars()
    assert (audit.actor, audit.target_id, audit.detail["name"]) == ("admin", cid, "hall_b")


async def test_a_key_revoked_in_one_process_is_refused_by_another(
    settings, engine, sessionmaker, db, world
):
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    apps = [create_app(shared), create_app(shared)]
    for a in apps:
        await startup(a, engine=engine, sessionmaker=sessionmaker)
    one, two = (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://testserver")
        for a in apps
    )
    try:
        key = key_headers(world, "hall_a_pad")
        for c in (one, two):  # both processes have the client cached
            assert (await c.get("/api/v1/orgs", headers=key)).status_code == 200
        admin = await bearer_headers(one, world.users["admin"])
        cid = await client_id(db, "hall_a_pad")
        assert (await one.post(f"/api/v1/clients/{cid}/revoke", headers=admin)).status_code == 200
        for c in (two, one):
            assert_error(await c.get("/api/v1/orgs", headers=key), 401, "invalid_api_key")
        # The other keys, cached before the revocation, are read again and still work.
        assert (await two.get("/api/v1/orgs", headers=key_headers(world))).status_code == 200
    finally:
        for c in (one, two):
            await c.aclose()
        for a in apps:
            await shutdown(a)


async def test_without_an_answer_from_redis_no_cached_key_is_trusted(
    settings, engine, sessionmaker, db, world
):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    app = create_app(settings.model_copy(update={"redis_url": dead}))
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            key = key_headers(world, "hall_b")
            assert (await c.get("/api/v1/orgs", headers=key)).status_code == 200
            await account_service.revoke_client(db=db, name="hall_b")
            await db.commit()  # from elsewhere: this process hears nothing of it
            assert_error(await c.get("/api/v1/orgs", headers=key), 401, "invalid_api_key")
    finally:
        await shutdown(app)
