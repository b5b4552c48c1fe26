"""The periodic work of a running province, done once at the end of the demo load by the
product's own jobs: spot-check sampling and a few calls, the fake-rating detectors and a
review, then (after the load has committed) ledger sealing and outbox delivery."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.config import Settings
from haochaping.core import jobs as job_state
from haochaping.core import outbox
from haochaping.demo.workflow import Cast
from haochaping.evaluations.models import Evaluation
from haochaping.integrations import build_notifier
from haochaping.integrity import service as integrity_service
from haochaping.integrity.jobs import BatchReport, run_batch
from haochaping.integrity.models import IntegrityFlag
from haochaping.ledger import jobs as ledger_jobs
from haochaping.policies.service import PolicyCache
from haochaping.workorders import jobs, spotchecks
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import SpotCheck

Progress = Callable[[str, int, int], None]
GOOD_LEVELS = frozenset({3, 4, 5})
SPOT_CALLS = 120  # spot checks called back during the load (the rest wait in the queue)


@dataclass
class Upkeep:
    spot_checks: int = 0
    spot_calls: Counter[str] = field(default_factory=Counter)
    flags: BatchReport = field(default_factory=BatchReport)
    reviewed: Counter[str] = field(default_factory=Counter)


async def sample_spot_checks(db: AsyncSession, progress: Progress | None = None) -> int:
    """The deadline job's spot-check sampling over every demo rating (it works in batches
    behind a watermark: run it until the watermark reaches the newest rating)."""
    policies = PolicyCache()
    top = (await db.execute(select(func.max(Evaluation.id)))).scalar() or 0
    made = 0
    while True:
        report = jobs.SweepReport()
        before = await job_state.watermark(db, "spot_check")
        await jobs.sample_spot_checks(db, policies, report, GOOD_LEVELS)
        made += report.spot_checks
        after = await job_state.watermark(db, "spot_check")
        if progress:
            progress("抽查回访抽样", min(after, top), top)
        if after == before or after >= top:
            return made


async def call_spot_checks(
    db: AsyncSession,
    *,
    cast: Cast,
    ctx: LoopContext,
    rng: random.Random,
    avoid_org: int | None,
    calls: int = SPOT_CALLS,
) -> Counter[str]:
    """Some of the sampled good ratings called back through the spot-check service; a
    dissatisfied answer opens a work order there and then, as in the console."""
    rows = (
        await db.execute(
            select(SpotCheck.id, SpotCheck.org_id)
            .where(SpotCheck.state == "pending")
            .order_by(SpotCheck.id)
        )
    ).all()
    rows = [r for r in rows if r.org_id in cast.orgs]  # the demo's own, not other data's
    done: Counter[str] = Counter()
    for check_id, org_id in rng.sample(rows, min(calls, len(rows) // 4)):
        r = rng.random()
        if r < 0.1:
            data = wo_schemas.SpotCheckCallbackIn(method="phone", reached=False, note="无人接听")
        else:
            verdict = "satisfied" if r < 0.85 else "basic" if r < 0.97 else "dissatisfied"
            if verdict == "dissatisfied" and org_id == avoid_org:
                verdict = "basic"
            data = wo_schemas.SpotCheckCallbackIn.model_validate(
                {"method": rng.choice(["phone", "sms"]), "reached": True, "verdict": verdict}
            )
        await spotchecks.record(
            db=db, principal=cast.handler(org_id), spot_check_id=check_id, data=data, ctx=ctx
        )
        done[data.verdict or "unreached"] += 1
    return done


async def detect(
    db: AsyncSession, *, cast: Cast, ctx: LoopContext, now: datetime
) -> tuple[BatchReport, Counter[str]]:
    """The detectors' batch pass at `now`; one linked group of bad ratings is then judged fake
    by the province office (its work order ends invalidated); the other flags wait."""
    report = await run_batch(db, keys=ctx.keys, now=now)
    reviewed: Counter[str] = Counter()
    flag = (
        await db.execute(
            select(IntegrityFlag)
            .where(
                IntegrityFlag.check_name == "coordinated_bad",
                IntegrityFlag.state == "open",
                IntegrityFlag.org_id.in_(list(cast.orgs)),  # the demo's own
            )
            .order_by(IntegrityFlag.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if flag is not None:
        await integrity_service.review(
            db=db,
            actor=cast.manager(flag.org_id),
            flag_id=flag.id,
            decision=integrity_service.Decision.INVALIDATE,
            note="经调取设备记录，评价人之间共用同一手机和设备，系组织差评，判定无效。",
        )
        reviewed["invalidated"] += 1
    return report, reviewed


@dataclass
class Finish:
    sealed: ledger_jobs.SealReport
    delivered: outbox.DeliveryReport


async def finish(
    maker: async_sessionmaker[AsyncSession], settings: Settings, progress: Progress | None = None
) -> Finish:
    """After the load commits: seal the ratings into the ledger and deliver the outbox, each
    in the short transactions the worker uses."""
    total = 0
    if progress:
        async with maker() as db:
            total = (await db.execute(select(func.count()).select_from(Evaluation))).scalar_one()

    def sealed(report: ledger_jobs.SealReport) -> None:
        if progress:
            progress("评价存证封存", report.ratings, total)

    seal = await ledger_jobs.seal_pending(maker, on_block=sealed)
    notifier = build_notifier(settings)
    sent = outbox.DeliveryReport()
    while True:
        report = await outbox.deliver_due(maker, notifier, worker_id="demo-load", batch=500)
        for name in ("claimed", "sent", "failed", "dead"):
            setattr(sent, name, getattr(sent, name) + getattr(report, name))
        if progress:
            progress("通知投递", sent.claimed, sent.claimed)
        if report.claimed == 0:
            return Finish(seal, sent)
