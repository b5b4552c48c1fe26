"""Who is calling: API-key clients and signed-in people, each limited to an org subtree."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import ApiClient, User
from haochaping.core.db import DbSession
from haochaping.core.errors import Forbidden, Unauthenticated
from haochaping.core.security import hash_api_key, load_signed
from haochaping.orgs.models import Org

TOKEN_SALT = "api-token"
CLIENT_CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a client (channel/system) or a user, with the org subtree it may touch."""

    kind: str  # "client" | "user"
    id: int
    name: str
    org_id: int
    org_path: str
    role: str | None = None
    channels: frozenset[str] | None = None

    @property
    def is_client(self) -> bool:
        return self.kind == "client"

    def covers(self, org_path: str) -> bool:
        """True when an organisation (by its path) lies inside the caller's subtree."""
        return org_path.startswith(self.org_path)

    def require(self, org_path: str) -> None:
        """Raise 403 when an organisation lies outside the caller's subtree."""
        if not self.covers(org_path):
            raise Forbidden("超出本账号的机构权限范围", code="out_of_scope")

    def require_role(self, *roles: str) -> None:
        """Raise 403 unless the caller is a user with one of the roles (clients pass)."""
        if self.kind == "user" and self.role not in roles:
            raise Forbidden("当前角色无权执行此操作", code="role_forbidden")


async def _client_from_key(request: Request, db: AsyncSession, key: str) -> Principal:
    digest = hash_api_key(key)
    cache: dict[str, tuple[float, Principal | None]] = request.app.state.client_cache
    hit = cache.get(digest)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        principal = hit[1]
    else:
        row = (
            await db.execute(
                select(ApiClient, Org.path)
                .join(Org, Org.id == ApiClient.org_id)
                .where(ApiClient.key_hash == digest)
            )
        ).first()
        principal = None
        if row is not None and row[0].active:
            client, path = row
            principal = Principal(
                kind="client",
                id=client.id,
                name=client.name,
                org_id=client.org_id,
                org_path=path,
                channels=frozenset(client.channels or ()),
            )
        if len(cache) > 10_000:
            cache.clear()
        cache[digest] = (now + CLIENT_CACHE_SECONDS, principal)
    if principal is None:
        raise Unauthenticated("API 密钥无效或已停用", code="invalid_api_key")
    return principal


async def load_user_principal(db: AsyncSession, user_id: int) -> Principal | None:
    """The principal of an active user, or None."""
    row = (
        await db.execute(
            select(User, Org.path).join(Org, Org.id == User.org_id).where(User.id == user_id)
        )
    ).first()
    if row is None or not row[0].active:
        return None
    user, path = row
    return Principal(
        kind="user", id=user.id, name=user.username, org_id=user.org_id, org_path=path,
        role=user.role,
    )


async def get_principal(request: Request, db: DbSession) -> Principal:
    """Authenticate by `X-Api-Key`, a bearer token, or the console's session cookie."""
    key = request.headers.get("x-api-key")
    if key:
        return await _client_from_key(request, db, key)
    settings = request.app.state.settings
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        data = load_signed(
            settings.secret_key, TOKEN_SALT, auth[7:].strip(), settings.token_ttl_seconds
        )
        principal = await load_user_principal(db, int(data["uid"])) if data else None
        if principal is None:
            raise Unauthenticated("登录已失效，请重新登录", code="invalid_token")
        return principal
    uid = request.session.get("uid") if "session" in request.scope else None
    if uid:
        principal = await load_user_principal(db, int(uid))
        if principal is not None:
            return principal
    raise Unauthenticated()


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_user(principal: CurrentPrincipal) -> Principal:
    """A signed-in person (not an API client)."""
    if principal.is_client:
        raise Forbidden("此操作需要人员账号登录", code="user_required")
    return principal


CurrentUser = Annotated[Principal, Depends(get_user)]
