"""The public ledger pages: recent block roots, each block, and a rating's inclusion proof
that anyone can check in their browser (SM3 in JavaScript) or read the server's check of."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, NotFound
from haochaping.core.ratelimit import limiter
from haochaping.core.schemas import MAX_ID, Id
from haochaping.core.templating import html_route, render
from haochaping.ledger import hashing, queries
from haochaping.ledger import service as ledger_service
from haochaping.ledger.models import LedgerBlock

router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))
PublicLimit = [Depends(limiter("public", "rate_public_per_minute"))]
RECENT = 50


def header_values(block: LedgerBlock) -> dict[str, str | int]:
    """The header fields a block root is computed from, as the pages show them."""
    return {
        "height": block.height,
        "prev_root": block.prev_root.hex(),
        "merkle_root": block.merkle_root.hex(),
        "first_seq": block.first_seq,
        "entry_count": block.entry_count,
        "high_water": block.high_water,
        "sealed_at_us": hashing.micros(block.sealed_at),
        "content_version": block.content_version,
    }


@router.get("/ledger", dependencies=PublicLimit)
async def ledger_page(request: Request, db: DbSession):
    """The most recent block roots, what they prove, and how to check them."""
    blocks = list((await db.execute(queries.blocks().limit(RECENT))).scalars())
    block_total, sealed_total = (await db.execute(queries.totals())).one()
    return render(
        request,
        "ledger/ledger.html",
        {
            "title": "评价存证账本",
            "blocks": blocks,
            "block_total": block_total,
            "sealed_total": sealed_total,
            "columns": hashing.CONTENT_COLUMNS[hashing.CONTENT_VERSION],
        },
    )


@router.get("/ledger/proof", dependencies=PublicLimit)
async def find_proof(evaluation_id: Annotated[int, Query(ge=1, le=MAX_ID)]):
    """The search box of the ledger page: go to a rating's proof by its number."""
    return RedirectResponse(f"/ledger/evaluations/{evaluation_id}", status_code=303)


@router.get("/ledger/blocks/{height}", dependencies=PublicLimit)
async def block_page(height: Id, request: Request, db: DbSession):
    """One block's header, and its root and link recomputed by the server."""
    block = await db.get(LedgerBlock, height)
    if block is None:
        raise NotFound(f"区块 {height} 不存在", code="ledger_block_not_found")
    newer = await db.get(LedgerBlock, height + 1)
    return render(
        request,
        "ledger/block.html",
        {
            "title": f"区块 {height}",
            "block": block,
            "header": header_values(block),
            "checks": await ledger_service.header_checks(db=db, block=block),
            "has_newer": newer is not None,
        },
    )


@router.get("/ledger/evaluations/{evaluation_id}", dependencies=PublicLimit)
async def proof_page(evaluation_id: Id, request: Request, db: DbSession):
    """A rating's inclusion proof: the server's check, and the same check in the browser."""
    try:
        proof, checks = await ledger_service.check_proof(db=db, evaluation_id=evaluation_id)
    except DomainError as exc:
        if exc.code != "evaluation_not_sealed":
            raise
        return render(
            request,
            "ledger/unsealed.html",
            {"title": "评价尚未封存", "evaluation_id": evaluation_id},
        )
    block = await db.get(LedgerBlock, proof["block"]["height"])
    assert block is not None  # check_proof found it
    return render(
        request,
        "ledger/proof.html",
        {
            "title": f"评价 {evaluation_id} 的存证证明",
            "proof": proof,
            "block": block,
            "header": header_values(block),
            "checks": checks,
            "ok": all(c.ok for c in checks),
        },
    )
