"""Sign-in for people: OAuth2 password form to a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from haochaping.accounts import service as account_service
from haochaping.core.auth import TOKEN_SALT, CurrentUser
from haochaping.core.db import DbSession
from haochaping.core.errors import Unauthenticated, declare
from haochaping.core.ratelimit import limiter
from haochaping.core.security import signer

router = APIRouter(prefix="/api/v1", tags=["auth 认证"])


@router.post("/auth/token", dependencies=[Depends(limiter("login", "rate_login_per_minute"))],
             responses=declare(401, codes={401: "invalid_credentials", 429: "login_locked"}))
async def issue_token(request: Request, db: DbSession,
                      username: Annotated[str, Form(max_length=64)],
                      password: Annotated[str, Form(max_length=200)]):
    """Exchange username and password for a bearer token (locked after repeated failures)."""
    guard = request.app.state.login_guard
    await guard.check(username)
    try:
        user = await account_service.authenticate(db=db, username=username, password=password)
    except Unauthenticated:
        await guard.failed(username)
        raise
    finally:
        await db.commit()  # keep the failed-login count even when refusing
    await guard.succeeded(username)
    token = signer(request.app.state.settings.secret_key, TOKEN_SALT).dumps({"uid": user.id})
    return {"access_token": token, "token_type": "bearer",
            "expires_in": request.app.state.settings.token_ttl_seconds}


@router.get("/auth/me")
async def me(user: CurrentUser):
    """Who the token belongs to."""
    return {"username": user.name, "role": user.role, "org_path": user.org_path}
