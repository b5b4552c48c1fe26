"""Read-side selects of the ledger: published blocks, newest first."""

from __future__ import annotations

from sqlalchemy import Select, select

from haochaping.ledger.models import LedgerBlock


def blocks() -> Select:
    """Block headers, newest first."""
    return select(LedgerBlock).order_by(LedgerBlock.height.desc())
