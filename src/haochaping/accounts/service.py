"""Account use cases: people (users) and API clients."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.choices import PERSON_ROLES
from haochaping.accounts.models import ApiClient, User
from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from haochaping.core.ratelimit import LoginGuard
from haochaping.core.security import hash_api_key, hash_password, new_api_key, verify_password
from haochaping.evaluations.choices import EXCHANGE_CHANNEL, Channel
from haochaping.orgs.models import Org
from haochaping.orgs.service import get_org

MIN_PASSWORD = 8


def _check_password(password: str, field: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            f"密码至少 {MIN_PASSWORD} 位", code="weak_password", details=[{"field": field}]
        )


async def create_user(
    *,
    db: AsyncSession,
    username: str,
    password: str,
    role: str,
    org_code: str,
    display_name: str = "",
    email: str | None = None,
    actor: str = "cli",
    actor_role: str | None = None,
) -> User:
    """A new person account bound to an organisation (on record: who created it)."""
    if role not in PERSON_ROLES:  # the workflow actors never sign in
        raise Invalid(f"未知角色 {role}", code="unknown_role", details=[{"field": "role"}])
    _check_password(password, "password")
    org = await get_org(db=db, code=org_code)
    if (await db.execute(select(User.id).where(User.username == username))).first():
        raise Conflict(f"用户名 {username} 已存在", code="duplicate_username")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        org_id=org.id,
        display_name=display_name or username,
        email=email,
    )
    db.add(user)
    await db.flush()
    audit.record(
        db,
        actor=actor,
        actor_role=actor_role,
        action=audit.AuditAction.CREATE_USER,
        target_type="user",
        target_id=user.id,
        detail={"username": user.username, "role": role, "org": org.code},
    )
    return user


async def authenticate(*, db: AsyncSession, username: str, password: str) -> User:
    """The user whose credentials these are, or 401 (same answer for any wrong part)."""
    if "\x00" in username:  # no account has one, and PostgreSQL refuses to compare it
        raise Unauthenticated("用户名或密码错误", code="invalid_credentials")
    user = (await db.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        if user is not None and not ok:
            user.failed_logins += 1
        raise Unauthenticated("用户名或密码错误", code="invalid_credentials")
    user.failed_logins = 0
    return user


async def sign_in(
    *, db: AsyncSession, guard: LoginGuard, username: str, password: str, source_ip: str
) -> User:
    """The user signing in, or 429 while this place is locked out of the account and 401
    for wrong credentials (counted towards the lock-out; the caller commits either way, so
    the failed-login count is kept)."""
    await guard.check(username, source_ip)
    try:
        user = await authenticate(db=db, username=username, password=password)
    except Unauthenticated:
        await guard.failed(username, source_ip)
        raise
    await guard.succeeded(username, source_ip)
    return user


async def create_client(
    *,
    db: AsyncSession,
    name: str,
    org_code: str,
    channels: list[str],
    actor: str = "cli",
    actor_role: str | None = None,
) -> tuple[ApiClient, str]:
    """A new API client; returns it and its key, which is shown once and stored hashed (the
    record names the key by its prefix only)."""
    known = {c.value for c in Channel} | {EXCHANGE_CHANNEL}
    bad = [c for c in channels if c not in known]
    if bad or not channels:
        raise Invalid(
            f"未知渠道：{', '.join(bad) or '（空）'}；可选 {', '.join(sorted(known))}",
            code="unknown_channel",
            details=[{"field": "channels"}],
        )
    org = await get_org(db=db, code=org_code)
    if (await db.execute(select(ApiClient.id).where(ApiClient.name == name))).first():
        raise Conflict(f"客户端 {name} 已存在", code="duplicate_client")
    key = new_api_key()
    client = ApiClient(
        name=name,
        key_prefix=key[:12],
        key_hash=hash_api_key(key),
        org_id=org.id,
        channels=sorted(set(channels)),
    )
    db.add(client)
    await db.flush()
    audit.record(
        db,
        actor=actor,
        actor_role=actor_role,
        action=audit.AuditAction.CREATE_CLIENT,
        target_type="api_client",
        target_id=client.id,
        detail={
            "name": client.name,
            "org": org.code,
            "channels": client.channels,
            "key_prefix": client.key_prefix,
        },
    )
    return client, key


def end_sessions(user: User) -> None:
    """Every session cookie and bearer token of the user stops working (their version)."""
    user.session_version += 1


async def _user(
    db: AsyncSession, *, user_id: int | None = None, username: str | None = None
) -> User:
    query = (
        select(User).where(User.id == user_id)
        if user_id is not None
        else select(User).where(User.username == username)
    )
    user = (await db.execute(query)).scalar_one_or_none()
    if user is None:
        raise NotFound("用户不存在", code="user_not_found")
    return user


async def sign_out(*, db: AsyncSession, user_id: int) -> User:
    """Sign the user out everywhere: all their sessions and tokens end."""
    user = await _user(db, user_id=user_id)
    end_sessions(user)
    await db.flush()
    return user


async def change_password(
    *, db: AsyncSession, user_id: int, old_password: str, new_password: str
) -> User:
    """A person changes their own password (knowing the old one); all their sessions end."""
    user = await _user(db, user_id=user_id)
    if not verify_password(user.password_hash, old_password):
        raise Invalid("原密码不正确", code="wrong_password", details=[{"field": "old_password"}])
    _check_password(new_password, "new_password")
    if new_password == old_password:
        raise Invalid(
            "新密码不能与原密码相同", code="same_password", details=[{"field": "new_password"}]
        )
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    await db.flush()
    return user


def _record_account_act(
    db: AsyncSession, *, user: User, action: audit.AuditAction, actor: str
) -> None:
    """An administrator's act on a person's account, on the audit trail (the username only)."""
    audit.record(
        db,
        actor=actor,
        actor_role=None,
        action=action,
        target_type="user",
        target_id=user.id,
        detail={"username": user.username},
    )


async def set_password(
    *, db: AsyncSession, username: str, password: str, actor: str = "cli"
) -> User:
    """An administrator sets a person's password (a reset); all their sessions end."""
    user = await _user(db, username=username)
    _check_password(password, "password")
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    end_sessions(user)
    _record_account_act(db, user=user, action=audit.AuditAction.SET_PASSWORD, actor=actor)
    await db.flush()
    return user


async def deactivate_user(*, db: AsyncSession, username: str, actor: str = "cli") -> User:
    """The person can no longer sign in, and every session and token of theirs ends."""
    user = await _user(db, username=username)
    user.active = False
    end_sessions(user)
    _record_account_act(db, user=user, action=audit.AuditAction.DEACTIVATE_USER, actor=actor)
    await db.flush()
    return user


async def revoke_client(
    *,
    db: AsyncSession,
    client_id: int | None = None,
    name: str | None = None,
    actor: Principal | None = None,
    source_ip: str | None = None,
) -> ApiClient:
    """Deactivate an API client (an administrator whose subtree holds it, or the command
    line when actor is None); the caller tells `core.auth.ClientCache` after commit."""
    query = select(ApiClient, Org.path).join(Org, Org.id == ApiClient.org_id)
    query = (
        query.where(ApiClient.id == client_id)
        if client_id is not None
        else query.where(ApiClient.name == name)
    )
    row = (await db.execute(query)).first()
    if row is None:
        raise NotFound("API 客户端不存在", code="client_not_found")
    client, path = row
    if actor is not None:
        actor.require(path)
    client.active = False
    audit.record(
        db,
        actor=actor.name if actor else "cli",
        actor_role=actor.role if actor else None,
        action=audit.AuditAction.REVOKE_CLIENT,
        target_type="api_client",
        target_id=client.id,
        detail={"name": client.name, "key_prefix": client.key_prefix},
        source_ip=source_ip,
    )
    await db.flush()
    return client


# --- administration in the console: an administrator acts within their subtree -------------


async def user_in_scope(*, db: AsyncSession, actor: Principal, user_id: int) -> tuple[User, Org]:
    """A person's account whose organisation lies in the administrator's subtree, or 404/403."""
    row = (
        await db.execute(
            select(User, Org).join(Org, Org.id == User.org_id).where(User.id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("用户不存在", code="user_not_found")
    actor.require(row[1].path)
    return row[0], row[1]


def _not_self(actor: Principal, user: User) -> None:
    if actor.kind == "user" and actor.id == user.id:
        raise Forbidden("不能在此调整或停用自己的账号", code="own_account")


def _record_by(
    db: AsyncSession, actor: Principal, action: audit.AuditAction, user: User, **detail: object
) -> None:
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=action,
        target_type="user",
        target_id=user.id,
        detail={"username": user.username, **detail},
    )


async def admin_create_user(
    *,
    db: AsyncSession,
    actor: Principal,
    username: str,
    password: str,
    role: str,
    org_code: str,
    display_name: str = "",
) -> User:
    """An administrator creates an account for an organisation in their subtree."""
    org = await get_org(db=db, code=org_code)
    actor.require(org.path)
    return await create_user(
        db=db,
        username=username,
        password=password,
        role=role,
        org_code=org_code,
        display_name=display_name,
        actor=actor.name,
        actor_role=actor.role,
    )


async def assign_user(
    *, db: AsyncSession, actor: Principal, user_id: int, role: str, org_code: str
) -> User:
    """Give a person another role or organisation (both in the administrator's subtree);
    their sessions end, so the new reach applies at once."""
    user, old_org = await user_in_scope(db=db, actor=actor, user_id=user_id)
    _not_self(actor, user)
    if role not in PERSON_ROLES:
        raise Invalid(f"未知角色 {role}", code="unknown_role", details=[{"field": "role"}])
    org = await get_org(db=db, code=org_code)
    actor.require(org.path)
    old_role = user.role
    user.role, user.org_id = role, org.id
    end_sessions(user)
    _record_by(
        db,
        actor,
        audit.AuditAction.ASSIGN_USER,
        user,
        role=role,
        org=org.code,
        old_role=old_role,
        old_org=old_org.code,
    )
    await db.flush()
    return user


async def admin_reset_password(
    *, db: AsyncSession, actor: Principal, user_id: int, password: str
) -> User:
    """An administrator sets a new password for a person in their subtree; sessions end."""
    user, _ = await user_in_scope(db=db, actor=actor, user_id=user_id)
    _check_password(password, "password")
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    end_sessions(user)
    _record_by(db, actor, audit.AuditAction.SET_PASSWORD, user)
    await db.flush()
    return user


async def admin_deactivate_user(*, db: AsyncSession, actor: Principal, user_id: int) -> User:
    """The person can no longer sign in, and every session of theirs ends."""
    user, _ = await user_in_scope(db=db, actor=actor, user_id=user_id)
    _not_self(actor, user)
    user.active = False
    end_sessions(user)
    _record_by(db, actor, audit.AuditAction.DEACTIVATE_USER, user)
    await db.flush()
    return user


async def admin_end_sessions(*, db: AsyncSession, actor: Principal, user_id: int) -> User:
    """Every session cookie and token of the person ends (a lost phone, a shared screen)."""
    user, _ = await user_in_scope(db=db, actor=actor, user_id=user_id)
    end_sessions(user)
    _record_by(db, actor, audit.AuditAction.END_SESSIONS, user)
    await db.flush()
    return user


async def admin_create_client(
    *, db: AsyncSession, actor: Principal, name: str, org_code: str, channels: list[str]
) -> tuple[ApiClient, str]:
    """An administrator creates an API client for an organisation in their subtree."""
    org = await get_org(db=db, code=org_code)
    actor.require(org.path)
    return await create_client(
        db=db,
        name=name,
        org_code=org_code,
        channels=channels,
        actor=actor.name,
        actor_role=actor.role,
    )


async def rotate_client(
    *, db: AsyncSession, actor: Principal, client_id: int
) -> tuple[ApiClient, str]:
    """A new key for an active client; the old one stops working at once (the caller tells
    `core.auth.ClientCache` after commit). Returns the client and the new key, shown once."""
    row = (
        await db.execute(
            select(ApiClient, Org.path)
            .join(Org, Org.id == ApiClient.org_id)
            .where(ApiClient.id == client_id)
        )
    ).first()
    if row is None:
        raise NotFound("API 客户端不存在", code="client_not_found")
    client, path = row
    actor.require(path)
    if not client.active:
        raise Conflict("该接入密钥已吊销，不能更换", code="client_revoked")
    old_prefix = client.key_prefix
    key = new_api_key()
    client.key_prefix, client.key_hash = key[:12], hash_api_key(key)
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.ROTATE_CLIENT,
        target_type="api_client",
        target_id=client.id,
        detail={"name": client.name, "old_key_prefix": old_prefix, "key_prefix": client.key_prefix},
    )
    await db.flush()
    return client, key
