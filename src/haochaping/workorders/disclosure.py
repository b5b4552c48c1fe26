"""What the public may see of rectified bad reviews (差评整改公示), for the public results pages.

A bad review is shown only when its rating may be published (`evaluation.is_public`), counts
in the statistics (a first rating, neither invalid nor held: `counted_clause`) and its unit
has reported the rectification. What is shown: when, the level, the reason tags, the comment
and the unit's rectification report — the free texts through `mask_public_text`, which also
masks the names of the rater, the applicant and the staff of the serving organisation. No
rater field, case number or staff name is ever read into the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core.security import mask_public_text
from haochaping.evaluations.models import Evaluation, ReasonTag
from haochaping.evaluations.standing import counted_clause
from haochaping.orgs.models import Item, Org, Staff
from haochaping.workorders.models import WorkOrder, WorkOrderEvent
from haochaping.workorders.states import State

RECENT_MAX = 10  # the most recent rectified bad reviews a public page lists
Window = aliased(Org)
# States in which the unit's rectification report stands (a redispatch sends it back).
REPORTED_STATES = (State.CALLBACK.value, State.CLOSED.value)
STATE_TEXT = {State.CALLBACK.value: "整改完成，待回访", State.CLOSED.value: "已办结"}


@dataclass(frozen=True)
class RectifiedReview:
    """One published bad review and what was done about it (no personal data)."""

    evaluated_at: datetime
    level: int
    reasons: list[str]  # the reason tags' texts
    comment: str | None
    org_name: str
    window_name: str | None
    item_name: str | None
    rectified_at: datetime
    rectification: str
    state_text: str


def _published(*, org_path: str | None, item_id: int | None) -> Select:
    """Rectified bad reviews that may be published, of an organisation's subtree (by the
    rated organisation or window) or of one item."""
    conditions = [
        Evaluation.is_public.is_(True),
        Evaluation.eval_count == 1,
        Evaluation.is_default.is_(False),
        counted_clause(Evaluation.id),
        WorkOrder.rectified_at.is_not(None),
        WorkOrder.state.in_(REPORTED_STATES),
    ]
    if org_path is not None:
        conditions.append(
            or_(
                Org.path.startswith(org_path, autoescape=True),
                and_(Window.id.is_not(None), Window.path.startswith(org_path, autoescape=True)),
            )
        )
    if item_id is not None:
        conditions.append(Evaluation.item_id == item_id)
    return (
        select(
            WorkOrder.id,
            WorkOrder.state,
            WorkOrder.rectified_at,
            Evaluation.id,
            Evaluation.evaluated_at,
            Evaluation.level,
            Evaluation.reasons,
            Evaluation.tagset_version,
            Evaluation.comment,
            Evaluation.org_id,
            Evaluation.window_id,
            Evaluation.staff_id,
            Evaluation.rater_name,
            Case.applicant_name,
            Org.name,
            Window.name,
            Item.name,
        )
        .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
        .join(Org, Org.id == Evaluation.org_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .where(*conditions)
        .order_by(WorkOrder.rectified_at.desc(), WorkOrder.id.desc())
        .limit(RECENT_MAX)
    )


async def recent_rectified(
    *, db: AsyncSession, org_path: str | None = None, item_id: int | None = None
) -> list[RectifiedReview]:
    """The most recent rectified bad reviews that may be published, newest first."""
    rows = (await db.execute(_published(org_path=org_path, item_id=item_id))).all()
    if not rows:
        return []
    order_ids = [r[0] for r in rows]
    # The latest rectification report of each order (a redispatched order reports again).
    reports: dict[int, str] = {}
    for order_id, note in (
        await db.execute(
            select(WorkOrderEvent.work_order_id, WorkOrderEvent.note)
            .where(
                WorkOrderEvent.work_order_id.in_(order_ids),
                WorkOrderEvent.action == "report_rectified",
            )
            .order_by(WorkOrderEvent.id)
        )
    ).all():
        reports[order_id] = note or ""
    tag_keys = {(r[7], code) for r in rows for code in (r[6] or [])}
    versions = {v for v, _ in tag_keys}
    texts = {
        (v, c): t
        for v, c, t in (
            await db.execute(
                select(ReasonTag.version, ReasonTag.code, ReasonTag.text).where(
                    ReasonTag.version.in_(versions)
                )
            )
        ).all()
    }
    # Names the free texts may contain: the staff of the organisations and windows rated.
    org_ids = {r[9] for r in rows} | {r[10] for r in rows if r[10] is not None}
    staff_ids = {r[11] for r in rows if r[11] is not None}
    staff_names = (
        await db.execute(
            select(Staff.org_id, Staff.id, Staff.name).where(
                or_(Staff.org_id.in_(org_ids), Staff.id.in_(staff_ids))
            )
        )
    ).all()
    out = []
    for row in rows:
        (order_id, state, rectified_at, _, evaluated_at, level, reasons, version, comment) = row[:9]
        org_id, window_id, staff_id, rater_name, applicant_name = row[9:14]
        org_name, window_name, item_name = row[14:17]
        names = [rater_name or "", applicant_name or ""] + [
            name
            for s_org, s_id, name in staff_names
            if s_org in (org_id, window_id) or s_id == staff_id
        ]
        out.append(
            RectifiedReview(
                evaluated_at=evaluated_at,
                level=level,
                reasons=[texts.get((version, code), code) for code in reasons or []],
                comment=mask_public_text(comment, names),
                org_name=org_name,
                window_name=window_name,
                item_name=item_name,
                rectified_at=rectified_at,
                rectification=mask_public_text(reports.get(order_id, ""), names) or "",
                state_text=STATE_TEXT.get(state, ""),
            )
        )
    return out
