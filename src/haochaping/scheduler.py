"""The scheduler: one pass runs every domain's periodic work (the work-order deadline sweep, the
appeal sweep, the integrity batch checks, ledger sealing, the statistics' rollups), then outbox
delivery. Used by the loop inside `haochaping serve` and by `haochaping worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from haochaping.analytics import rollups
from haochaping.appeals import jobs as appeal_jobs
from haochaping.core import outbox
from haochaping.core.timeutil import utcnow
from haochaping.integrity import jobs as integrity_jobs
from haochaping.ledger import jobs as ledger_jobs
from haochaping.workorders import jobs

log = logging.getLogger("haochaping.jobs")
# Ratings folded into the rollups per pass at most: a first fold of millions spreads over
# passes instead of holding up the deadline sweep.
ROLLUP_LIMIT = 1_000_000


@dataclass
class PassReport:
    """What one pass did, part by part (printed by `haochaping worker --once`)."""

    sweep: jobs.SweepReport
    integrity: integrity_jobs.BatchReport
    sealed: str
    delivery: outbox.DeliveryReport

    def __iter__(self):  # `report, delivery = await run_pass(...)`
        return iter((self.sweep, self.delivery))

    def __str__(self) -> str:
        return "\n".join(
            (
                f"期限检查：{self.sweep}",
                f"{self.integrity}",
                f"评价存证：{self.sealed}",
                f"通知投递：{self.delivery}",
            )
        )


async def run_pass(state: Any, *, force_integrity: bool = False) -> PassReport:
    """One pass: sweep deadlines (one transaction), the detectors' batch checks when due (or
    `force_integrity`), seal new ratings, deliver what is due."""
    async with state.sessionmaker() as db:
        report = await jobs.sweep(
            db,
            policies=state.policy_cache,
            tagset_version=state.rules.tagset_version,
            good_levels=state.rules.good_levels,
        )
        report.appeals = await appeal_jobs.sweep(db, utcnow())
        await db.commit()
    # The detectors' batch checks, once per interval across processes (never raises).
    integrity = await integrity_jobs.run_due(state, force=force_integrity)
    try:  # seal new ratings into the ledger (its own transactions; never blocks intake)
        sealed = await ledger_jobs.seal_pending(state.sessionmaker)
        sealed_text = str(sealed)
        if sealed.blocks:
            log.info("ledger: %s", sealed)
    except Exception:  # noqa: BLE001 - delivery must still run; the next pass seals them
        log.exception("ledger seal failed")
        sealed_text = "封存失败（详见日志），下一轮重试"
    try:  # the statistics' rollups: new ratings and standing changes (own transactions)
        rolled = await rollups.refresh(state.sessionmaker, limit=ROLLUP_LIMIT)
        if rolled.folded or rolled.events:
            log.info("rollups: %s", rolled)
    except Exception:  # noqa: BLE001 - the reads stay exact (live tail); the next pass folds
        log.exception("rollup refresh failed")
    delivery = await outbox.deliver_due(
        state.sessionmaker,
        state.notifier,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        policy=outbox.DeliveryPolicy.from_settings(state.settings),
    )
    return PassReport(sweep=report, integrity=integrity, sealed=sealed_text, delivery=delivery)


# After a failed pass the next one waits 1, 2, 4 ... seconds, at most a minute (or the
# interval when it is longer): a database that is down is not hammered, and its return is
# noticed within a minute.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the n-th failed pass in a row (n >= 1)."""
    return min(cap, base * 2 ** min(failures - 1, 30))


async def run_forever(
    state: Any,
    interval: float,
    *,
    backoff_base: float = BACKOFF_BASE_SECONDS,
    backoff_max: float = BACKOFF_MAX_SECONDS,
) -> None:
    """Pass after pass until cancelled; a failing pass is retried with exponential back-off.

    The log says when passes start failing (once, with the traceback) and when they work
    again (one line), not at every failed pass. Between passes, a commit that enqueued
    notifications wakes the loop to deliver them at once (after commit, never before)."""
    wake = asyncio.Event()
    outbox.on_commit_wake(wake.set)
    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    failures = 0
    cap = max(backoff_max, interval)
    try:
        while True:
            wake.clear()  # before the work: a commit during it wakes the next round
            try:
                if loop.time() >= next_sweep or failures:
                    report, delivery = await run_pass(state)
                    next_sweep = loop.time() + interval
                    if (
                        any(report.warned.values())
                        or any(report.escalated.values())
                        or delivery.claimed
                    ):
                        log.info("deadline job: %s; outbox: %s", report, delivery)
                else:
                    await deliver(state)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the job must survive a bad pass
                failures += 1
                if failures == 1:
                    log.exception(
                        "deadline job pass failed; retrying with back-off "
                        "(logged again when it recovers)"
                    )
                delay = backoff_delay(failures, base=backoff_base, cap=cap)
                # No wake-up on a commit while failing: wait out the back-off.
                await asyncio.sleep(delay)
                continue
            if failures:
                log.warning("deadline job recovered after %d failed passes", failures)
                failures = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.0, next_sweep - loop.time()))
    finally:
        outbox.forget_wake(wake.set)


async def deliver(state: Any) -> outbox.DeliveryReport:
    """Deliver what is due now (used when a commit wakes the loop)."""
    return await outbox.deliver_due(
        state.sessionmaker,
        state.notifier,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        policy=outbox.DeliveryPolicy.from_settings(state.settings),
    )
