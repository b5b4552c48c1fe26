"""Appeals (申诉复核): a unit appeals a bad rating of its own; the office decides.

Upheld: the rating stays on record but leaves the statistics (standing `invalid`), its work
order ends as invalidated, and a malicious rater may go on the register. Rejected: the work
order returns to rectification with its deadlines moved by the time the appeal took (the
loop's clock stops while an appeal is pending)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appeals import schemas
from haochaping.appeals.choices import CATEGORY_LABELS
from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.core import audit, outbox
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.security import mask_cert_no, mask_phone
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.db.crypto import DataKeys, IdentityKind, normalise_identity
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import (
    EvaluationStanding,
    Standing,
    StandingReason,
    set_standing,
)
from haochaping.orgs.models import Org
from haochaping.policies.schemas import PolicyValues
from haochaping.workorders import notify
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import Action

# The refusals of the role gates on these use cases (the routes' dependencies).
DECIDERS_ONLY = "申诉由政务服务管理机构复核决定"
REVIEWERS_ONLY = "待复核评价由政务服务管理机构决定"


async def file(
    *,
    db: AsyncSession,
    principal: Principal,
    data: schemas.AppealCreate,
    ctx: LoopContext,
    now: datetime | None = None,
) -> Appeal:
    """File an appeal on a bad rating of the caller's own unit, within the policy deadline
    (`now`: the moment it is filed; the demo's simulated clock passes it)."""
    actor = wo_service.Actor.of(principal)
    ev = await db.get(Evaluation, data.evaluation_id)
    if ev is None:
        raise NotFound("评价不存在", code="evaluation_not_found")
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == ev.id))
    ).scalar_one_or_none()
    org = await db.get(Org, order.org_id if order else ev.org_id)
    principal.require(org.path)  # type: ignore[union-attr]
    if order is None:
        raise Invalid(
            "只能对差评提出申诉", code="not_a_bad_rating", details=[{"field": "evaluation_id"}]
        )
    if (await db.execute(select(Appeal.id).where(Appeal.evaluation_id == ev.id))).first():
        raise Conflict("该评价已提出过申诉", code="duplicate_appeal")
    policy = PolicyValues.model_validate(order.policy)
    now = now or utcnow()
    calendar = ctx.deadlines.calendar
    deadline, _ = calendar.deadline_at(ev.received_at, policy.appeal_days)
    if now > deadline:
        raise Invalid(
            f"已超过申诉期限（差评产生后 {policy.appeal_days} 个工作日内）",
            code="appeal_deadline_passed",
        )
    due, _ = calendar.deadline_at(now, policy.appeal_decision_days)
    appeal = Appeal(
        work_order_id=order.id,
        evaluation_id=ev.id,
        org_id=order.org_id,
        category=data.category,
        reasons=data.reasons,
        state="pending",
        from_state=order.state,
        filed_by=actor.name,
        filed_at=now,
        decide_due_at=due,
    )
    await wo_service.transition(
        db=db,
        order=order,
        action=Action.APPEAL,
        actor=actor,
        note=data.reasons,
        data={"category": data.category},
        attachment_ids=data.attachment_ids,
        now=now,
    )
    db.add(appeal)
    await db.flush()
    await notify.escalated(
        db=db, order=order, reason=f"责任单位提出申诉（{CATEGORY_LABELS[data.category]}），请复核"
    )
    return appeal


async def get(*, db: AsyncSession, principal: Principal, appeal_id: int) -> Appeal:
    """An appeal in the caller's subtree, or 404/403."""
    appeal = await db.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFound("申诉不存在", code="appeal_not_found")
    org = await db.get(Org, appeal.org_id)
    principal.require(org.path)  # type: ignore[union-attr]
    return appeal


def _shift(calendar: Any, due: datetime | None, paused: int) -> datetime | None:
    """A deadline moved on by the working days the appeal kept the clock stopped."""
    if due is None or paused <= 0:
        return due
    return calendar.deadline_at(due, paused)[0]


async def decide(
    *,
    db: AsyncSession,
    principal: Principal,
    appeal: Appeal,
    data: schemas.AppealDecision,
    ctx: LoopContext,
    now: datetime | None = None,
) -> Appeal:
    """The office's decision: uphold (rating invalid, order ends) or reject (back to work)."""
    actor = wo_service.Actor.of(principal)
    if appeal.state != "pending":
        raise Conflict("该申诉已作出决定", code="appeal_decided")
    if data.register_rater and not (data.decision == "uphold" and appeal.category == "malicious"):
        raise Invalid(
            "只有认定为恶意差评的申诉才能将评价人列入恶意评价人员信息库",
            code="register_not_allowed",
            details=[{"field": "register_rater"}],
        )
    order = await db.get(WorkOrder, appeal.work_order_id)
    ev = await db.get(Evaluation, appeal.evaluation_id)
    assert order is not None and ev is not None  # an appeal's order and rating (foreign keys)
    now = now or utcnow()
    calendar = ctx.deadlines.calendar
    if data.decision == "uphold":
        await wo_service.transition(
            db=db,
            order=order,
            action=Action.UPHOLD_APPEAL,
            actor=actor,
            note=data.note,
            now=now,
            changes={"closed_at": now, "close_reason": "appeal_upheld"},
        )
        await set_standing(
            db=db,
            evaluation_id=appeal.evaluation_id,
            standing=Standing.INVALID,
            reason=StandingReason.APPEAL_UPHELD.value,
            actor=actor.name,
            note=data.note,
            source_id=appeal.id,
            now=now,
        )
        if data.register_rater:
            await _register(
                db=db,
                ev=ev,
                appeal=appeal,
                days=data.register_days,
                actor=actor.name,
                keys=ctx.keys,
                now=now,
            )
        outcome = "经复核，您的评价不计入统计。如有异议可拨打 12345 反映。"
    else:
        paused = calendar.workdays_between(
            appeal.filed_at.astimezone(SHANGHAI).date(), now.astimezone(SHANGHAI).date()
        )
        changes = {
            "rectify_due_at": _shift(calendar, order.rectify_due_at, paused),
            "verify_due_at": _shift(calendar, order.verify_due_at, paused),
            "rectify_warn_at": _shift(calendar, order.rectify_warn_at, paused),
            "verify_warn_at": _shift(calendar, order.verify_warn_at, paused),
            "warned_rectify_at": None,
        }
        await wo_service.transition(
            db=db,
            order=order,
            action=Action.REJECT_APPEAL,
            actor=actor,
            note=data.note,
            now=now,
            changes=changes,
            data={"paused_workdays": paused},
        )
        outcome = "您的评价经复核有效，责任单位将继续整改。"
    appeal.state = "upheld" if data.decision == "uphold" else "rejected"
    appeal.decided_by, appeal.decided_at, appeal.decision_note = actor.name, now, data.note
    appeal.register_rater = data.register_rater
    if ev is not None and ev.rater_phone and not ev.anonymous:
        await outbox.enqueue(
            db,
            kind="appeal_decided",
            channel="sms",
            recipient=ev.rater_phone,
            subject="",
            body=f"【好差评】{outcome}",
            payload={"appeal_id": appeal.id},
            dedupe_key=f"appeal-decided:{appeal.id}",
        )
    await db.flush()
    return appeal


async def _register(
    *,
    db: AsyncSession,
    ev: Evaluation,
    appeal: Appeal,
    days: int,
    actor: str,
    keys: DataKeys,
    now: datetime,
) -> None:
    pairs: tuple[tuple[IdentityKind, str | None], ...] = (
        ("cert", ev.rater_cert_no),
        ("phone", ev.rater_phone),
    )
    for kind, value in pairs:
        digest = keys.identity_hash(value, kind)
        if digest:
            db.add(
                MaliciousRater(
                    identity_hash=digest,
                    kind=kind,
                    appeal_id=appeal.id,
                    org_id=appeal.org_id,
                    masked=MASKS[kind](normalise_identity(value or "", kind)),
                    expires_at=now + timedelta(days=days),
                    created_by=actor,
                    created_at=now,
                )
            )


MASKS = {"phone": mask_phone, "cert": mask_cert_no}
_IDENTIFIER_FORMS = {
    "phone": (re.compile(r"1\d{10}"), "手机号码须为 11 位数字（可含空格）"),
    "cert": (
        re.compile(r"\d{15}|\d{17}[\dX]"),
        "身份证号码须为 15 位数字，或 17 位数字加 1 位数字或 X（可含空格）",
    ),
}


def identity_of(*, kind: IdentityKind, identifier: str, keys: DataKeys) -> tuple[str, str]:
    """The keyed hash and the masked form of an identifier as a person typed it (normalised
    by the one function the register and the intake share); refused when it is not a phone or
    ID number. The number itself is never kept."""
    pattern, message = _IDENTIFIER_FORMS[kind]
    value = normalise_identity(identifier, kind)
    if not pattern.fullmatch(value):
        raise Invalid(message, code="identifier_invalid", details=[{"field": "identifier"}])
    digest = keys.identity_hash(value, kind)
    assert digest is not None  # a non-empty value always hashes
    return digest, MASKS[kind](value) or ""


def search_register(
    *, db: AsyncSession, actor: Principal, kind: IdentityKind, identifier: str, keys: DataKeys
) -> str:
    """The keyed hash an office's search by identity matches on; the search itself (never
    the number) goes on the audit trail, as a reveal does."""
    digest, masked = identity_of(kind=kind, identifier=identifier, keys=keys)
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.REGISTER_SEARCH,
        target_type="malicious_rater",
        target_id=None,
        detail={"kind": kind, "masked": masked},
    )
    return digest


async def add_to_register(
    *,
    db: AsyncSession,
    actor: Principal,
    data: schemas.RegisterEntryCreate,
    keys: DataKeys,
) -> MaliciousRater:
    """An office puts a rater on the register outside an appeal, with its evidence, for the
    unit named (within its area; its own organisation by default); on the audit trail."""
    digest, masked = identity_of(kind=data.kind, identifier=data.identifier, keys=keys)
    if data.org_code:
        org = (await db.execute(select(Org).where(Org.code == data.org_code))).scalar_one_or_none()
        if org is None:
            raise NotFound(f"机构 {data.org_code} 不存在", code="org_not_found")
    else:
        org = await db.get(Org, actor.org_id)
        if org is None:
            raise NotFound("本机构不存在", code="org_not_found")
    actor.require(org.path)
    now = utcnow()
    current = (
        await db.execute(
            select(MaliciousRater.expires_at)
            .where(
                MaliciousRater.identity_hash == digest,
                MaliciousRater.active.is_(True),
                MaliciousRater.expires_at > now,
            )
            .order_by(MaliciousRater.expires_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if current is not None:
        until = current.astimezone(SHANGHAI).date().isoformat()
        raise Conflict(
            f"该评价人已在恶意评价人员信息库中（有效至 {until}），无需重复列入",
            code="already_registered",
        )
    entry = MaliciousRater(
        identity_hash=digest,
        kind=data.kind,
        appeal_id=None,
        org_id=org.id,
        masked=masked,
        evidence=data.evidence,
        expires_at=now + timedelta(days=data.days),
        active=True,
        created_by=actor.name,
        created_at=now,
    )
    db.add(entry)
    await db.flush()
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.REGISTER_ADD,
        target_type="malicious_rater",
        target_id=entry.id,
        detail={"kind": data.kind, "masked": masked, "org_code": org.code, "days": data.days},
    )
    return entry


async def get_register_entry(
    *, db: AsyncSession, actor: Principal, entry_id: int
) -> tuple[MaliciousRater, Org]:
    """An entry of the register and its organisation, within the caller's area."""
    row = (
        await db.execute(
            select(MaliciousRater, Org)
            .join(Org, Org.id == MaliciousRater.org_id)
            .where(MaliciousRater.id == entry_id)
        )
    ).first()
    if row is None:
        raise NotFound("信息库中没有这条记录", code="register_entry_not_found")
    actor.require(row[1].path)
    return row[0], row[1]


async def revoke_register_entry(
    *, db: AsyncSession, actor: Principal, entry_id: int, note: str
) -> MaliciousRater:
    """End an entry before its expiry, with the reason: the rater's next ratings count again
    (ratings already held stay for their review); on the audit trail."""
    entry, org = await get_register_entry(db=db, actor=actor, entry_id=entry_id)
    now = utcnow()
    if not entry.active:
        raise Conflict("这条记录已被移出信息库", code="register_entry_revoked")
    if entry.expires_at <= now:
        raise Conflict("这条记录已到期，无需移出", code="register_entry_expired")
    entry.active = False
    entry.revoked_at, entry.revoked_by, entry.revoke_note = now, actor.name, note
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.REGISTER_REVOKE,
        target_type="malicious_rater",
        target_id=entry.id,
        detail={"kind": entry.kind, "masked": entry.masked, "org_code": org.code},
    )
    await db.flush()
    return entry


async def registered(db: AsyncSession, hashes: list[str], now: datetime) -> bool:
    """True when any of the identity hashes is on the register and not expired."""
    if not hashes:
        return False
    return (
        await db.execute(
            select(MaliciousRater.id)
            .where(
                MaliciousRater.identity_hash.in_(hashes),
                MaliciousRater.active.is_(True),
                MaliciousRater.expires_at > now,
            )
            .limit(1)
        )
    ).first() is not None


async def review_held(
    *, db: AsyncSession, actor: Principal, evaluation_id: int, standing: Standing | str, note: str
) -> Standing:
    """A reviewer's decision on a held rating: it counts (valid) or not (invalid, and its
    open work order ends); refused while the rating is not held or an appeal is pending."""
    decision = Standing(standing)
    if decision == Standing.HELD:
        raise Invalid(
            "复核决定只能是有效或无效", code="invalid_standing", details=[{"field": "standing"}]
        )
    row = (
        await db.execute(
            select(Evaluation.id, Org.path)
            .join(Org, Org.id == Evaluation.org_id)
            .where(Evaluation.id == evaluation_id)
        )
    ).first()
    if row is None:
        raise NotFound("评价不存在", code="evaluation_not_found")
    actor.require(row[1])
    current = await db.get(EvaluationStanding, evaluation_id, with_for_update=True)
    if current is None or current.standing != Standing.HELD.value:
        raise Conflict("该评价不在待复核状态", code="not_held")
    order = None
    if decision == Standing.INVALID:
        order = await wo_service.order_of_rating(db, evaluation_id, lock=True)
        wo_service.refuse_if_appealing(order)
    await set_standing(
        db=db,
        evaluation_id=evaluation_id,
        standing=decision,
        reason=StandingReason.REVIEW.value,
        actor=actor.name,
        note=note,
    )
    if decision == Standing.INVALID:  # nothing left to rectify for a rating that does not count
        await wo_service.end_invalidated(
            db=db, order=order, principal=actor, note=note, reason="review_invalidated"
        )
    return decision


def read(appeal: Appeal, org_code: str) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "work_order_id": appeal.work_order_id,
        "evaluation_id": appeal.evaluation_id,
        "org_code": org_code,
        "category": appeal.category,
        "category_label": CATEGORY_LABELS[appeal.category],
        "reasons": appeal.reasons,
        "state": appeal.state,
        "filed_by": appeal.filed_by,
        "filed_at": appeal.filed_at,
        "decide_due_at": appeal.decide_due_at,
        "decided_by": appeal.decided_by,
        "decided_at": appeal.decided_at,
        "decision_note": appeal.decision_note,
        "register_rater": appeal.register_rater,
    }
