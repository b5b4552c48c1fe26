"""The ledger tables: sealed blocks and one entry per sealed rating (both append-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime
from haochaping.db.types import BigIntPK


class LedgerBlock(Base):
    """A sealed block (账本区块): the Merkle root of its entries, chained to the block before."""

    __tablename__ = "ledger_block"
    __table_args__ = (
        CheckConstraint("entry_count >= 1", name="entry_count_positive"),
        CheckConstraint("last_seq = first_seq + entry_count - 1", name="seq_range"),
    )

    height: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    # Unique: two blocks can never claim the same parent, so the chain cannot fork.
    prev_root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    merkle_root: Mapped[bytes] = mapped_column(LargeBinary(32))
    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    entry_count: Mapped[int] = mapped_column(Integer)
    # The largest evaluation id sealed so far, this block included (never decreases).
    high_water: Mapped[int] = mapped_column(BigInteger)
    content_version: Mapped[int] = mapped_column(SmallInteger)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """A sealed rating: its content hash and its place (seq) in the ledger."""

    __tablename__ = "ledger_entry"

    evaluation_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("evaluation.id"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    # No foreign key to ledger_block: the block is written in the same transaction, verify
    # names any entry outside its block, and the per-row check slowed sealing measurably.
    block_height: Mapped[int] = mapped_column(BigIntPK)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
