"""Read side of the monthly report: the lists beside the figures (bad reviews, overdue
orders, appeals), the staff with a substantiated bad review, and the archive's list.

The figures themselves come from `analytics.metrics`; these are rows, never rates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.appeals.models import Appeal
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Item, Org, Region, Staff
from haochaping.reports.models import MonthlyReport
from haochaping.workorders.models import WorkOrder

E, W = Evaluation, WorkOrder
OPEN_STATES_DONE = ("closed", "invalidated")


def region_orgs(region_path: str) -> Select[Any]:
    """The ids of the organisations located in a region or below it."""
    codes = select(Region.code).where(Region.path.startswith(region_path, autoescape=True))
    return select(Org.id).where(Org.region_code.in_(codes))


async def bad_reviews(
    db: AsyncSession,
    *,
    region_path: str,
    since: datetime,
    until: datetime,
    bad_levels: Sequence[int],
) -> list[dict[str, Any]]:
    """The first bad ratings received in the range in the region, oldest first, with their
    serving unit, staff, item and work order."""
    window = aliased(Org)
    stmt = (
        select(
            E.id,
            E.received_at,
            E.level,
            Org.name.label("org_name"),
            window.name.label("window_name"),
            Staff.staff_no,
            Item.name.label("item_name"),
            W.id.label("order_id"),
            W.state,
            W.rectify_due_at,
            W.rectified_at,
            W.closed_at,
        )
        .join(Org, Org.id == E.org_id)
        .outerjoin(window, window.id == E.window_id)
        .outerjoin(Staff, Staff.id == E.staff_id)
        .outerjoin(Item, Item.id == E.item_id)
        .outerjoin(W, W.evaluation_id == E.id)
        .where(
            E.org_id.in_(region_orgs(region_path)),
            E.eval_count == 1,
            E.level.in_(list(bad_levels)),
            E.received_at >= since,
            E.received_at < until,
        )
        .order_by(E.received_at, E.id)
    )
    if bad_levels and max(bad_levels) <= 2:
        # The predicate of the partial index `ix_evaluation_org_received_bad`, inline (a
        # prepared statement's parameters prove nothing): the month's bad ratings of each
        # organisation as an index range, not the month's every rating (10M ratings: ~10,000
        # of ~830,000).
        stmt = stmt.where(E.level <= literal_column("2"), E.eval_count == literal_column("1"))
    return [dict(r._mapping) for r in (await db.execute(stmt)).all()]


async def overdue_orders(
    db: AsyncSession, *, region_path: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Work orders of the region's units that went past a deadline in the range, or before
    it and are not finished yet (`overdue_at`, set by the deadline job), oldest first."""
    stmt = (
        select(
            W.id,
            Org.name.label("org_name"),
            W.opened_at,
            W.state,
            W.overdue_at,
            W.escalations,
            W.closed_at,
        )
        .join(Org, Org.id == W.org_id)
        .where(
            W.org_id.in_(region_orgs(region_path)),
            W.overdue_at.is_not(None),
            W.overdue_at < until,
            or_(W.overdue_at >= since, W.state.not_in(OPEN_STATES_DONE)),
        )
        .order_by(W.overdue_at, W.id)
    )
    return [dict(r._mapping) for r in (await db.execute(stmt)).all()]


async def appeals(
    db: AsyncSession, *, region_path: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Appeals filed in the range by the region's units, with their outcome."""
    stmt = (
        select(
            Appeal.id,
            Appeal.work_order_id,
            Org.name.label("org_name"),
            Appeal.category,
            Appeal.filed_at,
            Appeal.state,
            Appeal.decided_at,
            Appeal.register_rater,
        )
        .join(Org, Org.id == Appeal.org_id)
        .where(
            Appeal.org_id.in_(region_orgs(region_path)),
            Appeal.filed_at >= since,
            Appeal.filed_at < until,
        )
        .order_by(Appeal.filed_at, Appeal.id)
    )
    return [dict(r._mapping) for r in (await db.execute(stmt)).all()]


async def substantiated_staff(
    db: AsyncSession,
    *,
    staff_nos: Sequence[str],
    since: datetime,
    until: datetime,
    bad_levels: Sequence[int],
) -> set[str]:
    """Those of these staff numbers with a substantiated bad review received in the range: a
    first bad rating whose work order was verified as a real problem (核实属实: `verified_at`
    set) and not later found invalid (an upheld appeal, a review)."""
    if not staff_nos:
        return set()
    stmt = (
        select(Staff.staff_no)
        .distinct()
        .select_from(E)
        .join(Staff, Staff.id == E.staff_id)
        .join(W, W.evaluation_id == E.id)
        .where(
            Staff.staff_no.in_(list(staff_nos)),
            E.eval_count == 1,
            E.level.in_(list(bad_levels)),
            E.received_at >= since,
            E.received_at < until,
            and_(W.verified_at.is_not(None), W.state != "invalidated"),
        )
    )
    return set((await db.execute(stmt)).scalars().all())


async def consenting_staff(db: AsyncSession, staff_nos: Sequence[str]) -> dict[str, Staff]:
    """The staff among these whose consent to be named in public is on record."""
    if not staff_nos:
        return {}
    rows = await db.execute(
        select(Staff).where(
            Staff.staff_no.in_(list(staff_nos)), Staff.publish_consent_at.is_not(None)
        )
    )
    return {s.staff_no: s for s in rows.scalars().all()}


def reports_in(region_path: str, region_code: str | None, month: str | None):
    """The archived reports of a region and the regions below it, newest month first."""
    stmt = (
        select(MonthlyReport)
        .join(Region, Region.code == MonthlyReport.region_code)
        .where(Region.path.startswith(region_path, autoescape=True))
        .order_by(MonthlyReport.month.desc(), MonthlyReport.region_code)
    )
    if region_code:
        stmt = stmt.where(MonthlyReport.region_code == region_code)
    if month:
        stmt = stmt.where(MonthlyReport.month == month)
    return stmt


async def find(db: AsyncSession, region_code: str, month: str) -> MonthlyReport | None:
    """The archived report of a region and month, if written."""
    return (
        await db.execute(
            select(MonthlyReport).where(
                MonthlyReport.region_code == region_code, MonthlyReport.month == month
            )
        )
    ).scalar_one_or_none()


async def actor_region(db: AsyncSession, org_id: int) -> Region | None:
    """The region of a person's organisation."""
    return (
        await db.execute(
            select(Region).join(Org, Org.region_code == Region.code).where(Org.id == org_id)
        )
    ).scalar_one_or_none()
