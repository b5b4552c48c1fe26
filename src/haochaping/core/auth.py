"""Who is calling: API-key clients and signed-in people, each limited to an org subtree."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.db import DbSession
from haochaping.core.errors import Forbidden, Unauthenticated
from haochaping.core.ratelimit import Counter, CounterUnavailable
from haochaping.core.roles import HANDLERS, INVITERS, MANAGERS, Role
from haochaping.core.security import hash_api_key, load_signed, signer
from haochaping.core.templating import CsrfFailed

TOKEN_SALT = "api-token"
CLIENT_CACHE_SECONDS = 30.0
CLIENT_VERSION_KEY = "api-client-version"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a client (channel/system) or a user, with the org subtree it may touch."""

    kind: str  # "client" | "user"
    id: int
    name: str
    org_id: int
    org_path: str
    role: Role | None = None
    channels: frozenset[str] | None = None
    # A person who reads a whole region's figures (an assessor, 监督查评): the materialised
    # path of their organisation's region. Their statistics cover the organisations located
    # in it or below (`reads`), wherever those sit in the organisation tree; everything else
    # they may touch (and every write) stays limited to their subtree (`covers`).
    region_path: str | None = None

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

    def reads(self, org_path: str, region_path: str | None) -> bool:
        """True when the caller may read an organisation's figures: one in their subtree, or,
        for a reader of a region (an assessor), one located in that region or below (by the
        path of the organisation's region)."""
        if self.region_path is None:
            return self.covers(org_path)
        return region_path is not None and region_path.startswith(self.region_path)

    def require_read(self, org_path: str, region_path: str | None) -> None:
        """Raise 403 when the caller may not read an organisation's figures (`reads`)."""
        if not self.reads(org_path, region_path):
            raise Forbidden("超出本账号的统计范围", code="out_of_scope")

    def reads_region(self, region_path: str) -> bool:
        """True when a reader of a region (an assessor) may read this region's figures: it
        is theirs or lies below it. Others read regions through their subtree only."""
        return self.region_path is not None and region_path.startswith(self.region_path)

    @property
    def at_root(self) -> bool:
        """True when the caller's organisation is the installation's root (no parent)."""
        return self.org_path.count("/") == 2

    def has_role(self, *roles: Role) -> bool:
        """True when the caller is a person holding one of the roles."""
        return self.kind == "user" and self.role in roles


class RoleForbidden(Forbidden):
    """403 `role_forbidden`: the caller's role may not do this."""

    def __init__(self, message: str = "当前角色无权执行此操作") -> None:
        super().__init__(message, code="role_forbidden")


class PrincipalSource(Protocol):
    """Where principals come from. The accounts domain provides it (`app.state.principals`,
    set by `create_app`), so core authenticates without importing any domain."""

    async def client(self, db: AsyncSession, key_hash: str) -> Principal | None:
        """The active API client with this key digest, or None."""
        ...

    async def user(
        self, db: AsyncSession, user_id: int, session_version: int | None
    ) -> Principal | None:
        """The active user, or None; with a session version, None too when the user's
        sessions were ended since (sign-out, password change, deactivation)."""
        ...


class SessionHolder(Protocol):
    """What a session or token is bound to: a user's id and current session version."""

    id: int
    session_version: int


class ClientCache:
    """API clients by key digest, for `CLIENT_CACHE_SECONDS`, so intake costs no query per
    request. Revoking a client bumps a shared version (in Redis when configured, else in
    this process) and every process drops what it cached under an older version at once."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.version = 0
        self.entries: dict[str, tuple[float, int, Principal | None]] = {}

    async def current(self) -> int:
        """The shared version; a newer one empties this process's cache."""
        try:
            version = await self.counter.value(CLIENT_VERSION_KEY)
        except CounterUnavailable:
            # Without the shared version a revocation elsewhere could go unseen: trust no
            # cached client until Redis answers again (the key is read from the database).
            self.entries.clear()
            return -1
        if version != self.version:
            self.entries.clear()
            self.version = version
        return version

    async def revoked(self) -> None:
        """A client was deactivated (after commit): no process may use a cached copy."""
        self.entries.clear()
        with contextlib.suppress(CounterUnavailable):  # then the others' caches age out
            await self.counter.bump(CLIENT_VERSION_KEY)


_MISSING = object()


async def _cached(cache: ClientCache, digest: str) -> tuple[int, Any]:
    """The shared version and the principal cached for a key digest under it (None for a key
    known to be invalid), or `_MISSING` when nothing current is cached."""
    version = await cache.current()
    hit = cache.entries.get(digest)
    # An entry read under an older version (a request that raced a revocation) is stale.
    if hit is not None and hit[0] > time.monotonic() and hit[1] == version:
        return version, hit[2]
    return version, _MISSING


async def cached_client(state: Any, key: str) -> Principal | None:
    """The active client of an API key when this process has it cached (no query), else None
    (unknown, invalid or expired: the caller takes the path that reads the database and
    answers 401). The lean intake routes authenticate with it."""
    _, principal = await _cached(state.client_cache, hash_api_key(key))
    return principal if isinstance(principal, Principal) else None


async def _client_from_key(request: Request, db: AsyncSession, key: str) -> Principal:
    digest = hash_api_key(key)
    cache: ClientCache = request.app.state.client_cache
    version, principal = await _cached(cache, digest)
    if principal is _MISSING:
        principal = await request.app.state.principals.client(db, digest)
        if len(cache.entries) > 10_000:
            cache.entries.clear()
        cache.entries[digest] = (time.monotonic() + CLIENT_CACHE_SECONDS, version, principal)
    if principal is None:
        raise Unauthenticated("API 密钥无效或已停用", code="invalid_api_key")
    return principal


def issue_token(secret_key: str, user: SessionHolder) -> str:
    """A bearer token for the user, valid until their session version changes (or it ages)."""
    return signer(secret_key, TOKEN_SALT).dumps({"uid": user.id, "sv": user.session_version})


def start_session(request: Request, user: SessionHolder) -> None:
    """Bind the console session (cookie) to the user and their current session version."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["sv"] = user.session_version


def _version_of(data: dict[str, Any]) -> int | None:
    value = data.get("sv", 0)  # signed before versions existed: version 0
    return value if isinstance(value, int) else None


async def session_principal(request: Request, db: AsyncSession) -> Principal | None:
    """The person signed in by the console's session cookie, if it is still valid."""
    session = request.session if "session" in request.scope else {}
    uid, version = session.get("uid"), _version_of(session)
    if not isinstance(uid, int) or version is None:
        return None
    return await request.app.state.principals.user(db, int(uid), version)


def check_csrf_header(request: Request) -> None:
    """A cookie-authenticated call that changes something must prove it comes from our own
    pages: the session's CSRF token in `X-CSRF-Token` (a cross-site form cannot set it)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    expected = request.session.get("csrf")
    if (
        not expected
        or not isinstance(expected, str)
        or not secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfFailed()


async def get_principal(request: Request, db: DbSession) -> Principal:
    """Authenticate by `X-Api-Key`, a bearer token, or the console's session cookie (which
    must bring the CSRF token in a header for anything but GET/HEAD/OPTIONS)."""
    key = request.headers.get("x-api-key")
    if key:
        return await _client_from_key(request, db, key)
    settings = request.app.state.settings
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        data = load_signed(
            settings.secret_key, TOKEN_SALT, auth[7:].strip(), settings.token_ttl_seconds
        )
        uid = data.get("uid") if isinstance(data, dict) else None
        version = _version_of(data) if isinstance(data, dict) else None
        principal = (
            await request.app.state.principals.user(db, int(uid), version)
            if isinstance(uid, int) and version is not None
            else None
        )
        if principal is None:
            raise Unauthenticated("登录已失效，请重新登录", code="invalid_token")
        return principal
    if "session" in request.scope and request.session.get("uid"):
        check_csrf_header(request)
        principal = await session_principal(request, db)
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


def roles(
    *allowed: Role, message: str | None = None
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the signed-in person, when they hold one of the `allowed` roles
    (403 `user_required` for an API client, 403 `role_forbidden` for another role, with
    `message` where the refusal has a wording of its own)."""
    allowed_set = frozenset(allowed)

    async def dependency(user: CurrentUser) -> Principal:
        if user.role not in allowed_set:
            raise RoleForbidden(message) if message else RoleForbidden()
        return user

    dependency.__name__ = "role_" + "_".join(sorted(allowed_set))
    return dependency


# Who may call a route, by role alone (rules that depend on data stay in the services).
AdminUser = Annotated[Principal, Depends(roles(Role.ADMIN))]
ManagerUser = Annotated[Principal, Depends(roles(*MANAGERS))]  # admin, office
HandlerUser = Annotated[Principal, Depends(roles(*HANDLERS))]  # admin, office, unit


def acting(*allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, when it is an API client (bound by its organisation and
    channels instead) or a signed-in person holding one of the `allowed` roles (403
    `role_forbidden` otherwise)."""
    allowed_set = frozenset(allowed)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind == "user" and principal.role not in allowed_set:
            raise RoleForbidden()
        return principal

    dependency.__name__ = "acting_" + "_".join(sorted(allowed_set))
    return dependency


# Routes that business systems call with a key as well as people with a role.
ManagerOrClient = Annotated[Principal, Depends(acting(*MANAGERS))]
HandlerOrClient = Annotated[Principal, Depends(acting(*HANDLERS))]
InviterOrClient = Annotated[Principal, Depends(acting(*INVITERS))]  # not assessors
# Routes only business systems call (the national interface): people get 403.
ClientOnly = Annotated[Principal, Depends(acting())]
