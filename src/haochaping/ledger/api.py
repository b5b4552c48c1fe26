"""JSON routes of the ledger: published block roots and proofs (public, no sign-in)."""

from __future__ import annotations

from fastapi import APIRouter

from haochaping.core import pagination
from haochaping.core.db import DbSession
from haochaping.core.errors import NotFound, declare
from haochaping.core.schemas import Id, Limit, Page
from haochaping.ledger import queries, schemas
from haochaping.ledger import service as ledger_service
from haochaping.ledger.models import LedgerBlock

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger 存证账本"])


@router.get("/blocks", response_model=Page[schemas.BlockRead])
async def list_blocks(db: DbSession, cursor: str | None = None, limit: Limit = 50):
    """Sealed blocks and their roots, newest first."""
    rows, nxt = await pagination.page(
        db,
        queries.blocks(),
        key=LedgerBlock.height,
        cursor=cursor,
        limit=limit,
        descending=True,
        scalars=True,
    )
    return {"items": [ledger_service.block_read(b) for b in rows], "next_cursor": nxt}


@router.get(
    "/blocks/{height}",
    response_model=schemas.BlockRead,
    responses=declare(codes={404: "ledger_block_not_found"}),
)
async def get_block(height: Id, db: DbSession):
    """One block's header."""
    block = await db.get(LedgerBlock, height)
    if block is None:
        raise NotFound(
            f"区块 {height} 不存在",
            code="ledger_block_not_found",
            details=[{"field": "height", "value": height}],
        )
    return ledger_service.block_read(block)


@router.get(
    "/evaluations/{evaluation_id}/proof",
    response_model=schemas.ProofRead,
    responses=declare(
        409,
        codes={
            404: ["evaluation_not_found", "evaluation_not_sealed", "ledger_block_not_found"],
            409: "ledger_inconsistent",
        },
    ),
)
async def get_proof(evaluation_id: Id, db: DbSession):
    """Where a rating is sealed, and the audit path from its content hash to the block root."""
    return await ledger_service.proof(db=db, evaluation_id=evaluation_id)
