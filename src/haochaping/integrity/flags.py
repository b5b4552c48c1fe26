"""Flags on ratings: what a check found (`Finding`), the states of a flag, and writing new
flags (the rating is held). Below both the checks (`detectors`) and the review use cases
(`service`), which both write flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, StandingReason, set_standing
from haochaping.integrity.choices import FlagStage, FlagState
from haochaping.integrity.models import IntegrityFlag

# The standing reason of a rating held or invalidated by a detector.
DETECTOR = StandingReason.DETECTOR.value


@dataclass(frozen=True)
class Finding:
    """A check's flag on one rating: why (for people) and the evidence (for the record)."""

    evaluation_id: int
    org_id: int
    check: str
    subject: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _insert(db: AsyncSession):
    return pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]


async def raise_flags(*, db: AsyncSession, findings: list[Finding], stage: FlagStage) -> list[int]:
    """Record new flags (one per rating and check) and hold their ratings; new flag ids."""
    now = utcnow()
    unique: dict[tuple[int, str], Finding] = {}
    for f in findings:
        unique.setdefault((f.evaluation_id, f.check), f)
    if not unique:
        return []
    values = [
        {
            "evaluation_id": f.evaluation_id,
            "org_id": f.org_id,
            "check_name": f.check,
            "stage": FlagStage(stage).value,
            "subject": f.subject[:200],
            "reason": f.reason,
            "evidence": f.evidence,
            "state": FlagState.OPEN.value,
            "created_at": now,
        }
        for f in unique.values()
    ]
    stmt = (
        _insert(db)(IntegrityFlag)
        .on_conflict_do_nothing(index_elements=["evaluation_id", "check_name"])
        .returning(IntegrityFlag.id, IntegrityFlag.evaluation_id, IntegrityFlag.check_name)
    )
    new = (await db.execute(stmt, values)).all()
    for flag_id, evaluation_id, check in new:
        # An invalid rating stays invalid; a held or valid one is held for review.
        await set_standing(
            db=db,
            evaluation_id=evaluation_id,
            standing=Standing.HELD,
            reason=DETECTOR,
            actor=f"integrity:{check}",
            note=unique[(evaluation_id, check)].reason[:500],
            source_id=flag_id,
        )
    return [row[0] for row in new]
