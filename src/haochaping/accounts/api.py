"""Sign-in for people (OAuth2 password form to a bearer token), sign-out, password change,
and revoking an API client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from haochaping.accounts import queries, schemas
from haochaping.accounts import service as account_service
from haochaping.core.audit import AuditAction
from haochaping.core.auth import AdminUser, CurrentUser, issue_token
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.ratelimit import client_ip, limiter
from haochaping.core.schemas import Id, Limit, Page, Timestamp

router = APIRouter(prefix="/api/v1", tags=["auth 认证"])


def _token_body(request: Request, user) -> dict:
    settings = request.app.state.settings
    return {
        "access_token": issue_token(settings.secret_key, user),
        "token_type": "bearer",
        "expires_in": settings.token_ttl_seconds,
    }


@router.post(
    "/auth/token",
    dependencies=[Depends(limiter("login", "rate_login_per_minute"))],
    response_model=schemas.TokenRead,
    responses=declare(401, codes={401: "invalid_credentials", 429: "login_locked"}),
)
async def issue(
    request: Request,
    db: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
):
    """Exchange username and password for a bearer token (after repeated failures from one
    place, that place is locked out of the account for a growing while)."""
    try:
        user = await account_service.sign_in(
            db=db,
            guard=request.app.state.login_guard,
            username=username,
            password=password,
            source_ip=client_ip(request),
        )
    finally:
        await db.commit()  # keep the failed-login count even when refusing
    return _token_body(request, user)


@router.get("/auth/me", response_model=schemas.MeRead)
async def me(user: CurrentUser):
    """Who the token belongs to."""
    return {"username": user.name, "role": user.role, "org_path": user.org_path}


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(request: Request, db: DbSession, user: CurrentUser):
    """Sign out everywhere: every token and console session of the caller ends."""
    await account_service.sign_out(db=db, user_id=user.id)
    await db.commit()
    if "session" in request.scope:
        request.session.clear()
    return Response(status_code=204)


@router.post("/auth/password", response_model=schemas.TokenRead)
async def change_password(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    old_password: Annotated[str, Form(max_length=200)],
    new_password: Annotated[str, Form(max_length=200)],
):
    """Change one's own password; every other session and token ends, and a new token for
    the caller is returned (a console session that asked stays signed in)."""
    changed = await account_service.change_password(
        db=db, user_id=user.id, old_password=old_password, new_password=new_password
    )
    await db.commit()
    if "session" in request.scope and request.session.get("uid") == changed.id:
        request.session["sv"] = changed.session_version
    return _token_body(request, changed)


@router.post(
    "/clients/{client_id}/revoke", tags=["clients 客户端"], response_model=schemas.ClientRevoked
)
async def revoke_client(client_id: Id, request: Request, db: DbSession, user: AdminUser):
    """Deactivate an API client (administrators): its key is refused at once."""
    client = await account_service.revoke_client(
        db=db, client_id=client_id, actor=user, source_ip=client_ip(request)
    )
    await db.commit()
    await request.app.state.client_cache.revoked()
    return {"id": client.id, "name": client.name, "active": client.active}


@router.get("/audit-events", response_model=Page[schemas.AuditEventRead], tags=["audit 审计"])
async def list_audit_events(
    db: DbSession,
    user: AdminUser,
    action: AuditAction | None = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
):
    """The audit trail of the administrator's subtree, newest first (filters: action, actor,
    since inclusive, until exclusive)."""
    items, nxt = await queries.audit_page(
        db=db,
        actor=user,
        action=action,
        actor_name=actor,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return {"items": items, "next_cursor": nxt}
