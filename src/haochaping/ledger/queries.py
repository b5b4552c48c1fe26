"""Read-side selects of the ledger: published blocks, newest first."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from haochaping.ledger.models import LedgerBlock


def blocks() -> Select:
    """Block headers, newest first."""
    return select(LedgerBlock).order_by(LedgerBlock.height.desc())


def totals() -> Select:
    """How many blocks there are and how many ratings they seal."""
    return select(func.count(), func.coalesce(func.sum(LedgerBlock.entry_count), 0))
