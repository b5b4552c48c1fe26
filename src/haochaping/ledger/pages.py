"""The public ledger page: recent block roots, in Chinese, for anyone to note down and compare."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, select

from haochaping.core.db import DbSession
from haochaping.core.timeutil import fmt_local
from haochaping.ledger import hashing, queries
from haochaping.ledger.models import LedgerBlock

router = APIRouter(include_in_schema=False)

# A page of its own (no forms, no scripts), so its own small environment and strict headers.
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["local"] = fmt_local
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
RECENT = 50


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(request: Request, db: DbSession):
    """The most recent block roots and how to check them."""
    blocks = list((await db.execute(queries.blocks().limit(RECENT))).scalars())
    totals = (
        await db.execute(select(func.count(), func.coalesce(func.sum(LedgerBlock.entry_count), 0)))
    ).one()
    html = _env.get_template("ledger.html").render(
        blocks=blocks,
        block_total=totals[0],
        sealed_total=totals[1],
        columns=hashing.CONTENT_COLUMNS[hashing.CONTENT_VERSION],
    )
    return HTMLResponse(html, headers=HEADERS)
