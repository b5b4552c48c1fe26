"""Read side of 监督查评: the visits a person may read (their subtree), newest first, and one
visit with its photos and rating."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import User
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.inspections.models import InspectionPhoto, InspectionVisit
from haochaping.orgs.models import Org
from haochaping.workorders.models import WorkOrder


def visits(*, actor: Principal) -> Select:
    """Visits to units inside the caller's subtree, with the unit's and inspector's names
    and the work order the rating opened (if any), the latest visit first."""
    return (
        select(
            InspectionVisit,
            Org.code,
            Org.name,
            User.username,
            WorkOrder.id.label("work_order_id"),
        )
        .join(Org, Org.id == InspectionVisit.org_id)
        .join(User, User.id == InspectionVisit.inspector_id)
        .outerjoin(WorkOrder, WorkOrder.evaluation_id == InspectionVisit.evaluation_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(InspectionVisit.visited_at.desc(), InspectionVisit.id.desc())
    )


def _view(row: Any) -> dict[str, Any]:
    visit, org_code, org_name, inspector, work_order_id = row[:5]
    return {
        "id": visit.id,
        "org_code": org_code,
        "org_name": org_name,
        "inspector": inspector,
        "visited_at": visit.visited_at,
        "level": visit.level,
        "answers": visit.answers,
        "failed": sum(1 for a in visit.answers if not a.get("passed")),
        "notes": visit.notes,
        "evaluation_id": visit.evaluation_id,
        "work_order_id": work_order_id,
        "visit": visit,
    }


async def visit_page(
    *, db: AsyncSession, actor: Principal, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the visits the caller may read."""
    rows, nxt = await pagination.page(
        db,
        visits(actor=actor),
        key=InspectionVisit.id,
        time_key=InspectionVisit.visited_at,
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    return [_view(r) for r in rows], nxt


async def visit_detail(*, db: AsyncSession, actor: Principal, visit_id: int) -> dict[str, Any]:
    """One visit in the caller's subtree with its photos (404 outside it, as if absent)."""
    row = (await db.execute(visits(actor=actor).where(InspectionVisit.id == visit_id))).first()
    if row is None:
        raise NotFound("查评记录不存在或不在本账号的权限范围内", code="visit_not_found")
    view = _view(row)
    view["photos"] = list(
        (
            await db.execute(
                select(InspectionPhoto)
                .where(InspectionPhoto.visit_id == visit_id)
                .order_by(InspectionPhoto.id)
            )
        ).scalars()
    )
    return view
