"""The statistics' periodic work besides the rollups: keeping the rankings people ask for most
(`analytics/snapshots.py`), run by the scheduler after the rollups' refresh."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.analytics import metrics
from haochaping.analytics import periods as P
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.core.timeutil import utcnow
from haochaping.orgs.models import Org, Region

log = logging.getLogger(__name__)

# What `warm` keeps for each top organisation: every tier of the last closed months,
# quarters and years; for each region of the top two tiers, the last closed months (the
# public region pages, the monthly 通报 and its consecutive-bottom lists).
WARM_MONTHS = 12
WARM_QUARTERS = 4
WARM_YEARS = 1
WARM_REGION_TIERS = 2
WARM_REGION_MONTHS = 3
# A pass stops computing after this long; the next pass goes on where it stopped.
WARM_BUDGET_SECONDS = 20.0
# Between two computed rankings: room for the requests of the process it runs in (`serve`
# runs the periodic job in-process) and, on SQLite, for their writes.
WARM_PAUSE_SECONDS = 0.05


@dataclass
class WarmReport:
    kept: int = 0  # answers computed and kept this pass
    held: int = 0  # answers already kept and still good
    seconds: float = 0.0
    left: bool = False  # stopped at the time budget; the next pass goes on

    def __str__(self) -> str:
        more = "，余下的下一轮继续" if self.left else ""
        return f"榜单快照：新算 {self.kept} 个，沿用 {self.held} 个（{self.seconds:.1f} 秒）{more}"


@dataclass(frozen=True, slots=True)
class _Question:
    actor: Principal
    region_code: str | None
    period: str


def _system_at(org_id: int, path: str) -> Principal:
    return Principal(kind="system", id=0, name="榜单快照", org_id=org_id, org_path=path)


_EVERYWHERE = Principal(kind="system", id=0, name="榜单快照", org_id=0, org_path="/")


async def _questions(
    db: AsyncSession,
    now: datetime,
    org_codes: Sequence[str] | None,
    region_codes: Sequence[str] | None,
) -> list[_Question]:
    last_month = P.current_period("month", now).previous()
    closed = [last_month.shift(-i).label for i in range(WARM_MONTHS)]
    last_quarter = P.current_period("quarter", now).previous()
    closed += [last_quarter.shift(-i).label for i in range(WARM_QUARTERS)]
    last_year = P.current_period("year", now).previous()
    closed += [last_year.shift(-i).label for i in range(WARM_YEARS)]
    region_months = {last_month.shift(-i).label for i in range(WARM_REGION_MONTHS)}
    tops = select(Org.id, Org.path).order_by(Org.path)
    tops = tops.where(Org.code.in_(org_codes) if org_codes is not None else Org.parent_id.is_(None))
    roots = (await db.execute(tops)).all()
    regions = select(Region.code).order_by(Region.tier, Region.code)
    regions = regions.where(
        Region.code.in_(region_codes)
        if region_codes is not None
        else Region.tier <= WARM_REGION_TIERS
    )
    region_list = (await db.execute(regions)).scalars().all()
    out: list[_Question] = []
    # Recent periods first: when the budget runs out, the oldest wait.
    for period in closed:
        out += [_Question(_system_at(org_id, path), None, period) for org_id, path in roots]
        if period in region_months:
            out += [_Question(_EVERYWHERE, code, period) for code in region_list]
    return out


async def warm(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    budget: float = WARM_BUDGET_SECONDS,
    org_codes: Sequence[str] | None = None,
    region_codes: Sequence[str] | None = None,
) -> WarmReport:
    """Keep the rankings people ask for most (own transactions, one per answer); those
    already kept and still good cost a look-up each. `org_codes`, `region_codes`: only
    these organisations' and regions' (default: the top organisations, the regions of the
    top two tiers)."""
    start = time.monotonic()
    report = WarmReport()
    async with sessionmaker() as db:
        questions = await _questions(db, now or utcnow(), org_codes, region_codes)
    for q in questions:
        for tier in metrics.TIERS:
            if time.monotonic() - start > budget:
                report.left = True
                report.seconds = time.monotonic() - start
                return report
            try:
                async with sessionmaker() as db:
                    if await metrics.keep_ranking(
                        db=db,
                        actor=q.actor,
                        tier=tier,  # type: ignore[arg-type]
                        period=q.period,
                        region_code=q.region_code,
                    ):
                        await db.commit()
                        report.kept += 1
                        await asyncio.sleep(WARM_PAUSE_SECONDS)
                    else:
                        report.held += 1
            except NotFound:  # a region or organisation removed since the list was read
                log.info("ranking warm-up: %s %s %s gone", q.region_code, q.period, tier)
    report.seconds = time.monotonic() - start
    return report
