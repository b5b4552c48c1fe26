"""Signed, single-use rating links (评价邀请) for a case's applicant."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.db import rows_changed
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.security import load_signed, signer
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.models import Invitation
from haochaping.evaluations.schemas import EvaluationCreate, StageRule
from haochaping.evaluations.service import IntakeRules, Source

SALT = "invitation"


def token_for(secret: str, invitation: Invitation) -> str:
    """The signed token that stands in the link (the nonce alone is guessable by no one)."""
    return signer(secret, SALT).dumps({"n": invitation.nonce})


def expiry_for(case: Case, window_days: int, now: datetime) -> datetime:
    """A link lives until the evaluation window closes (completion + N days)."""
    start = case.completed_at or now
    return start + timedelta(days=window_days)


async def create(
    *,
    db: AsyncSession,
    case: Case,
    stage: str,
    channel: str,
    window_days: int,
    stages: Mapping[str, StageRule],
    client_id: int | None,
) -> Invitation:
    """A new invitation for an accepted case, at a stage of its region's list it has
    reached."""
    now = utcnow()
    await evaluation_service.check_case_open(db=db, case_id=case.id)
    if case.status == "received" or case.accepted_at is None:
        raise Invalid(
            "办件尚未受理，暂不能发送评价邀请",
            code="case_not_accepted",
            details=[{"field": "case_no"}],
        )
    rule = evaluation_service.check_stage(stage=stage, stages=stages)
    evaluation_service.check_stage_reached(case=case, rule=rule)
    expires = expiry_for(case, window_days, now)
    if expires <= now:
        raise Invalid(
            "已超过评价期限，不能再发送评价邀请",
            code="evaluation_window_closed",
            details=[{"field": "case_no"}],
        )
    inv = Invitation(
        nonce=secrets.token_urlsafe(18),
        case_id=case.id,
        stage=stage,
        channel=channel,
        expires_at=expires,
        client_id=client_id,
        created_at=now,
    )
    db.add(inv)
    await db.flush()
    return inv


class InvitationProblem(Invalid):
    """Why a link cannot be used: forged, expired, used."""


async def open_link(*, db: AsyncSession, secret: str, token: str) -> Invitation:
    """The invitation behind a token, or a clear refusal (forged, unknown)."""
    data = load_signed(secret, SALT, token, max_age=None)
    if not data or not isinstance(data.get("n"), str):
        raise NotFound("评价链接无效，请核对链接或联系办理窗口", code="invitation_invalid")
    inv = (
        await db.execute(select(Invitation).where(Invitation.nonce == data["n"]))
    ).scalar_one_or_none()
    if inv is None:
        raise NotFound("评价链接无效，请核对链接或联系办理窗口", code="invitation_invalid")
    return inv


def usable_problem(inv: Invitation, now: datetime) -> str | None:
    """None when the link may be used; otherwise the stable reason code."""
    if inv.used_at is not None:
        return "invitation_used"
    if now >= inv.expires_at:
        return "invitation_expired"
    return None


async def mark_used(
    *, db: AsyncSession, invitation_id: int, evaluation_id: int, now: datetime
) -> bool:
    """Spend the link; False when another request spent it first (single use, race-safe)."""
    result = await db.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.used_at.is_(None))
        .values(used_at=now, evaluation_id=evaluation_id)
    )
    return rows_changed(result) == 1


async def get_case(db: AsyncSession, case_id: int) -> Case:
    case = await db.get(Case, case_id)
    if case is None:  # pragma: no cover - FK guarantees it
        raise NotFound("办件不存在", code="case_not_found")
    return case


async def submit_via_invitation(
    *,
    db: AsyncSession,
    secret: str,
    token: str,
    level: int,
    reasons: list[str],
    comment: str | None,
    rules: IntakeRules,
    source: Source,
) -> dict[str, Any]:
    """A citizen's rating through a signed link: the link names case, stage and channel,
    and is spent by the rating (single use, race-safe). The caller commits."""
    inv = await open_link(db=db, secret=secret, token=token)
    now = utcnow()
    problem = usable_problem(inv, now)
    if problem == "invitation_used":
        raise Conflict("此评价链接已使用过，感谢您的评价", code=problem)
    if problem == "invitation_expired":
        raise Invalid("此评价链接已过期", code=problem)
    case = await get_case(db, inv.case_id)
    data = EvaluationCreate(
        case_no=case.case_no,
        stage=inv.stage,
        channel=Channel(inv.channel),
        level=level,
        reasons=reasons,
        comment=comment or None,
    )
    actor = Principal(
        kind="invitation",
        id=inv.id,
        name="citizen",
        org_id=0,
        org_path="/",
        channels=frozenset({inv.channel}),
    )
    source.invitation_id, source.client_id = inv.id, inv.client_id
    body = await evaluation_service.submit(
        db=db, actor=actor, data=data, rules=rules, source=source
    )
    if not await mark_used(db=db, invitation_id=inv.id, evaluation_id=body["id"], now=now):
        raise Conflict("此评价链接已使用过，感谢您的评价", code="invitation_used")
    return body
