"""Read-side helpers of the citizen portal: what a rating link is about, without personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core.timeutil import to_local
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding, Standing
from haochaping.orgs.models import Item, Org

Window = aliased(Org)


@dataclass(frozen=True)
class ServiceSummary:
    """What the citizen is asked to rate: the item, the place, the day (no personal data)."""

    item_name: str
    org_name: str
    window_name: str | None
    served_at: datetime | None

    @property
    def served_on(self) -> str:
        day = to_local(self.served_at)
        return f"{day.year}年{day.month}月{day.day}日" if day else ""


async def service_summary(*, db: AsyncSession, case_id: int) -> ServiceSummary:
    """The item, hall/department and window of a case, by name."""
    row = (
        await db.execute(
            select(Item.name, Org.name, Window.name, Case.completed_at, Case.accepted_at)
            .select_from(Case)
            .join(Item, Item.id == Case.item_id)
            .join(Org, Org.id == Case.org_id)
            .outerjoin(Window, Window.id == Case.window_id)
            .where(Case.id == case_id)
        )
    ).one()
    item_name, org_name, window_name, completed_at, accepted_at = row
    return ServiceSummary(
        item_name=item_name,
        org_name=org_name,
        window_name=window_name,
        served_at=completed_at or accepted_at,
    )


async def rated_level(*, db: AsyncSession, evaluation_id: int | None) -> int | None:
    """The level of a stored rating, for the thank-you page."""
    if evaluation_id is None:
        return None
    return (
        await db.execute(select(Evaluation.level).where(Evaluation.id == evaluation_id))
    ).scalar_one_or_none()


async def register_hold_region(*, db: AsyncSession, evaluation_id: int | None) -> str | None:
    """The region whose notice a rater reads when their rating is held because they are on
    the malicious-rater register (None: the rating is not held for that)."""
    if evaluation_id is None:
        return None
    return (
        await db.execute(
            select(Org.region_code)
            .join(Evaluation, Evaluation.org_id == Org.id)
            .join(EvaluationStanding, EvaluationStanding.evaluation_id == Evaluation.id)
            .where(
                Evaluation.id == evaluation_id,
                EvaluationStanding.standing == Standing.HELD.value,
                EvaluationStanding.reason == "malicious_rater",
            )
        )
    ).scalar_one_or_none()
