"""Roles of the people who sign in: `core.roles.Role` (one enum with its Chinese labels),
of which an account holds one of `PERSON_ROLES`."""

from __future__ import annotations

from haochaping.core.roles import PERSON_ROLES, Role

__all__ = ["PERSON_ROLES", "Role"]
