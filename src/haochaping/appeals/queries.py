"""Read side of appeals: the decision queue, a work order's appeals, and held ratings.

Held ratings (待复核评价) are read here because this domain decides them
(``appeals.service.review_held``) and keeps the register behind most holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.cases.models import Case
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.security import mask_text
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.service import IntakeRules
from haochaping.evaluations.standing import EvaluationStanding, Standing, StandingReason
from haochaping.orgs.models import Item, Org
from haochaping.workorders.models import WorkOrder

Window = aliased(Org)


def appeals(*, actor: Principal, state: str | None = None, org_code: str | None = None) -> Select:
    """Appeals in the caller's subtree (and that of `org_code`, if named) with their unit's
    code and name, oldest first (the decision queue)."""
    stmt = (
        select(Appeal, Org.code, Org.name)
        .join(Org, Org.id == Appeal.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(Appeal.filed_at, Appeal.id)
    )
    if state:
        stmt = stmt.where(Appeal.state == state)
    if org_code:
        # The unit and everything below it; a plain prefix comparison (codes may hold "_").
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        stmt = stmt.where(func.substr(Org.path, 1, func.length(sub)) == sub)
    return stmt


async def appeal_page(
    *,
    db: AsyncSession,
    actor: Principal,
    state: str | None,
    cursor: str | None,
    org_code: str | None = None,
    newest_first: bool = False,
    limit: int = 20,
) -> tuple[list[tuple[Appeal, str, str]], str | None]:
    """One page of the appeals by filed time (the id breaking ties): (appeal, unit code, unit
    name) rows, oldest first (the decision queue) unless `newest_first`."""
    rows, nxt = await pagination.page(
        db,
        appeals(actor=actor, state=state, org_code=org_code),
        key=Appeal.id,
        time_key=Appeal.filed_at,
        cursor=cursor,
        limit=limit,
        descending=newest_first,
    )
    return [(a, code, name) for a, code, name in rows], nxt


async def of_work_order(db: AsyncSession, work_order_id: int) -> Sequence[Appeal]:
    """A work order's appeals, oldest first."""
    return (
        (
            await db.execute(
                select(Appeal).where(Appeal.work_order_id == work_order_id).order_by(Appeal.id)
            )
        )
        .scalars()
        .all()
    )


# --- held ratings: held for a reason other than the detectors ---------------------------------


def held_clause(actor: Principal, subtree: str | None = None) -> list[Any]:
    """Conditions: a rating in the actor's (or a narrower) subtree, held, not by a detector
    (the detectors' holds have their own queue)."""
    return [
        EvaluationStanding.standing == Standing.HELD.value,
        EvaluationStanding.reason != StandingReason.DETECTOR.value,
        Org.path.startswith(subtree or actor.org_path, autoescape=True),
    ]


async def held_count(db: AsyncSession, actor: Principal) -> int:
    """How many ratings in the actor's subtree wait for a review of their hold."""
    return (
        await db.execute(
            select(func.count())
            .select_from(EvaluationStanding)
            .join(Evaluation, Evaluation.id == EvaluationStanding.evaluation_id)
            .join(Org, Org.id == Evaluation.org_id)
            .where(*held_clause(actor))
        )
    ).scalar_one()


async def held_page(
    *,
    db: AsyncSession,
    actor: Principal,
    subtree: str | None,
    cursor: str | None,
    rules: IntakeRules,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], str | None]:
    """Held ratings of the actor's subtree, newest first, masked, with why they are held (the
    reason's code), the register's expiry (for a registered rater) and the work order (id and
    state), if any."""
    stmt = (
        select(
            Evaluation,
            EvaluationStanding,
            Org.code,
            Org.name,
            Case.case_no,
            Item.name,
            Window.name,
            WorkOrder.id,
            WorkOrder.state,
        )
        .join(EvaluationStanding, EvaluationStanding.evaluation_id == Evaluation.id)
        .join(Org, Org.id == Evaluation.org_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .outerjoin(WorkOrder, WorkOrder.evaluation_id == Evaluation.id)
        .where(*held_clause(actor, subtree))
    )
    rows, nxt = await pagination.page(
        db, stmt, key=Evaluation.id, cursor=cursor, limit=limit, descending=True
    )
    # The register's entries behind these holds: one query on the keyed hashes kept beside
    # each rating (the register stores the same hashes, never the numbers).
    hashes = {h for r in rows for h in (r[0].rater_cert_hash, r[0].rater_phone_hash) if h}
    expiry: dict[str, Any] = {}
    if hashes:
        expiry = dict(
            (
                await db.execute(
                    select(MaliciousRater.identity_hash, func.max(MaliciousRater.expires_at))
                    .where(
                        MaliciousRater.identity_hash.in_(hashes), MaliciousRater.active.is_(True)
                    )
                    .group_by(MaliciousRater.identity_hash)
                )
            ).all()
        )
    now = utcnow()
    items = []
    for ev, st, code, name, case_no, item_name, window_name, wo_id, wo_state in rows:
        until = max(
            (expiry[h] for h in (ev.rater_cert_hash, ev.rater_phone_hash) if h in expiry),
            default=None,
        )
        items.append(
            {
                "id": ev.id,
                "level": ev.level,
                "is_bad": rules.is_bad(ev.level),
                "channel": ev.channel,
                "evaluated_at": ev.evaluated_at,
                "reason_texts": [rules.tags[c].text if c in rules.tags else c for c in ev.reasons],
                "comment": mask_text(ev.comment),
                "org_code": code,
                "org_name": name,
                "case_no": case_no,
                "item_name": item_name or "",
                "window_name": window_name or "",
                "held_reason": st.reason,
                "held_note": mask_text(st.note),
                "held_at": st.updated_at,
                "register_until": until,
                "register_expired": until is not None and until <= now,
                "work_order": {"id": wo_id, "state": wo_state} if wo_id else None,
            }
        )
    return items, nxt


# --- the register of malicious raters ---------------------------------------------------------

REGISTER_STATES = ("active", "ended", "all")


def register_entries(
    *,
    actor: Principal,
    state: str = "active",
    subtree: str | None = None,
    identity_hash: str | None = None,
    now: datetime,
) -> Select:
    """Entries of the register whose unit is in the caller's (or a narrower) subtree, with the
    unit's code and name and the appeal's decision note: `active` (in force), `ended`
    (revoked or expired) or `all`; one identity's entries when its keyed hash is given."""
    stmt = (
        select(MaliciousRater, Org.code, Org.name, Appeal.decision_note)
        .join(Org, Org.id == MaliciousRater.org_id)
        .outerjoin(Appeal, Appeal.id == MaliciousRater.appeal_id)
        .where(Org.path.startswith(subtree or actor.org_path, autoescape=True))
    )
    in_force = and_(MaliciousRater.active.is_(True), MaliciousRater.expires_at > now)
    if state == "active":
        stmt = stmt.where(in_force)
    elif state == "ended":
        stmt = stmt.where(~in_force)
    if identity_hash:
        stmt = stmt.where(MaliciousRater.identity_hash == identity_hash)
    return stmt


async def register_page(
    *,
    db: AsyncSession,
    actor: Principal,
    state: str,
    subtree: str | None,
    identity_hash: str | None,
    cursor: str | None,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the register, newest entry first: why (the appeal or the evidence), until
    when, and whether it is in force, revoked (by whom, why) or expired."""
    now = utcnow()
    rows, nxt = await pagination.page(
        db,
        register_entries(
            actor=actor, state=state, subtree=subtree, identity_hash=identity_hash, now=now
        ),
        key=MaliciousRater.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    items = []
    for entry, code, name, decision_note in rows:
        if not entry.active:
            status = "revoked"
        elif entry.expires_at <= now:
            status = "expired"
        else:
            status = "active"
        items.append(
            {
                "id": entry.id,
                "kind": entry.kind,
                "masked": entry.masked,
                "org_code": code,
                "org_name": name,
                "appeal_id": entry.appeal_id,
                "why": entry.evidence or decision_note or "",
                "created_by": entry.created_by,
                "created_at": entry.created_at,
                "expires_at": entry.expires_at,
                "status": status,
                "revoked_at": entry.revoked_at,
                "revoked_by": entry.revoked_by,
                "revoke_note": entry.revoke_note,
            }
        )
    return items, nxt


async def register_count(db: AsyncSession, actor: Principal) -> int:
    """Entries in force in the caller's subtree."""
    stmt = register_entries(actor=actor, now=utcnow()).subquery()
    return (await db.execute(select(func.count()).select_from(stmt))).scalar_one()
