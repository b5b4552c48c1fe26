"""Read-side statistics: the figures of 好评率, 差评率 and score over counted ratings.

Counted ratings are first ratings (not follow-ups), not system defaults (reported apart),
and not invalid or held (see evaluations/standing.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding, counted_clause
from haochaping.orgs.models import Org

POINTS = {5: 10, 4: 8, 3: 6, 2: 3, 1: 0}  # configurable per province in a later capability


async def summary(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    good_levels: frozenset[int] = frozenset({3, 4, 5}),
    held_counts: bool = False,
) -> dict[str, Any]:
    """Counts and rates of the ratings in scope that count."""
    scope = [Org.path.startswith(actor.org_path, autoescape=True)]
    if org_code:
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        scope.append(func.substr(Org.path, 1, func.length(sub)) == sub)  # not LIKE: "_"
    base = [Evaluation.eval_count == 1, *scope]
    if since:
        base.append(Evaluation.received_at >= since)
    if until:
        base.append(Evaluation.received_at < until)
    points = case(*[(Evaluation.level == lvl, pts) for lvl, pts in POINTS.items()], else_=0)
    counted = [
        counted_clause(Evaluation.id, held_counts=held_counts),
        Evaluation.is_default.is_(False),
    ]
    total, good, points_sum = (
        await db.execute(
            select(
                func.count(),
                func.sum(case((Evaluation.level.in_(good_levels), 1), else_=0)),
                func.sum(points),
            )
            .select_from(Evaluation)
            .join(Org, Org.id == Evaluation.org_id)
            .where(*base, *counted)
        )
    ).one()
    defaults = (
        await db.execute(
            select(func.count())
            .select_from(Evaluation)
            .join(Org, Org.id == Evaluation.org_id)
            .where(*base, Evaluation.is_default.is_(True))
        )
    ).scalar_one()
    standing = dict(
        (
            await db.execute(
                select(EvaluationStanding.standing, func.count())
                .join(Evaluation, Evaluation.id == EvaluationStanding.evaluation_id)
                .join(Org, Org.id == Evaluation.org_id)
                .where(*base)
                .group_by(EvaluationStanding.standing)
            )
        ).all()
    )
    total, good, points_sum = int(total or 0), int(good or 0), int(points_sum or 0)
    return {
        "total": total,
        "good": good,
        "bad": total - good,
        "good_rate": round(good / total, 6) if total else None,
        "bad_rate": round((total - good) / total, 6) if total else None,
        "score": round(points_sum / total, 3) if total else None,
        "default_ratings": int(defaults),
        "invalid": int(standing.get("invalid", 0)),
        "held": int(standing.get("held", 0)),
    }
