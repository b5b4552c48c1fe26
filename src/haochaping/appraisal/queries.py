"""Read side of the appraisal: schemes, bonus items and the units of a tier."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appraisal.models import AppraisalAdjustment, AppraisalScheme
from haochaping.core.auth import Principal
from haochaping.orgs.models import Org, Region


async def schemes(
    db: AsyncSession,
    *,
    region_paths: Sequence[str],
    region_code: str | None = None,
    year: int | None = None,
    limit: int = 200,
) -> list[AppraisalScheme]:
    """Scheme versions of the regions at or below any of `region_paths`, newest year and
    version first."""
    stmt = (
        select(AppraisalScheme)
        .join(Region, Region.code == AppraisalScheme.region_code)
        .order_by(
            AppraisalScheme.year.desc(),
            AppraisalScheme.region_code,
            AppraisalScheme.version.desc(),
        )
        .limit(limit)
    )
    if region_paths:
        stmt = stmt.where(or_(*(Region.path.startswith(p, autoescape=True) for p in region_paths)))
    if region_code:
        stmt = stmt.where(AppraisalScheme.region_code == region_code)
    if year:
        stmt = stmt.where(AppraisalScheme.year == year)
    return list((await db.execute(stmt)).scalars().all())


async def scheme_version(
    db: AsyncSession, *, region_code: str, year: int, version: int | None
) -> AppraisalScheme | None:
    """The given version of a region's scheme for a year, or its newest."""
    stmt = select(AppraisalScheme).where(
        AppraisalScheme.region_code == region_code, AppraisalScheme.year == year
    )
    if version is not None:
        stmt = stmt.where(AppraisalScheme.version == version)
    stmt = stmt.order_by(AppraisalScheme.version.desc()).limit(1)
    return (await db.execute(stmt)).scalar_one_or_none()


async def last_version(db: AsyncSession, *, region_code: str, year: int) -> int:
    stmt = select(func.max(AppraisalScheme.version)).where(
        AppraisalScheme.region_code == region_code, AppraisalScheme.year == year
    )
    return int((await db.execute(stmt)).scalar() or 0)


async def units(db: AsyncSession, *, actor: Principal, region: Region, kind: str) -> list[Org]:
    """The organisations of a kind located in a region or below it, inside the caller's
    subtree, by code."""
    codes = select(Region.code).where(Region.path.startswith(region.path, autoescape=True))
    stmt = (
        select(Org)
        .where(
            Org.kind == kind,
            Org.region_code.in_(codes),
            Org.path.startswith(actor.org_path, autoescape=True),
        )
        .order_by(Org.code)
    )
    return list((await db.execute(stmt)).scalars().all())


async def adjustment_totals(
    db: AsyncSession, *, org_ids: Sequence[int], months: Sequence[str]
) -> dict[int, int]:
    """Org id -> the sum of its bonus/deduction items in those months, in tenths."""
    if not org_ids:
        return {}
    stmt = (
        select(AppraisalAdjustment.org_id, func.sum(AppraisalAdjustment.points_tenths))
        .where(
            AppraisalAdjustment.org_id.in_(list(org_ids)),
            AppraisalAdjustment.month.in_(list(months)),
        )
        .group_by(AppraisalAdjustment.org_id)
    )
    out: dict[int, int] = defaultdict(int)
    for org_id, total in (await db.execute(stmt)).all():
        out[int(org_id)] = int(total or 0)
    return dict(out)


async def adjustments(
    db: AsyncSession,
    *,
    actor: Principal,
    region: Region,
    months: Sequence[str] | None = None,
    limit: int = 200,
) -> list[tuple[AppraisalAdjustment, Org]]:
    """Bonus/deduction items of the units in a region (and below), inside the caller's
    subtree, newest first."""
    codes = select(Region.code).where(Region.path.startswith(region.path, autoescape=True))
    stmt = (
        select(AppraisalAdjustment, Org)
        .join(Org, Org.id == AppraisalAdjustment.org_id)
        .where(
            Org.region_code.in_(codes),
            Org.path.startswith(actor.org_path, autoescape=True),
        )
        .order_by(AppraisalAdjustment.id.desc())
        .limit(limit)
    )
    if months:
        stmt = stmt.where(AppraisalAdjustment.month.in_(list(months)))
    return [(a, o) for a, o in (await db.execute(stmt)).all()]
