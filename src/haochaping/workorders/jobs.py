"""The deadline job: warnings, overdue escalation, spot checks, default ratings.

Each step is set-based and guarded by a conditional UPDATE (or a unique key), so a pass is
idempotent and two processes running it at once neither escalate twice nor mail twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core import jobs as job_state
from haochaping.core.timeutil import fmt_local, utcnow
from haochaping.evaluations.choices import DEFAULT_RATING_CHANNEL
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.policies.models import PolicySet
from haochaping.policies.service import PolicyCache
from haochaping.workorders import notify, webhooks
from haochaping.workorders.choices import DeadlineKind
from haochaping.workorders.models import SpotCheck, WorkOrder, WorkOrderEvent
from haochaping.workorders.states import Action, State

W = WorkOrder
# (deadline kind, states it applies in, due column, warn column, warned column)
DEADLINES = [
    (
        DeadlineKind.VERIFY,
        (State.VERIFYING, State.TRANSFERRED),
        W.verify_due_at,
        W.verify_warn_at,
        W.warned_verify_at,
    ),
    (
        DeadlineKind.RECTIFY,
        (State.VERIFYING, State.TRANSFERRED, State.RECTIFYING),
        W.rectify_due_at,
        W.rectify_warn_at,
        W.warned_rectify_at,
    ),
    (
        DeadlineKind.CALLBACK,
        (State.CALLBACK, State.EXPLAINED),
        W.callback_due_at,
        W.callback_warn_at,
        W.warned_callback_at,
    ),
]
# Orders marked (and mailed) per pass, deadline kind and state, most urgent first: a backlog
# after an outage is worked off over several passes, each of bounded size.
DUE_BATCH = 20000
SPOT_CHECK_BATCH = 20000
DEFAULT_RATING_BATCH = 5000


@dataclass
class SweepReport:
    warned: dict[str, int] = field(default_factory=dict)
    escalated: dict[str, int] = field(default_factory=dict)
    spot_checks: int = 0
    default_ratings: int = 0
    appeals: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"预警 {sum(self.warned.values())} 件，超期转督办 {sum(self.escalated.values())} "
            f"件，抽查回访 {self.spot_checks} 件，默认评价 {self.default_ratings} 件"
        )


async def send_warnings(db: AsyncSession, now: datetime, report: SweepReport) -> None:
    """Mark and mail orders whose warning time has come (once each: warned_at IS NULL)."""
    for kind, states, due, warn, warned in DEADLINES:
        # The conditions stand in the UPDATE itself, so a concurrent pass re-checks them.
        is_due = (W.state.in_([s.value for s in states]), warn <= now, due > now, warned.is_(None))
        rows = (
            await db.execute(
                update(W)
                .where(
                    W.id.in_(select(W.id).where(*is_due).order_by(due).limit(DUE_BATCH)), *is_due
                )
                .values({warned.key: now})
                .returning(W.id, W.org_id, due)
                .execution_options(synchronize_session=False)
            )
        ).all()
        report.warned[kind] = len(rows)
        if rows:
            await notify.warnings(
                db=db,
                kind=kind,
                orders=[(order_id, org_id, fmt_local(due_at)) for order_id, org_id, due_at in rows],
            )


async def escalate_overdue(db: AsyncSession, now: datetime, report: SweepReport) -> None:
    """Orders past a deadline go to supervision, once: the UPDATE re-checks the state."""
    for kind, states, due, _warn, _warned in DEADLINES:
        count = 0
        for state in states:
            is_due = (W.state == state.value, due < now)
            rows = (
                await db.execute(
                    update(W)
                    .where(
                        W.id.in_(select(W.id).where(*is_due).order_by(due).limit(DUE_BATCH)),
                        *is_due,
                    )
                    .values(
                        state=State.SUPERVISING.value,
                        version=W.version + 1,
                        supervising_at=now,
                        overdue_at=now,
                        escalations=W.escalations + 1,
                        updated_at=now,
                    )
                    .returning(W.id, W.org_id, W.version)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not rows:
                continue
            count += len(rows)
            await db.execute(
                insert(WorkOrderEvent),
                [
                    {
                        "work_order_id": oid,
                        "action": Action.ESCALATE.value,
                        "from_state": state.value,
                        "to_state": State.SUPERVISING.value,
                        "actor_kind": "system",
                        "actor_id": None,
                        "actor_name": "系统",
                        "note": f"{kind.label}超期，自动转入督办",
                        "data": {"deadline": kind},
                        "created_at": now,
                    }
                    for oid, _org, _v in rows
                ],
            )
            await webhooks.publish(
                db,
                [
                    webhooks.Happened(
                        oid, Action.ESCALATE.value, state.value, State.SUPERVISING.value, now
                    )
                    for oid, _org, _v in rows
                ],
            )
            await notify.overdues(db=db, kind=kind, orders=[(oid, org, v) for oid, org, v in rows])
        report.escalated[kind] = count


def sampled(evaluation_id: int, rate: float) -> bool:
    """A stable, unpredictable draw: the same rating is always in or out of the sample."""
    digest = hashlib.blake2b(str(evaluation_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def _insert(db: AsyncSession):
    return pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]


async def sample_spot_checks(
    db: AsyncSession, policies: PolicyCache, report: SweepReport, good_levels: frozenset[int]
) -> None:
    """Callback tasks for a sample of new good ratings (抽查回访), past a watermark."""
    last = await job_state.watermark(db, "spot_check", lock=True)
    rows = (
        await db.execute(
            select(
                Evaluation.id,
                Evaluation.org_id,
                Evaluation.region_code,
                Evaluation.level,
                Evaluation.is_default,
            )
            .where(Evaluation.id > last)
            .order_by(Evaluation.id)
            .limit(SPOT_CHECK_BATCH)
        )
    ).all()
    if not rows:
        return
    picks = []
    for eid, org_id, region_code, level, is_default in rows:
        if level not in good_levels or is_default:
            continue
        values, _ = await policies.get(db, region_code)
        if sampled(eid, values.spot_check_rate):
            picks.append(
                {"evaluation_id": eid, "org_id": org_id, "state": "pending", "created_at": utcnow()}
            )
    if picks:
        result = await db.execute(
            _insert(db)(SpotCheck).on_conflict_do_nothing().returning(SpotCheck.id), picks
        )
        report.spot_checks = len(result.all())
    await job_state.advance(db, "spot_check", rows[-1][0], expected=last)


async def record_default_ratings(
    db: AsyncSession, policies: PolicyCache, now: datetime, report: SweepReport, tagset_version: str
) -> None:
    """Where a jurisdiction asks for it, a marked default rating for unrated completed cases."""
    enabled = [
        p
        for p in (await db.execute(select(PolicySet))).scalars()
        if (p.values.get("default_rating") or {}).get("enabled")
    ]
    if not enabled:
        return  # off unless some jurisdiction turns it on
    min_days = min(p.values["default_rating"].get("after_days", 7) for p in enabled)
    rated = select(Evaluation.id).where(Evaluation.case_id == Case.id, Evaluation.stage == "whole")
    rows = (
        await db.execute(
            select(
                Case.id,
                Case.org_id,
                Case.item_id,
                Case.window_id,
                Case.staff_id,
                Case.completed_at,
                Org.region_code,
            )
            .join(Org, Org.id == Case.org_id)
            .where(
                Case.status == "completed",
                Case.completed_at < now - timedelta(days=min_days),
                ~rated.exists(),
            )
            .order_by(Case.completed_at)
            .limit(DEFAULT_RATING_BATCH)
        )
    ).all()
    batch: list[dict[str, Any]] = []
    for case_id, org_id, item_id, window_id, staff_id, completed_at, region_code in rows:
        values, _ = await policies.get(db, region_code)
        rule = values.default_rating
        if (
            not rule.enabled
            or completed_at is None
            or completed_at >= now - timedelta(days=rule.after_days)
        ):
            continue
        batch.append(
            {
                "case_id": case_id,
                "stage": "whole",
                "eval_count": 1,
                "channel": DEFAULT_RATING_CHANNEL,
                "level": rule.level,
                "reasons": [],
                "comment": None,
                "tagset_version": tagset_version,
                "org_id": org_id,
                "item_id": item_id,
                "window_id": window_id,
                "staff_id": staff_id,
                "region_code": region_code,
                "rater_type": "person",
                "anonymous": True,
                "is_public": False,
                "is_default": True,
                "evaluated_at": now,
                "received_at": now,
            }
        )
    if batch:
        result = await db.execute(
            _insert(db)(Evaluation)
            # No conflict target: on PostgreSQL the once-rule is the partitioned table's trigger
            # (evaluation_once, migration 0030), which skips a taken case and stage as this would.
            .on_conflict_do_nothing()
            .returning(Evaluation.id),
            batch,
        )
        report.default_ratings = len(result.all())


async def sweep(
    db: AsyncSession,
    *,
    policies: PolicyCache,
    tagset_version: str,
    good_levels: frozenset[int],
    now: datetime | None = None,
) -> SweepReport:
    """One pass of the deadline job (the caller commits)."""
    now = now or utcnow()
    report = SweepReport()
    await escalate_overdue(db, now, report)
    await send_warnings(db, now, report)
    await sample_spot_checks(db, policies, report, good_levels)
    await record_default_ratings(db, policies, now, report, tagset_version)
    return report
