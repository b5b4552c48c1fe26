"""Read models of the sign-in and client routes (what they answer, for the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from haochaping.core.schemas import ReadModel


class TokenRead(ReadModel):
    """A bearer token (OAuth2 password flow)."""

    access_token: str
    token_type: str
    expires_in: int


class MeRead(ReadModel):
    """Who a token belongs to."""

    username: str
    role: str
    org_path: str


class ClientRevoked(ReadModel):
    """An API client after revoking it."""

    id: int
    name: str
    active: bool


class AuditEventRead(ReadModel):
    """One row of the audit trail: who did what to which record, and when."""

    id: int
    created_at: datetime
    actor: str
    actor_role: str | None
    actor_org_code: str | None  # the actor's organisation (none for the command line)
    action: str
    action_label: str
    target_type: str
    target_id: int | None
    detail: dict[str, Any]
    source_ip: str | None
