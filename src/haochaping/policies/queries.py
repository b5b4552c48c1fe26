"""Read side of the policies: the versions of a region's policy and where each effective value
comes from (the console's policy page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.orgs.models import Region
from haochaping.policies.models import PolicySet


def version_read(p: PolicySet) -> dict[str, Any]:
    """A version of a region's policy as the API and the console show it."""
    return {
        "id": p.id,
        "region_code": p.region_code,
        "version": p.version,
        "effective_from": p.effective_from,
        "values": p.values,
        "note": p.note,
        "created_by": p.created_by,
        "created_at": p.created_at,
    }


async def all_versions(*, db: AsyncSession, region_code: str | None = None) -> list[dict]:
    """Every version of every region's policy (or one region's), by region, newest first."""
    stmt = select(PolicySet).order_by(PolicySet.region_code, PolicySet.version.desc())
    if region_code:
        stmt = stmt.where(PolicySet.region_code == region_code)
    return [version_read(p) for p in (await db.execute(stmt)).scalars()]


async def policy_versions(*, db: AsyncSession, region: Region) -> list[dict[str, Any]]:
    """The versions of the region's policy and of its ancestors', newest first."""
    codes = [c for c in region.path.split("/") if c]
    names = dict(
        (await db.execute(select(Region.code, Region.name).where(Region.code.in_(codes)))).all()
    )
    rows = (
        (
            await db.execute(
                select(PolicySet)
                .where(PolicySet.region_code.in_(codes))
                .order_by(PolicySet.created_at.desc(), PolicySet.id.desc())
            )
        )
        .scalars()
        .all()
    )
    return [
        {
            **version_read(p),
            "region_name": names.get(p.region_code),
            "own": p.region_code == region.code,
        }
        for p in rows
    ]


def policy_sources(region: Region, versions: list[dict[str, Any]], today: Any) -> dict[str, str]:
    """Where each effective value comes from: the nearest region that sets it, else 默认."""
    codes = [c for c in region.path.split("/") if c]
    latest: dict[str, dict[str, Any]] = {}
    for v in sorted(versions, key=lambda v: v["version"]):
        if v["effective_from"] <= today:
            latest[v["region_code"]] = v
    sources: dict[str, str] = {}
    for code in codes:
        if code in latest:
            for key, value in latest[code]["values"].items():
                if value is not None:
                    sources[key] = latest[code]["region_name"] or code
    return sources
