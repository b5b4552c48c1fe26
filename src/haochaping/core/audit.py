"""The audit trail: sensitive reads (a revealed phone number or comment) and administrative
acts, each one row in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.models import AuditEvent


def record(
    db: AsyncSession,
    *,
    actor: str,
    actor_role: str | None,
    action: str,
    target_type: str,
    target_id: int | None,
    detail: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> None:
    """Add one audit row to the unit of work (it commits, or rolls back, with the act)."""
    db.add(
        AuditEvent(
            actor=actor,
            actor_role=actor_role,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail or {},
            source_ip=source_ip,
        )
    )
