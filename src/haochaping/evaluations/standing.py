"""A rating's standing in the statistics (计入统计): ratings are never edited, so whether one
counts is recorded beside it. No row means it counts; `held` ratings wait for a decision
(held out of the figures unless the policy says otherwise); `invalid` ones never count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import ChoiceSet
from haochaping.core.timeutil import utcnow
from haochaping.db.base import Base, UTCDateTime
from haochaping.db.types import BigIntPK


class Standing(ChoiceSet):
    HELD = "held", "待复核"  # 待复核：暂不计入
    INVALID = "invalid", "无效评价"  # 无效：保留记录，不计入统计和排名
    VALID = "valid", "有效"  # 复核后有效


STANDING_LABELS = Standing.labels()


class StandingReason(ChoiceSet):
    """Why a rating's standing changed (`evaluation_standing.reason`, `standing_event.reason`)."""

    DETECTOR = "detector", "疑似刷评检测"
    DETECTOR_CLEARED = "detector_cleared", "疑似刷评复核：排除"
    APPEAL_UPHELD = "appeal_upheld", "申诉成立"
    MALICIOUS_RATER = "malicious_rater", "评价人在恶意评价人员信息库中"
    REVIEW = "review", "人工复核"


class EvaluationStanding(Base):
    """The current standing of a rating that is not simply valid."""

    __tablename__ = "evaluation_standing"

    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"), primary_key=True)
    standing: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str] = mapped_column(String(50))  # appeal_upheld, malicious_rater, detector
    note: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int | None] = mapped_column(Integer)  # the appeal or flag behind it
    decided_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StandingEvent(Base):
    """Every change of standing, on record (who, when, why)."""

    __tablename__ = "standing_event"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id"), index=True)
    from_standing: Mapped[str] = mapped_column(String(10))
    to_standing: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


async def set_standing(
    *,
    db: AsyncSession,
    evaluation_id: int,
    standing: Standing,
    reason: str,
    actor: str,
    note: str | None = None,
    source_id: int | None = None,
    only_if_not_invalid: bool = True,
    now: datetime | None = None,
) -> bool:
    """Record a rating's new standing (and the change); False when nothing changed.

    An invalid rating stays invalid unless `only_if_not_invalid` is False (a reviewer's
    explicit decision); `now` is the moment of the decision (default: the present)."""
    now = now or utcnow()
    row = await db.get(EvaluationStanding, evaluation_id, with_for_update=True)
    current = Standing(row.standing) if row else Standing.VALID
    if current == standing or (current == Standing.INVALID and only_if_not_invalid):
        return False
    if row is None:
        row = EvaluationStanding(evaluation_id=evaluation_id)
        db.add(row)
    row.standing, row.reason, row.note, row.source_id = standing.value, reason, note, source_id
    row.decided_by, row.updated_at = actor, now
    db.add(
        StandingEvent(
            evaluation_id=evaluation_id,
            from_standing=current.value,
            to_standing=standing.value,
            reason=reason,
            note=note,
            actor=actor,
            created_at=now,
        )
    )
    await db.flush()
    return True


async def standing_of(db: AsyncSession, evaluation_id: int) -> Standing:
    value = (
        await db.execute(
            select(EvaluationStanding.standing).where(
                EvaluationStanding.evaluation_id == evaluation_id
            )
        )
    ).scalar_one_or_none()
    return Standing(value) if value else Standing.VALID


def counted_clause(evaluation_id_column, *, held_counts: bool = False):
    """SQL condition: the rating counts in statistics and rankings."""
    excluded = [Standing.INVALID.value] + ([] if held_counts else [Standing.HELD.value])
    return (
        ~select(EvaluationStanding.evaluation_id)
        .where(
            EvaluationStanding.evaluation_id == evaluation_id_column,
            EvaluationStanding.standing.in_(excluded),
        )
        .exists()
    )
