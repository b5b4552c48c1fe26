"""Taking one record of the national interface: its case (created or moved forward within
the API key's scope), then its rating through the native intake — the same validation, the
same once-per-case rule, a bad rating's work order — or, for `assessNumber` 2, the follow-up
rating of that case's work order. Refusals come back as `RecordRefused` (the caller rolls
back: a refused record stores nothing, its case included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases import service as case_service
from haochaping.cases.choices import STATUS_RANK, CaseStatus
from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.errors import DomainError
from haochaping.db.crypto import DataKeys
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.models import Evaluation
from haochaping.exchange.national import NationalRecord, RecordRefused
from haochaping.orgs.models import Org, Staff
from haochaping.workorders import followup
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder


async def take(
    *,
    db: AsyncSession,
    actor: Principal,
    record: NationalRecord,
    rules: evaluation_service.IntakeRules,
    keys: DataKeys,
    source: evaluation_service.Source,
    ctx: LoopContext,
) -> dict[str, Any]:
    """Store the record; the answer's extra fields (`id`, `work_order_state`...)."""
    try:
        if record.case is not None:
            await _bring_case(db=db, actor=actor, record=record, keys=keys)
        if record.count == 1:
            stored = await evaluation_service.submit(
                db=db, actor=actor, data=record.evaluation, rules=rules, source=source
            )
            return {"id": stored["id"], "is_bad": stored["is_bad"]}
        return await _followup(
            db=db, actor=actor, record=record, rules=rules, ctx=ctx, source=source
        )
    except DomainError as exc:
        raise RecordRefused(exc.message, exc.code) from exc


async def _bring_case(
    *, db: AsyncSession, actor: Principal, record: NationalRecord, keys: DataKeys
) -> None:
    """Create the case, or move it forward; a case already further along is left as it is
    (the interface resends the status it knew when the rating was given)."""
    data = record.case
    assert data is not None
    current = (
        await db.execute(select(Case.status).where(Case.case_no == record.case_no))
    ).scalar_one_or_none()
    if current is not None and STATUS_RANK[data.status] <= STATUS_RANK[CaseStatus(current)]:
        return
    window_code, staff_no = await _counter(db, data.org_code, record)
    data = data.model_copy(update={"window_code": window_code, "staff_no": staff_no})
    await case_service.upsert_case(db=db, actor=actor, data=data, keys=keys)


async def _counter(
    db: AsyncSession, org_code: str, record: NationalRecord
) -> tuple[str | None, str | None]:
    """The window and staff member the record names (`winName`, `winUserName`: names, not
    codes), when exactly one of each answers to the name within the unit; else none."""
    if record.window_name is None and record.staff_name is None:
        return None, None
    unit = (await db.execute(select(Org).where(Org.code == org_code))).scalar_one_or_none()
    if unit is None:
        return None, None  # the case's own check answers 404 org_not_found
    within = Org.path.startswith(unit.path, autoescape=True)
    window_code = staff_no = None
    if record.window_name:
        found = (
            (
                await db.execute(
                    select(Org.code).where(
                        within, Org.kind == "window", Org.name == record.window_name
                    )
                )
            )
            .scalars()
            .all()
        )
        window_code = found[0] if len(found) == 1 else None
    if record.staff_name:
        found = (
            (
                await db.execute(
                    select(Staff.staff_no)
                    .join(Org, Org.id == Staff.org_id)
                    .where(within, Staff.name == record.staff_name, Staff.active.is_(True))
                )
            )
            .scalars()
            .all()
        )
        staff_no = found[0] if len(found) == 1 else None
    return window_code, staff_no


async def _followup(
    *,
    db: AsyncSession,
    actor: Principal,
    record: NationalRecord,
    rules: evaluation_service.IntakeRules,
    ctx: LoopContext,
    source: evaluation_service.Source,
) -> dict[str, Any]:
    """`assessNumber` 2: the follow-up rating (追评) of the case's bad review, through the
    same rules as the native follow-up route (once, after rectification, by a channel)."""
    order = (
        await db.execute(
            select(WorkOrder)
            .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
            .join(Case, Case.id == Evaluation.case_id)
            .where(Case.case_no == record.case_no, Evaluation.eval_count == 1)
            .order_by(WorkOrder.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if order is None:
        raise RecordRefused(
            f"办件 {record.case_no} 没有差评整改工单，不能追加评价（assessNumber=2）",
            "followup_not_open",
        )
    lead = await db.get(Org, order.org_id)
    actor.require(lead.path)  # type: ignore[union-attr]
    ev = record.evaluation
    body = await followup.add_for_rater(
        db=db,
        principal=actor,
        order=order,
        data=wo_schemas.FollowUpCreate(
            level=ev.level, reasons=list(ev.reasons), comment=ev.comment, channel=ev.channel
        ),
        rules=rules,
        ctx=ctx,
        source_ip=source.ip,
    )
    return {"id": body["id"], "work_order_state": body["work_order_state"]}
