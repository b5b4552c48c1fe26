"""The batch pass of the detectors: each batch check over recent ratings, at most once per
interval across processes, each check in its own transaction so one failing check neither
stops the others nor holds a write lock through the whole pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import jobs as job_state
from haochaping.core.timeutil import utcnow
from haochaping.db.crypto import DataKeys
from haochaping.integrity.choices import FlagStage
from haochaping.integrity.detectors import BatchContext, Check, Thresholds, batch_checks
from haochaping.integrity.flags import raise_flags

log = logging.getLogger("haochaping.integrity")
INTERVAL_SECONDS = 600
SLOT = "integrity_batch"


@dataclass
class BatchReport:
    """New flags per check, and the checks that failed."""

    flagged: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{name} {n}" for name, n in self.flagged.items() if n]
        text = "新增疑似刷评标记：" + ("，".join(parts) if parts else "无")
        return text + (f"；失败的检测：{', '.join(self.failed)}" if self.failed else "")


async def run_check(db: AsyncSession, check: Check, ctx: BatchContext) -> int:
    """One batch check: scan, then flag (the caller commits); the number of new flags."""
    found = await check.scan(ctx)
    return len(await raise_flags(db=db, findings=found, stage=FlagStage.BATCH))


async def run_batch(
    db: AsyncSession,
    *,
    keys: DataKeys,
    now: datetime | None = None,
    thresholds: Thresholds | None = None,
    bad_levels: frozenset[int] = frozenset({1, 2}),
    checks: list[Check] | None = None,
) -> BatchReport:
    """Every batch check in one session, each in a savepoint (the caller commits)."""
    report = BatchReport()
    for check in batch_checks() if checks is None else checks:
        ctx = BatchContext(
            db=db,
            now=now or utcnow(),
            keys=keys,
            thresholds=thresholds or Thresholds(),
            bad_levels=bad_levels,
        )
        try:
            async with db.begin_nested():
                report.flagged[check.name] = await run_check(db, check, ctx)
        except Exception:  # noqa: BLE001 - one broken check must not stop the others
            log.exception("integrity check %s failed", check.name)
            report.failed.append(check.name)
    return report


async def claim(db: AsyncSession, now: datetime, interval: int = INTERVAL_SECONDS) -> bool:
    """Take this interval's pass (a conditional UPDATE: one process wins)."""
    return await job_state.claim_slot(db, SLOT, now=now, interval=interval)


async def run_due(state: Any, *, now: datetime | None = None) -> BatchReport | None:
    """The job runner's step: a batch pass when the interval has passed; never raises."""
    now = now or utcnow()
    try:
        async with state.sessionmaker() as db:
            if not await claim(db, now):
                return None
            await db.commit()
        report = BatchReport()
        bad_levels = frozenset(range(1, 6)) - frozenset(state.rules.good_levels)
        for check in batch_checks():
            async with state.sessionmaker() as db:
                ctx = BatchContext(db=db, now=now, keys=state.keys, bad_levels=bad_levels)
                try:
                    report.flagged[check.name] = await run_check(db, check, ctx)
                    await db.commit()
                except Exception:  # noqa: BLE001 - logged; the next pass tries again
                    log.exception("integrity check %s failed", check.name)
                    report.failed.append(check.name)
    except Exception:  # noqa: BLE001 - the job runner's other work goes on
        log.exception("integrity batch pass failed")
        return None
    if any(report.flagged.values()) or report.failed:
        log.info("integrity: %s", report)
    return report
