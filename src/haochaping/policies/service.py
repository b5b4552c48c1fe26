"""Policy use cases: publish a new version for a region; resolve the effective values."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid, NotFound
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.orgs.models import Org, Region
from haochaping.orgs.service import get_region
from haochaping.policies import schemas
from haochaping.policies.models import PolicySet

CACHE_SECONDS = 30.0


def today_local() -> date:
    return utcnow().astimezone(SHANGHAI).date()


def merge(layers: list[dict[str, Any]]) -> schemas.PolicyValues:
    """Defaults, then each region's own values from the root down; validated as a whole."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        return schemas.PolicyValues.model_validate(merged)
    except ValueError as exc:
        raise Invalid(f"政策参数组合无效：{exc}", code="invalid_policy") from exc


def _region_codes(path: str) -> list[str]:
    return [c for c in path.split("/") if c]


async def _actor_region_path(db: AsyncSession, actor: Principal) -> str:
    row = (
        await db.execute(
            select(Region.path)
            .join(Org, Org.region_code == Region.code)
            .where(Org.id == actor.org_id)
        )
    ).scalar_one_or_none()
    return row or "/"


async def create_policy(
    *, db: AsyncSession, actor: Principal, data: schemas.PolicyCreate
) -> PolicySet:
    """Publish the next version of a region's policy (admins anywhere, offices in their area)."""
    region = await get_region(db=db, code=data.region_code)
    if actor.role != "admin" and not region.path.startswith(await _actor_region_path(db, actor)):
        raise Forbidden("只能维护本辖区的政策", code="out_of_scope")
    own = data.values.model_dump(mode="json", exclude_none=True)
    # Validate the result of inheriting these values, so an invalid mix never lands.
    ancestors = await _layers(
        db, region.path, data.effective_from or today_local(), exclude=region.code
    )
    merge([*ancestors, own])
    last = (
        await db.execute(
            select(func.max(PolicySet.version)).where(PolicySet.region_code == region.code)
        )
    ).scalar()
    policy = PolicySet(
        region_code=region.code,
        version=(last or 0) + 1,
        effective_from=data.effective_from or today_local(),
        values=own,
        note=data.note,
        created_by=actor.name,
    )
    db.add(policy)
    await db.flush()
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.PUBLISH_POLICY,
        target_type="policy_set",
        target_id=policy.id,
        detail={
            "region_code": region.code,
            "version": policy.version,
            "effective_from": policy.effective_from.isoformat(),
        },
    )
    return policy


async def _sets(
    db: AsyncSession, region_path: str, on: date, exclude: str | None = None
) -> list[PolicySet]:
    """The policy sets in force on a day along a region's path, from the root down."""
    codes = [c for c in _region_codes(region_path) if c != exclude]
    rows = (
        (
            await db.execute(
                select(PolicySet)
                .where(PolicySet.region_code.in_(codes), PolicySet.effective_from <= on)
                .order_by(PolicySet.version)
            )
        )
        .scalars()
        .all()
    )
    latest: dict[str, PolicySet] = {}
    for p in rows:
        latest[p.region_code] = p
    return [latest[c] for c in codes if c in latest]


async def _layers(
    db: AsyncSession, region_path: str, on: date, exclude: str | None = None
) -> list[dict[str, Any]]:
    return [p.values for p in await _sets(db, region_path, on, exclude)]


async def _region_sets(
    db: AsyncSession, region_code: str, on: date | None = None
) -> list[PolicySet]:
    region = await get_region(db=db, code=region_code)
    return await _sets(db, region.path, on or today_local())


async def effective(
    *, db: AsyncSession, region_code: str, on: date | None = None
) -> tuple[schemas.PolicyValues, int | None]:
    """The values in force for a region on a day, and the id of the most specific set."""
    layers = await _region_sets(db, region_code, on)
    return merge([p.values for p in layers]), (layers[-1].id if layers else None)


_Entry = tuple[
    float, schemas.PolicyValues, int | None, frozenset[str], dict[str, schemas.StageRule]
]


class PolicyCache:
    """Effective policy per region for the hot paths, refreshed every 30 s or on edit."""

    def __init__(self) -> None:
        # region -> (expires, values, policy id, the keys some region's set gives explicitly,
        # the stage map intake checks every rating against)
        self._data: dict[str, _Entry] = {}

    def clear(self) -> None:
        self._data.clear()

    async def _entry(self, db: AsyncSession, region_code: str) -> _Entry:
        hit = self._data.get(region_code)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit
        layers = await _region_sets(db, region_code)
        values = merge([p.values for p in layers])
        entry = (
            now + CACHE_SECONDS,
            values,
            layers[-1].id if layers else None,
            frozenset(k for p in layers for k, v in p.values.items() if v is not None),
            values.stage_map(),
        )
        self._data[region_code] = entry
        return entry

    async def get(
        self, db: AsyncSession, region_code: str
    ) -> tuple[schemas.PolicyValues, int | None]:
        _, values, policy_id, _, _ = await self._entry(db, region_code)
        return values, policy_id

    async def window_days(self, db: AsyncSession, region_code: str, default: int) -> int:
        """The rating window of a region: its policy's when a region above or at it sets
        one, else the service's default (`HAOCHAPING_EVALUATION_WINDOW_DAYS`)."""
        try:
            _, values, _, explicit, _ = await self._entry(db, region_code)
        except NotFound:  # an organisation outside the region tree: the national default
            return default
        return values.evaluation_window_days if "evaluation_window_days" in explicit else default

    async def stages(self, db: AsyncSession, region_code: str) -> dict[str, schemas.StageRule]:
        """The stages a case of this region may be rated at, by code; a cached lookup on the
        intake path, never a query of its own."""
        try:
            return (await self._entry(db, region_code))[4]
        except NotFound:  # an organisation outside the region tree: the national default
            return DEFAULT_STAGES


# What a region without a policy of its own rates: the whole case, from acceptance.
DEFAULT_STAGES = schemas.PolicyValues().stage_map()
