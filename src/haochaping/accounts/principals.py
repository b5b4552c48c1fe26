"""The principal source of `core.auth`: API clients and users, with their org's path."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import ApiClient, User
from haochaping.core.auth import Principal
from haochaping.core.roles import REGION_READERS, Role
from haochaping.orgs.models import Org, Region


class AccountPrincipals:
    """`core.auth.PrincipalSource` over the accounts tables (`create_app` sets it)."""

    async def client(self, db: AsyncSession, key_hash: str) -> Principal | None:
        """The active API client with this key digest, or None."""
        row = (
            await db.execute(
                select(ApiClient, Org.path)
                .join(Org, Org.id == ApiClient.org_id)
                .where(ApiClient.key_hash == key_hash)
            )
        ).first()
        if row is None or not row[0].active:
            return None
        client, path = row
        return Principal(
            kind="client",
            id=client.id,
            name=client.name,
            org_id=client.org_id,
            org_path=path,
            channels=frozenset(client.channels or ()),
        )

    async def user(
        self, db: AsyncSession, user_id: int, session_version: int | None
    ) -> Principal | None:
        """The principal of an active user, or None; with a session version, None too when
        the user's sessions were ended since (sign-out, password change, deactivation)."""
        row = (
            await db.execute(
                select(User, Org.path, Region.path)
                .join(Org, Org.id == User.org_id)
                .outerjoin(Region, Region.code == Org.region_code)
                .where(User.id == user_id)
            )
        ).first()
        if row is None or not row[0].active:
            return None
        user, path, region_path = row
        if session_version is not None and user.session_version != session_version:
            return None
        role = Role(user.role)
        return Principal(
            kind="user",
            id=user.id,
            name=user.username,
            org_id=user.org_id,
            org_path=path,
            role=role,
            # An assessor reads the figures of their organisation's whole region (read-only).
            region_path=region_path if role in REGION_READERS else None,
        )
