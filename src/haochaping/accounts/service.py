"""Account use cases: people (users) and API clients."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.choices import Role
from haochaping.accounts.models import ApiClient, User
from haochaping.core.errors import Conflict, Invalid, Unauthenticated
from haochaping.core.security import hash_api_key, hash_password, new_api_key, verify_password
from haochaping.evaluations.choices import Channel
from haochaping.orgs.service import get_org

MIN_PASSWORD = 8


async def create_user(*, db: AsyncSession, username: str, password: str, role: str,
                      org_code: str, display_name: str = "", email: str | None = None) -> User:
    """A new person account bound to an organisation."""
    if role not in {r.value for r in Role}:
        raise Invalid(f"未知角色 {role}", code="unknown_role", details=[{"field": "role"}])
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"密码至少 {MIN_PASSWORD} 位", code="weak_password",
                      details=[{"field": "password"}])
    org = await get_org(db=db, code=org_code)
    if (await db.execute(select(User.id).where(User.username == username))).first():
        raise Conflict(f"用户名 {username} 已存在", code="duplicate_username")
    user = User(username=username, password_hash=hash_password(password), role=role,
                org_id=org.id, display_name=display_name or username, email=email)
    db.add(user)
    await db.flush()
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


async def create_client(*, db: AsyncSession, name: str, org_code: str,
                        channels: list[str]) -> tuple[ApiClient, str]:
    """A new API client; returns it and its key, which is shown once and stored hashed."""
    known = {c.value for c in Channel}
    bad = [c for c in channels if c not in known]
    if bad or not channels:
        raise Invalid(f"未知渠道：{', '.join(bad) or '（空）'}；可选 {', '.join(sorted(known))}",
                      code="unknown_channel", details=[{"field": "channels"}])
    org = await get_org(db=db, code=org_code)
    if (await db.execute(select(ApiClient.id).where(ApiClient.name == name))).first():
        raise Conflict(f"客户端 {name} 已存在", code="duplicate_client")
    key = new_api_key()
    client = ApiClient(name=name, key_prefix=key[:12], key_hash=hash_api_key(key),
                       org_id=org.id, channels=sorted(set(channels)))
    db.add(client)
    await db.flush()
    return client, key
