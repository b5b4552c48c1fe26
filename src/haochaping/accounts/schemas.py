"""Read models of the sign-in and client routes (what they answer, for the OpenAPI document)."""

from __future__ import annotations

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
