"""Answers of the ledger API: block headers and proofs, hashes in lowercase hex."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class BlockRead(BaseModel):
    """A sealed block's header: everything needed to recompute its root."""

    height: int
    root: str = Field(description="SM3 block root (published)")
    prev_root: str
    merkle_root: str
    first_seq: int
    last_seq: int
    entry_count: int
    high_water: int = Field(description="largest evaluation id sealed up to this block")
    content_version: int
    sealed_at: datetime


class AuditStep(BaseModel):
    """One step up the Merkle tree: the sibling's hash and on which side it sits."""

    side: Literal["left", "right"]
    hash: str


class ProofRead(BaseModel):
    """A rating's place in the ledger and the path from its content hash to the block root."""

    evaluation_id: int
    seq: int
    content_hash: str
    content_version: int
    content_columns: list[str]
    current_content_hash: str | None = Field(
        description="hash of the rating as stored now; null when the row is gone"
    )
    content_matches: bool
    leaf_index: int
    audit_path: list[AuditStep]
    merkle_root_from_path: str
    block: BlockRead
