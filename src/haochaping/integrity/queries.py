"""Read side of the review queue: flags with their rating, in the reviewer's subtree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.evaluations import queries as evaluation_queries
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import CHANNEL_LABELS, LEVEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import (
    STANDING_LABELS,
    EvaluationStanding,
    Standing,
    StandingEvent,
)
from haochaping.integrity import detectors
from haochaping.integrity.models import IntegrityFlag
from haochaping.integrity.service import STATE_LABELS, FlagState
from haochaping.orgs.models import Org


async def org_path(db: AsyncSession, actor: Principal, org_code: str) -> str:
    """The path of an organisation the caller may look into (404 unknown, 403 outside)."""
    path = (await db.execute(select(Org.path).where(Org.code == org_code))).scalar_one_or_none()
    if path is None:
        raise NotFound(f"机构 {org_code} 不存在", code="org_not_found",
                       details=[{"field": "org_code", "value": org_code}])
    actor.require(path)
    return path


def flags(*, actor: Principal, state: str | None = None, check: str | None = None,
          subtree: str | None = None, evaluation_id: int | None = None,
          after_id: int | None = None, limit: int = 50) -> Select:
    """Flags on ratings inside the caller's subtree, oldest first (a work queue)."""
    stmt = (
        select(IntegrityFlag, Org.code, Org.name, Evaluation.level, Evaluation.channel,
               Case.case_no, EvaluationStanding.standing)
        .join(Org, Org.id == IntegrityFlag.org_id)
        .join(Evaluation, Evaluation.id == IntegrityFlag.evaluation_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(EvaluationStanding,
                   EvaluationStanding.evaluation_id == IntegrityFlag.evaluation_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(IntegrityFlag.id)
        .limit(limit + 1)
    )
    if state:
        stmt = stmt.where(IntegrityFlag.state == state)
    if check:
        stmt = stmt.where(IntegrityFlag.check_name == check)
    if subtree:
        # A plain prefix comparison: codes may contain "_", a LIKE wildcard.
        stmt = stmt.where(func.substr(Org.path, 1, len(subtree)) == subtree)
    if evaluation_id is not None:
        stmt = stmt.where(IntegrityFlag.evaluation_id == evaluation_id)
    if after_id:
        stmt = stmt.where(IntegrityFlag.id > after_id)
    return stmt


def item(row: Any) -> dict[str, Any]:
    """One line of the queue: the flag, its evidence and what the rating is."""
    flag, org_code, org_name, level, channel, case_no, standing = row
    labels = detectors.check_labels()
    standing = standing or Standing.VALID.value
    return {
        "id": flag.id, "evaluation_id": flag.evaluation_id, "check": flag.check_name,
        "check_label": labels.get(flag.check_name, flag.check_name), "stage": flag.stage,
        "subject": flag.subject, "reason": flag.reason, "evidence": flag.evidence,
        "state": flag.state, "state_label": STATE_LABELS[FlagState(flag.state)],
        "org_code": org_code, "org_name": org_name, "case_no": case_no, "level": level,
        "level_label": LEVEL_LABELS[level], "channel": channel,
        "channel_label": CHANNEL_LABELS.get(channel, channel), "standing": standing,
        "standing_label": STANDING_LABELS[Standing(standing)], "created_at": flag.created_at,
        "reviewed_by": flag.reviewed_by, "reviewed_at": flag.reviewed_at,
        "review_note": flag.review_note,
    }


async def detail(*, db: AsyncSession, actor: Principal, flag: IntegrityFlag,
                 rules: evaluation_service.IntakeRules) -> dict[str, Any]:
    """A flag with its rating (personal data masked), the rating's other flags and the
    history of its standing."""
    rows = (await db.execute(flags(actor=actor, evaluation_id=flag.evaluation_id,
                                   limit=100))).all()
    this = next(r for r in rows if r[0].id == flag.id)
    ev_row = (await db.execute(evaluation_queries.evaluations(actor=actor, limit=1)
                               .where(Evaluation.id == flag.evaluation_id))).one()
    ev, case_no, org_code, item_code, window_code, staff_no = ev_row
    target = evaluation_service.Target(case_no=case_no, org_code=org_code, item_code=item_code,
                                       window_code=window_code, staff_no=staff_no,
                                       region_code=ev.region_code)
    history = (await db.execute(select(StandingEvent).where(
        StandingEvent.evaluation_id == flag.evaluation_id).order_by(StandingEvent.id)
    )).scalars().all()
    return {
        **item(this),
        "evaluation": evaluation_service.read_from_row(evaluation_queries.row_dict(ev), target,
                                                       rules),
        "other_flags": [item(r) for r in rows if r[0].id != flag.id],
        "standing_history": [{"from": e.from_standing, "to": e.to_standing, "reason": e.reason,
                              "note": e.note, "actor": e.actor, "at": e.created_at}
                             for e in history],
    }
