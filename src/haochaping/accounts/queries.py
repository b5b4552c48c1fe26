"""Read side of accounts: the audit trail as an administrator may read it.

An audit row names its actor (a username, or the command line's `cli`), not an
organisation; a row is in an administrator's subtree when its actor is a person of that
subtree. Rows of no person (the command line, `actor_role` empty) concern the whole
installation and are shown to administrators at its root only."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import ApiClient, User
from haochaping.core import pagination
from haochaping.core.audit import AuditAction
from haochaping.core.auth import Principal
from haochaping.core.models import AuditEvent
from haochaping.orgs.models import Org


def audit_events(
    *,
    actor: Principal,
    action: AuditAction | None = None,
    actor_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    only: Collection[AuditAction] | None = None,
) -> Select:
    """Audit rows in the administrator's subtree with their actor's organisation code,
    newest first; `since` inclusive, `until` exclusive; `only`: none but these acts (what an
    office may read)."""
    stmt = (
        select(AuditEvent, Org.code)
        .outerjoin(User, User.username == AuditEvent.actor)
        .outerjoin(Org, Org.id == User.org_id)
        .order_by(AuditEvent.id.desc())
    )
    if not actor.at_root:  # the root's subtree is everything, rows of no person included
        stmt = stmt.where(
            AuditEvent.actor_role.is_not(None),
            Org.path.startswith(actor.org_path, autoescape=True),
        )
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action.value)
    if only is not None:
        stmt = stmt.where(AuditEvent.action.in_([a.value for a in only]))
    if actor_name:
        stmt = stmt.where(AuditEvent.actor == actor_name)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    return stmt


async def audit_page(
    *,
    db: AsyncSession,
    actor: Principal,
    action: AuditAction | None = None,
    actor_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    only: Collection[AuditAction] | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the audit trail, newest first, and the next page's cursor."""
    stmt = audit_events(
        actor=actor, action=action, actor_name=actor_name, since=since, until=until, only=only
    )
    rows, nxt = await pagination.page(
        db, stmt, key=AuditEvent.id, cursor=cursor, limit=limit, descending=True
    )
    return [read(event, org_code) for event, org_code in rows], nxt


def read(event: AuditEvent, org_code: str | None) -> dict[str, Any]:
    """An audit row as the API and the console show it."""
    return {
        "id": event.id,
        "created_at": event.created_at,
        "actor": event.actor,
        "actor_role": event.actor_role,
        "actor_org_code": org_code,
        "action": event.action,
        "action_label": AuditAction.label_of(event.action, event.action),
        "target_type": event.target_type,
        "target_id": event.target_id,
        "detail": event.detail or {},
        "source_ip": event.source_ip,
    }


def admin_users(*, actor: Principal, q: str) -> Select:
    """People's accounts of the administrator's subtree, by organisation then username."""
    stmt = (
        select(User, Org.code, Org.name)
        .join(Org, Org.id == User.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Org.path, User.username)
    )
    if q:
        stmt = stmt.where(
            User.username.contains(q, autoescape=True)
            | User.display_name.contains(q, autoescape=True)
        )
    return stmt


def admin_clients(*, actor: Principal) -> Select:
    """API clients of the administrator's subtree (never their keys: only the prefix)."""
    return (
        select(ApiClient, Org.code, Org.name)
        .join(Org, Org.id == ApiClient.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(ApiClient.active.desc(), ApiClient.name)
    )
