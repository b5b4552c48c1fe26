"""Read models of the sign-in and client routes (what they answer, for the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from haochaping.core.roles import PERSON_ROLES
from haochaping.core.schemas import Code, InputModel, ReadModel

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]*$"
    ),
]
PersonRole = Annotated[
    str, StringConstraints(pattern="^(" + "|".join(r.value for r in PERSON_ROLES) + ")$")
]


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


class AccountCreate(InputModel):
    """A person's account as an administrator creates it in the console."""

    username: Username
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    password: Annotated[str, StringConstraints(max_length=200)]
    role: PersonRole
    org_code: Code


class AccountAssign(InputModel):
    """Another role or organisation for a person."""

    role: PersonRole
    org_code: Code


class ClientCreate(InputModel):
    """An API client as an administrator creates it in the console."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    org_code: Code
    channels: Annotated[list[str], Field(min_length=1, max_length=20)]
