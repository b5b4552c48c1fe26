"""Integrity use cases: raise flags (the rating is held), review them (clear or invalidate, on
record), and register the staff identities the self-rating check compares."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.db import rows_changed
from haochaping.core.errors import Conflict, Forbidden, Invalid, NotFound
from haochaping.core.timeutil import utcnow
from haochaping.db.crypto import DataKeys, IdentityKind
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import (
    EvaluationStanding,
    Standing,
    StandingReason,
    set_standing,
)
from haochaping.integrity import detectors
from haochaping.integrity.choices import FlagStage, FlagState
from haochaping.integrity.flags import DETECTOR, raise_flags
from haochaping.integrity.models import IntegrityFlag, StaffIdentity
from haochaping.orgs.models import Org, Staff
from haochaping.workorders import service as wo_service

CLEARED = StandingReason.DETECTOR_CLEARED.value
RESCAN_DAYS = 90


class Decision(StrEnum):
    CLEAR = "clear"  # 排除：评价有效，恢复计入
    INVALIDATE = "invalidate"  # 判定无效：保留记录，不计入统计


async def get_flag(*, db: AsyncSession, actor: Principal, flag_id: int) -> IntegrityFlag:
    """A flag by id, for a reviewer whose subtree holds the rated unit."""
    row = (
        await db.execute(
            select(IntegrityFlag, Org.path)
            .join(Org, Org.id == IntegrityFlag.org_id)
            .where(IntegrityFlag.id == flag_id)
        )
    ).first()
    if row is None:
        raise NotFound("该疑似刷评标记不存在", code="flag_not_found")
    flag, path = row
    if not actor.covers(path):
        raise Forbidden("该评价不属于本单位或下级单位", code="out_of_scope")
    return flag


async def review(
    *, db: AsyncSession, actor: Principal, flag_id: int, decision: Decision, note: str | None
) -> IntegrityFlag:
    """Clear a flag (the rating counts again once no flag holds it) or invalidate the rating;
    a flag is reviewed once (409 after)."""
    flag = await get_flag(db=db, actor=actor, flag_id=flag_id)
    note = (note or "").strip() or None
    if decision == Decision.INVALIDATE and not note:
        raise Invalid("判定无效须填写复核意见", code="note_required", details=[{"field": "note"}])
    # Lock the rating's standing first, so two reviews of one rating take turns.
    standing = await db.get(EvaluationStanding, flag.evaluation_id, with_for_update=True)
    order = None
    if decision == Decision.INVALIDATE:
        order = await wo_service.order_of_rating(db, flag.evaluation_id, lock=True)
        wo_service.refuse_if_appealing(order)
    now = utcnow()
    to_state = FlagState.CLEARED if decision == Decision.CLEAR else FlagState.INVALIDATED
    done = await db.execute(
        update(IntegrityFlag)
        .where(IntegrityFlag.id == flag.id, IntegrityFlag.state == FlagState.OPEN.value)
        .values(state=to_state.value, reviewed_by=actor.name, reviewed_at=now, review_note=note)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(done) != 1:
        raise Conflict(
            "该标记已复核，不能重复处理", code="flag_already_reviewed", details=[{"id": flag.id}]
        )
    if decision == Decision.CLEAR:
        still_open = (
            await db.execute(
                select(IntegrityFlag.id)
                .where(
                    IntegrityFlag.evaluation_id == flag.evaluation_id,
                    IntegrityFlag.state == FlagState.OPEN.value,
                )
                .limit(1)
            )
        ).first()
        # Only the detectors' hold is lifted: a hold for another reason (the malicious-rater
        # register) stays until its own review.
        if (
            still_open is None
            and standing is not None
            and standing.standing == Standing.HELD.value
            and standing.reason == DETECTOR
        ):
            await set_standing(
                db=db,
                evaluation_id=flag.evaluation_id,
                standing=Standing.VALID,
                reason=CLEARED,
                actor=actor.name,
                note=note,
                source_id=flag.id,
            )
    else:
        await set_standing(
            db=db,
            evaluation_id=flag.evaluation_id,
            standing=Standing.INVALID,
            reason=DETECTOR,
            actor=actor.name,
            note=note,
            source_id=flag.id,
        )
        # The other open flags on the rating are settled by the same decision.
        await db.execute(
            update(IntegrityFlag)
            .where(
                IntegrityFlag.evaluation_id == flag.evaluation_id,
                IntegrityFlag.state == FlagState.OPEN.value,
            )
            .values(
                state=FlagState.INVALIDATED.value,
                reviewed_by=actor.name,
                reviewed_at=now,
                review_note=f"随标记 #{flag.id} 一并判定无效",
            )
            .execution_options(synchronize_session=False)
        )
        # A bad rating judged fake leaves nothing to rectify: its work order ends.
        await wo_service.end_invalidated(
            db=db, order=order, principal=actor, note=note, reason="integrity_invalidated", now=now
        )
    await db.flush()
    await db.refresh(flag)
    return flag


async def register_staff_identity(
    *,
    db: AsyncSession,
    actor: Principal,
    keys: DataKeys,
    staff_no: str,
    cert_no: str | None = None,
    phone: str | None = None,
) -> tuple[Staff, list[str], int]:
    """Record keyed hashes of a staff member's ID number and/or phone, then check the last
    90 days of their window's ratings against them; (staff, kinds, new flags)."""
    if not cert_no and not phone:
        raise Invalid(
            "须至少填写身份证号或手机号之一",
            code="identity_required",
            details=[{"field": "cert_no"}],
        )
    row = (
        await db.execute(
            select(Staff, Org.path)
            .join(Org, Org.id == Staff.org_id)
            .where(Staff.staff_no == staff_no)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"工作人员 {staff_no} 不存在",
            code="staff_not_found",
            details=[{"field": "staff_no", "value": staff_no}],
        )
    staff, path = row
    actor.require(path)
    kinds: list[str] = []
    pairs: tuple[tuple[IdentityKind, str | None], ...] = (("cert", cert_no), ("phone", phone))
    for kind, value in pairs:
        digest = keys.identity_hash(value, kind)
        if digest is None:
            continue
        kinds.append(kind)
        existing = await db.get(StaffIdentity, (staff.id, kind))
        if existing is None:
            db.add(
                StaffIdentity(
                    staff_id=staff.id,
                    kind=kind,
                    identity_hash=digest,
                    recorded_by=actor.name,
                    updated_at=utcnow(),
                )
            )
        else:
            existing.identity_hash, existing.recorded_by = digest, actor.name
            existing.updated_at = utcnow()
    # On record in the audit trail too: the identity row keeps only its latest recorder.
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.STAFF_IDENTITY_RECORDED,
        target_type="staff",
        target_id=staff.id,
        detail={"staff_no": staff.staff_no, "kinds": kinds},
    )
    await db.flush()
    flagged = await rescan_staff(db=db, keys=keys, staff=staff)
    return staff, kinds, flagged


async def rescan_staff(*, db: AsyncSession, keys: DataKeys, staff: Staff) -> int:
    """Flag the recent ratings of a staff member's cases and window that they rated."""
    check = detectors.REGISTRY[detectors.StaffSelfRating.name]
    assert isinstance(check, detectors.StaffSelfRating)
    hashes = (
        (
            await db.execute(
                select(StaffIdentity.identity_hash).where(StaffIdentity.staff_id == staff.id)
            )
        )
        .scalars()
        .all()
    )
    index = {h: [(staff.id, staff.org_id, staff.staff_no)] for h in hashes}
    hasher = keys.identity_hash
    since = utcnow() - timedelta(days=RESCAN_DAYS)
    E = Evaluation
    found: list[detectors.Finding] = []
    for column, value in ((E.staff_id, staff.id), (E.window_id, staff.org_id)):
        rows = (
            (
                await db.execute(
                    select(
                        E.id,
                        E.org_id,
                        E.staff_id,
                        E.window_id,
                        E.rater_cert_hash,
                        E.rater_phone_hash,
                    )
                    .where(column == value, E.received_at >= since)
                    .limit(20_000)
                )
            )
            .mappings()
            .all()
        )
        found.extend(f for r in rows for f in [check.match(hasher, index, dict(r))] if f)
    return len(await raise_flags(db=db, findings=found, stage=FlagStage.BATCH))
