"""The one keyset pagination helper: every row once, in key order, and no cursor at the end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from haochaping.core import pagination
from haochaping.core.errors import Malformed
from haochaping.core.schemas import encode_cursor
from haochaping.orgs.models import Org, Region

CODES = ["OFFICE", "HALL-A", "W-A1", "W-A2", "HALL-B", "W-B1", "DEPT-M"]


def _orgs(*columns):
    """The test province's organisations (rows other tests committed are left out)."""
    return select(*(columns or (Org,))).where(Org.code.in_(CODES))


async def _walk(db, stmt, limit: int, **kwargs) -> tuple[list, list[str | None]]:
    """Every page from the first; the rows seen and the cursors answered."""
    seen, cursors, cursor = [], [], None
    while True:
        rows, cursor = await pagination.page(db, stmt, cursor=cursor, limit=limit, **kwargs)
        seen.extend(rows)
        cursors.append(cursor)
        if cursor is None:
            return seen, cursors


async def test_ascending_pages_cover_every_row_once(db, world):
    ids = sorted((await db.execute(_orgs(Org.id))).scalars())
    assert len(ids) == 7
    rows, cursors = await _walk(db, _orgs(Org, Org.code), 3, key=Org.id)
    assert [r[0].id for r in rows] == ids
    assert len(cursors) == 3 and cursors[0] == encode_cursor(ids[2])


async def test_descending_pages_newest_first_whatever_the_statement_orders_by(db, world):
    ids = sorted((await db.execute(_orgs(Org.id))).scalars(), reverse=True)
    rows, cursors = await _walk(
        db, _orgs().order_by(Org.code), 2, key=Org.id, descending=True, scalars=True
    )
    assert [o.id for o in rows] == ids
    assert cursors[0] == encode_cursor(ids[1])


async def test_a_full_last_page_has_no_next_cursor(db, world):
    rows, cursor = await pagination.page(
        db, _orgs(), key=Org.id, cursor=None, limit=7, scalars=True
    )
    assert len(rows) == 7 and cursor is None
    rows, cursor = await pagination.page(
        db, _orgs(), key=Org.id, cursor=None, limit=6, scalars=True
    )
    assert len(rows) == 6 and cursor == encode_cursor(rows[-1].id)


async def test_text_keys_page_by_code(db, world):
    regions = select(Region).where(Region.code.in_(["330000", "330100", "330102"]))
    rows, cursors = await _walk(db, regions, 2, key=Region.code, text_key=True, scalars=True)
    assert [r.code for r in rows] == ["330000", "330100", "330102"]
    assert cursors == [encode_cursor("330100"), None]


async def test_a_cursor_we_did_not_make_is_refused(db, world):
    with pytest.raises(Malformed) as exc:
        await pagination.page(db, select(Org), key=Org.id, cursor="not-a-cursor", limit=5)
    assert exc.value.code == "invalid_cursor" and exc.value.status_code == 400
    with pytest.raises(Malformed):  # a code where an id is expected
        await pagination.page(db, select(Org), key=Org.id, cursor=encode_cursor("ABC"), limit=5)
