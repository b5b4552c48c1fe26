"""The scheduler: one pass runs every domain's periodic work (the work-order deadline sweep, the
appeal sweep, the integrity batch checks, ledger sealing, the statistics' rollups, the monthly
reports), then outbox delivery. Used by the loop inside `haochaping serve` and by
`haochaping worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from haochaping.analytics import jobs as analytics_jobs
from haochaping.analytics import rollups
from haochaping.appeals import jobs as appeal_jobs
from haochaping.core import jobs as core_jobs
from haochaping.core import outbox
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import partitions
from haochaping.evaluations import sms as sms_ratings
from haochaping.exchange import jobs as exchange_jobs
from haochaping.integrity import jobs as integrity_jobs
from haochaping.ledger import jobs as ledger_jobs
from haochaping.reports import jobs as report_jobs
from haochaping.topics import jobs as topic_jobs
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
    reports: str = ""
    sms: str = ""
    upstream: str = ""
    partitions: str = ""

    def __iter__(self):  # `report, delivery = await run_pass(...)`
        return iter((self.sweep, self.delivery))

    def __str__(self) -> str:
        return "\n".join(
            (
                f"期限检查：{self.sweep}",
                f"{self.integrity}",
                f"评价存证：{self.sealed}",
                f"{self.reports}",
                f"{self.sms}",
                *([self.partitions] if self.partitions else []),
                f"通知投递：{self.delivery}",
                *([f"上报上级平台：{self.upstream}"] if self.upstream else []),
            )
        )


async def run_pass(
    state: Any,
    *,
    force_integrity: bool = False,
    send_upstream: bool = False,
    warm_rankings: bool = True,
) -> PassReport:
    """One pass: sweep deadlines (one transaction), the detectors' batch checks when due (or
    `force_integrity`), seal new ratings, deliver what is due; with `send_upstream` (`worker
    --once`: no sender loop runs beside it) also report what is due to the parent."""
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
    if warm_rankings and state.settings.ranking_warm_seconds > 0:
        try:  # the most-asked rankings of closed periods, kept (own transactions)
            warmed = await analytics_jobs.warm(
                state.sessionmaker, budget=state.settings.ranking_warm_seconds
            )
            if warmed.kept:
                log.info("rankings: %s", warmed)
        except Exception:  # noqa: BLE001 - the reads compute what is not kept
            log.exception("ranking warm-up failed")
    try:  # the comments' terms (社情民意): each new comment segmented once (own transactions)
        topics = await topic_jobs.refresh(
            state.sessionmaker, lexicons=getattr(state, "topic_lexicons", None), limit=ROLLUP_LIMIT
        )
        if topics.ratings or topics.changes:
            log.info("topics: %s", topics)
    except Exception:  # noqa: BLE001 - the counts wait; the next pass segments them
        log.exception("topic refresh failed")
    partitions_text = await evaluation_partitions(state)
    reports_text = await monthly_reports(state)
    await reconcile_upstream(state)
    sms_text = await sms_invitations(state)
    delivery = await outbox.deliver_due(
        state.sessionmaker,
        state.notifier,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        policy=outbox.DeliveryPolicy.from_settings(state.settings),
    )
    return PassReport(
        sweep=report,
        integrity=integrity,
        sealed=sealed_text,
        delivery=delivery,
        reports=reports_text,
        sms=sms_text,
        upstream=await upstream_due(state) if send_upstream else "",
        partitions=partitions_text,
    )


async def upstream_due(state: Any) -> str:
    """Report to the parent what is due, both streams until none is (never raises: what a
    failure leaves is sent by the next run, the parent storing nothing twice)."""
    if getattr(state, "upstream", None) is None:
        return ""
    try:
        config = exchange_jobs.UpstreamConfig.from_settings(state.settings)
        return str(await exchange_jobs.send_all_due(state.sessionmaker, state.upstream, config))
    except Exception:  # noqa: BLE001 - the pass's other parts are done; the next run resends
        log.exception("reporting up failed")
        return "发送失败（详见日志），下一轮重试"


async def evaluation_partitions(state: Any, now: datetime | None = None) -> str:
    """PostgreSQL: the ratings' monthly partitions of this month and the next three, created
    ahead so that intake never runs DDL; DEFAULT's ratings reported (never raises)."""
    try:
        async with state.sessionmaker() as db:
            if not partitions.is_partitioned(db):
                return ""
            report = await partitions.ensure_ahead(db, today=partitions.month_of(now or utcnow()))
            await db.commit()
    except Exception:  # noqa: BLE001 - intake goes on (DEFAULT takes what no month does)
        log.exception("evaluation partitions failed")
        return "评价分区：新建失败（详见日志），下一轮重试"
    if report.created or report.blocked or report.in_default:
        # A rating in DEFAULT, or a month that could not be created, is an operator's task.
        level = logging.WARNING if report.in_default or report.blocked else logging.INFO
        log.log(level, "%s", report)
    return str(report)


async def sms_invitations(state: Any, now: datetime | None = None) -> str:
    """The rating links due by SMS (policy `sms_invite_after_hours`; never raises: the next
    pass sends what a failure left out, each once)."""
    settings = state.settings
    try:
        async with state.sessionmaker() as db:
            run = await sms_ratings.invite_due(
                db,
                policies=state.policy_cache,
                secret=settings.secret_key,
                base_url=settings.base_url,
                default_window_days=settings.evaluation_window_days,
                now=now,
            )
            await db.commit()
    except Exception:  # noqa: BLE001 - delivery must still run
        log.exception("sms invitations failed")
        return "短信评价邀请：发送失败（详见日志），下一轮重试"
    return str(run)


async def reconcile_upstream(state: Any, now: datetime | None = None) -> None:
    """Once per HAOCHAPING_UPSTREAM_RECONCILE_INTERVAL_SECONDS across processes, compare the
    last week's days with the parent and send again the days that differ (补报)."""
    interval = state.settings.upstream_reconcile_interval_seconds
    if getattr(state, "upstream", None) is None or interval <= 0:
        return
    async with state.sessionmaker() as db:
        due = await core_jobs.claim_slot(
            db, "exchange_reconcile", now=now or utcnow(), interval=interval
        )
        await db.commit()
    if due:
        await exchange_jobs.reconcile_recent(state)


async def monthly_reports(state: Any, now: datetime | None = None) -> str:
    """The monthly reports due (first working day of a month; never raises: the next pass
    writes those a failure left out, each once)."""
    try:
        async with state.sessionmaker() as db:
            calendar = await state.calendar_cache.get(db)
        run = await report_jobs.write_due(
            state.sessionmaker,
            calendar=calendar,
            upload_dir=Path(state.settings.upload_dir),
            now=now or utcnow(),
        )
    except Exception:  # noqa: BLE001 - delivery must still run
        log.exception("monthly reports failed")
        return "月度通报：生成失败（详见日志），下一轮重试"
    return str(run)


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
    passes = 0
    cap = max(backoff_max, interval)
    try:
        while True:
            wake.clear()  # before the work: a commit during it wakes the next round
            try:
                if loop.time() >= next_sweep or failures:
                    # The first pass runs as the server starts taking requests: the kept
                    # rankings (seconds of work on a big database) wait for the next one.
                    report, delivery = await run_pass(state, warm_rankings=passes > 0)
                    passes += 1
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
