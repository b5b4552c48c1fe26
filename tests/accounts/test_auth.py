"""Who may call: OAuth2 password sign-in to a bearer token, API keys, and every refusal."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from haochaping.accounts import service as account_service
from haochaping.accounts.models import ApiClient, User
from haochaping.core.auth import TOKEN_SALT
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.security import hash_api_key, signer
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, assert_error, bearer_headers, key_headers

GET_ROUTES = [
    "/api/v1/regions",
    "/api/v1/orgs",
    "/api/v1/orgs/HALL-A",
    "/api/v1/staff",
    "/api/v1/staff/S-A1",
    "/api/v1/items",
    "/api/v1/items/ITEM-A1",
    "/api/v1/evaluations",
    "/api/v1/cases/HZ-1",
]


async def user_row(db, username: str) -> User:
    return (await db.execute(select(User).where(User.username == username))).scalar_one()


async def test_password_form_gives_a_bearer_token_that_works(client, db, world):
    r = await client.post(
        "/api/v1/auth/token", data={"username": world.users["unit_a"], "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.json() == {"username": "unit_a", "role": "unit", "org_path": "/OFFICE/HALL-A/"}
    # The token opens the GET routes, limited to the user's subtree.
    orgs = await client.get("/api/v1/orgs", headers=headers)
    assert orgs.status_code == 200
    assert {o["code"] for o in orgs.json()["items"]} == {"HALL-A", "W-A1", "W-A2"}
    for path in [
        "/api/v1/regions",
        "/api/v1/staff",
        "/api/v1/items",
        "/api/v1/evaluations",
        "/api/v1/orgs/W-A1",
        "/api/v1/items/ITEM-A1",
        "/api/v1/staff/S-A1",
    ]:
        assert (await client.get(path, headers=headers)).status_code == 200, path


async def test_wrong_password_is_401_and_counted(client, db, world):
    r = await client.post(
        "/api/v1/auth/token", data={"username": world.users["admin"], "password": "wrong-password"}
    )
    err = assert_error(r, 401, "invalid_credentials")
    assert err["message"] == "用户名或密码错误"
    assert (await user_row(db, "admin")).failed_logins == 1
    await bearer_headers(client, world.users["admin"])
    await db.refresh(await user_row(db, "admin"))
    assert (await user_row(db, "admin")).failed_logins == 0  # a good sign-in resets it


async def test_unknown_users_get_the_same_401(client, world):
    for username in ("nobody", "admin\x00", "ADMIN", "admin "):
        r = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert assert_error(r, 401, "invalid_credentials")["message"] == "用户名或密码错误"
    r = await client.post("/api/v1/auth/token", data={"username": "", "password": PASSWORD})
    assert_error(r, 422, "invalid_input")


async def test_a_token_request_without_the_form_is_422(client, world):
    assert_error(
        await client.post("/api/v1/auth/token", json={"username": "admin"}), 422, "invalid_input"
    )
    assert_error(
        await client.post("/api/v1/auth/token", data={"username": "admin"}), 422, "invalid_input"
    )


async def test_a_deactivated_user_can_neither_sign_in_nor_use_an_old_token(client, db, world):
    headers = await bearer_headers(client, world.users["office"])
    user = await user_row(db, "office")
    user.active = False
    await db.commit()
    assert_error(
        await client.post("/api/v1/auth/token", data={"username": "office", "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    assert_error(await client.get("/api/v1/orgs", headers=headers), 401, "invalid_token")


async def test_no_credentials_is_401_on_every_route(client, world):
    for route in GET_ROUTES:
        assert_error(await client.get(route), 401, "unauthenticated")


async def test_no_credentials_is_401_on_every_post(client, world):
    for route in [
        "/api/v1/regions",
        "/api/v1/orgs",
        "/api/v1/staff",
        "/api/v1/items",
        "/api/v1/cases",
        "/api/v1/evaluations",
        "/api/v1/evaluations/batch",
        "/api/v1/cases/HZ-1/invitations",
    ]:
        assert_error(await client.post(route, json={}), 401, "unauthenticated")


async def test_invalid_bearer_tokens_are_401(client, world):
    for authorization in [
        "Bearer not-a-token",
        "Bearer ",
        "bearer abc.def.ghi",
        "Bearer " + signer("another-secret-" + "y" * 40, TOKEN_SALT).dumps({"uid": 1}),
        "Bearer " + signer(TEST_SECRET, "invitation").dumps({"uid": 1}),  # other purpose
        "Bearer " + signer(TEST_SECRET, TOKEN_SALT).dumps({"uid": 987654}),  # no such user
    ]:
        r = await client.get("/api/v1/orgs", headers={"Authorization": authorization})
        assert_error(r, 401, "invalid_token")
    for other_scheme in ("Basic YWRtaW46cGFzcw==", "Token abc", "Bearer"):
        r = await client.get("/api/v1/orgs", headers={"Authorization": other_scheme})
        assert_error(r, 401, "unauthenticated")


async def test_expired_tokens_are_401(client, db, settings, world):
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - settings.token_ttl_seconds - 60

    uid = (await user_row(db, "admin")).id
    old = URLSafeTimedSerializer(TEST_SECRET, salt=TOKEN_SALT, signer=Past).dumps({"uid": uid})
    fresh = signer(TEST_SECRET, TOKEN_SALT).dumps({"uid": uid})
    assert (
        await client.get("/api/v1/orgs", headers={"Authorization": f"Bearer {fresh}"})
    ).status_code == 200
    assert_error(
        await client.get("/api/v1/orgs", headers={"Authorization": f"Bearer {old}"}),
        401,
        "invalid_token",
    )


async def test_invalid_api_keys_are_401(client, world):
    for key in ["wrong", "hcp_" + "x" * 43, "密钥", world.keys["all"] + " x"]:
        r = await client.get("/api/v1/orgs", headers={"X-Api-Key": key.encode()})
        assert_error(r, 401, "invalid_api_key")
    assert_error(await client.get("/api/v1/orgs", headers={"X-Api-Key": " "}), 401)


async def test_a_deactivated_client_key_is_401(client, db, world):
    row = (await db.execute(select(ApiClient).where(ApiClient.name == "hall_b"))).scalar_one()
    row.active = False
    await db.commit()
    assert_error(
        await client.get("/api/v1/orgs", headers=key_headers(world, "hall_b")),
        401,
        "invalid_api_key",
    )
    assert (await client.get("/api/v1/orgs", headers=key_headers(world))).status_code == 200


async def test_api_keys_are_stored_hashed_and_scope_their_client(client, db, world):
    key = world.keys["hall_a_pad"]
    row = (await db.execute(select(ApiClient).where(ApiClient.name == "hall_a_pad"))).scalar_one()
    assert row.key_hash == hash_api_key(key) and key not in (row.key_hash, row.key_prefix)
    assert row.channels == ["pad", "qrcode"]
    r = await client.get("/api/v1/orgs", headers={"X-Api-Key": key})
    assert {o["code"] for o in r.json()["items"]} == {"HALL-A", "W-A1", "W-A2"}


async def test_the_me_route_is_for_people_not_keys(client, world):
    assert_error(
        await client.get("/api/v1/auth/me", headers=key_headers(world)), 403, "user_required"
    )


async def test_account_creation_refuses_bad_input(db, world):
    with pytest.raises(Invalid) as exc:
        await account_service.create_user(
            db=db, username="x1", password="short", role="unit", org_code="HALL-A"
        )
    assert exc.value.code == "weak_password"
    with pytest.raises(Invalid) as exc:
        await account_service.create_user(
            db=db, username="x2", password=PASSWORD, role="king", org_code="HALL-A"
        )
    assert exc.value.code == "unknown_role"
    with pytest.raises(NotFound):
        await account_service.create_user(
            db=db, username="x3", password=PASSWORD, role="unit", org_code="NOPE"
        )
    with pytest.raises(Conflict) as exc:
        await account_service.create_user(
            db=db, username="admin", password=PASSWORD, role="unit", org_code="HALL-A"
        )
    assert exc.value.code == "duplicate_username"


async def test_client_creation_refuses_unknown_channels(db, world):
    for channels in (["pad", "fax"], [], ["system"]):
        with pytest.raises(Invalid) as exc:
            await account_service.create_client(
                db=db, name="c1", org_code="HALL-A", channels=channels
            )
        assert exc.value.code == "unknown_channel" and exc.value.status_code == 422


async def test_client_names_are_unique(db, world):
    with pytest.raises(Conflict):
        await account_service.create_client(db=db, name="all", org_code="HALL-A", channels=["pad"])
