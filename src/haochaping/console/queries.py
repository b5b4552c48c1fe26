"""Read-side helpers of the console: one page of ratings with the names people read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.console.forms import EvaluationFilters
from haochaping.core.auth import Principal
from haochaping.core.schemas import decode_int_cursor, encode_cursor
from haochaping.core.security import mask_text
from haochaping.evaluations import queries
from haochaping.evaluations import service as evaluation_service
from haochaping.orgs.models import Item, Org

PAGE_SIZE = 20


@dataclass
class EvaluationPage:
    """One page of the console's rating list."""

    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def bad_count(self) -> int:
        return sum(1 for item in self.items if item["is_bad"])

    @property
    def bad_share(self) -> str:
        """The share of bad ratings on this page, as people read it (e.g. 12.5%)."""
        if not self.items:
            return "0%"
        return f"{self.bad_count * 100 / len(self.items):.1f}".rstrip("0").rstrip(".") + "%"


async def _names(db: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict((await db.execute(select(model.id, model.name).where(model.id.in_(ids)))).all())


async def evaluation_page(*, db: AsyncSession, actor: Principal, filters: EvaluationFilters,
                          rules: evaluation_service.IntakeRules,
                          limit: int = PAGE_SIZE) -> EvaluationPage:
    """Ratings in the actor's subtree, newest first; personal data masked, free text too."""
    stmt = queries.evaluations(
        actor=actor, case_no=filters.case_no or None, org_code=filters.org_code or None,
        item_code=filters.item_code or None, level=filters.level, channel=filters.channel,
        since=filters.since_at, until=filters.until_at,
        before_id=decode_int_cursor(filters.cursor), limit=limit,
    )
    rows = (await db.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    orgs = await _names(db, Org, {r[0].org_id for r in rows} | {r[0].window_id for r in rows
                                                                if r[0].window_id})
    items_by_id = await _names(db, Item, {r[0].item_id for r in rows if r[0].item_id})
    out = []
    for ev, case_no, org_code, item_code, window_code, staff_no in rows:
        target = evaluation_service.Target(case_no=case_no, org_code=org_code,
                                           item_code=item_code, window_code=window_code,
                                           staff_no=staff_no, region_code=ev.region_code)
        item = evaluation_service.read_from_row(queries.row_dict(ev), target, rules)
        item["comment"] = mask_text(item["comment"])
        item["reason_texts"] = [rules.tags[c].text if c in rules.tags else c
                                for c in item["reasons"]]
        item["org_name"] = orgs.get(ev.org_id, "")
        item["window_name"] = orgs.get(ev.window_id, "") if ev.window_id else ""
        item["item_name"] = items_by_id.get(ev.item_id, "") if ev.item_id else ""
        out.append(item)
    return EvaluationPage(items=out, next_cursor=encode_cursor(rows[-1][0].id) if more else None)
