"""Read-side selects of the ledger: published blocks, newest first."""

from __future__ import annotations

from sqlalchemy import Select, select

from haochaping.ledger.models import LedgerBlock


def blocks(*, before: int | None = None, limit: int = 50) -> Select:
    """Block headers below height `before`, newest first (one extra row tells if more exist)."""
    stmt = select(LedgerBlock).order_by(LedgerBlock.height.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(LedgerBlock.height < before)
    return stmt
