"""Runs the periodic work: the deadline sweep, then outbox delivery. Used by the loop
inside `haochaping serve` and by `haochaping worker`."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from haochaping.appeals import jobs as appeal_jobs
from haochaping.core import outbox
from haochaping.core.timeutil import utcnow
from haochaping.workorders import jobs

log = logging.getLogger("haochaping.jobs")


async def run_pass(state: Any) -> tuple[jobs.SweepReport, outbox.DeliveryReport]:
    """One pass: sweep deadlines (one transaction), then deliver what is due."""
    async with state.sessionmaker() as db:
        report = await jobs.sweep(db, policies=state.policy_cache,
                                  tagset_version=state.rules.tagset_version,
                                  good_levels=state.rules.good_levels)
        report.appeals = await appeal_jobs.sweep(db, utcnow())
        await db.commit()
    delivery = await outbox.deliver_due(
        state.sessionmaker, state.notifier, worker_id=f"{socket.gethostname()}:{os.getpid()}",
        policy=outbox.DeliveryPolicy.from_settings(state.settings))
    return report, delivery


async def run_forever(state: Any, interval: float) -> None:
    """Pass after pass until cancelled; a failing pass is logged and retried next time."""
    while True:
        try:
            report, delivery = await run_pass(state)
            if any(report.warned.values()) or any(report.escalated.values()) or delivery.claimed:
                log.info("deadline job: %s; outbox: %s", report, delivery)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the job must survive a bad pass
            log.exception("deadline job pass failed")
        await asyncio.sleep(interval)
