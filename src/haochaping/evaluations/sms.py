"""Ratings by SMS reply: the operator's signed inbound webhook, matched to the phone's
latest open SMS invitation by the phone's keyed hash (never stored in the clear)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core import outbox
from haochaping.core.errors import DomainError, NotFound
from haochaping.core.outbox_models import OutboxChannel
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import invitations
from haochaping.evaluations.models import Evaluation, Invitation, SmsDialogue
from haochaping.evaluations.schemas import COMMENT_MAX, StageRule
from haochaping.evaluations.service import IntakeRules, Source
from haochaping.orgs.models import Item, Org

SIGNATURE_HEADER = "X-Haochaping-Signature"
SIGNATURE_PREFIX = "sha256="

# 5 = 非常满意 … 1 = 非常不满意 (the national interface's `satisfaction`).
LEVEL_WORDS = {
    "非常满意": 5,
    "满意": 4,
    "基本满意": 3,
    "不满意": 2,
    "非常不满意": 1,
}

HELP_TEXT = (
    "【好差评】未找到您可评价的办件或已超过评价期限。如需评价，请回复 1-5"
    "（5 非常满意，4 满意，3 基本满意，2 不满意，1 非常不满意）回复评价短信。"
)
UNCLEAR_TEXT = (
    "【好差评】请回复 1-5 评价本次服务：5 非常满意，4 满意，3 基本满意，2 不满意，1 非常不满意。"
)
THANKS_TEXT = "【好差评】已收到您的评价，感谢您的支持！"
REASON_TEXT = "【好差评】很抱歉给您带来不便。请直接回复短信告诉我们不满意的原因，我们将核实整改。"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for a body: `sha256=<hex HMAC-SHA256>`."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether the header carries this body's signature under the secret (constant time)."""
    if not secret or not header:
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def parse_level(text: str) -> int | None:
    """The level a reply names (`1`–`5` or the level's words), or None."""
    t = "".join(text.split()).translate(str.maketrans("１２３４５", "12345"))
    if t in {"1", "2", "3", "4", "5"}:
        return int(t)
    return LEVEL_WORDS.get(t.rstrip("。.!！"))


async def latest_invitation(db: AsyncSession, phone_hash: str) -> Invitation | None:
    """The phone's latest open (unused, unexpired) SMS invitation, matched by the keyed
    hash."""
    return (
        await db.execute(
            select(Invitation)
            .join(Case, Case.id == Invitation.case_id)
            .where(
                Case.applicant_phone_hash == phone_hash,
                Invitation.channel == "sms",
                Invitation.used_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Reply:
    """One inbound SMS as the operator reports it."""

    phone: str
    text: str
    message_key: str  # for deduplicating our answer when the operator retries


async def _answer(db: AsyncSession, reply: Reply, kind: str, text: str) -> None:
    await outbox.enqueue(
        db,
        kind=kind,
        channel=OutboxChannel.SMS.value,
        recipient=reply.phone,
        subject="短信评价回复",
        body=text,
        dedupe_key=f"sms-reply:{reply.message_key}",
    )


async def pending_dialogue(db: AsyncSession, invitation_id: int) -> SmsDialogue | None:
    """The open bad level of an invitation waiting for its reason, if any."""
    return (
        await db.execute(
            select(SmsDialogue)
            .where(SmsDialogue.invitation_id == invitation_id, SmsDialogue.closed_at.is_(None))
            .order_by(SmsDialogue.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _close(db: AsyncSession, dialogue_id: int) -> None:
    await db.execute(
        update(SmsDialogue)
        .where(SmsDialogue.id == dialogue_id, SmsDialogue.closed_at.is_(None))
        .values(closed_at=utcnow())
    )


async def _rate(
    db: AsyncSession,
    secret: str,
    rules: IntakeRules,
    inv: Invitation,
    level: int,
    comment: str | None,
) -> None:
    await invitations.submit_via_invitation(
        db=db,
        secret=secret,
        token=invitations.token_for(secret, inv),
        level=level,
        reasons=[],
        comment=comment,
        rules=rules,
        source=Source(user_agent="sms"),
    )


async def handle(
    *,
    db: AsyncSession,
    secret: str,
    rules: IntakeRules,
    reply: Reply,
) -> str:
    """Act on one reply and queue the SMS that answers it; the outcome's code. The caller
    commits. Outcomes: `rated` (stored), `reason_asked` (a bad level held until its reason),
    `help` (unknown phone, used or closed invitation, unclear text)."""
    phone_hash = rules.keys.identity_hash(reply.phone, "phone")
    inv = await latest_invitation(db, phone_hash) if phone_hash else None
    if inv is None or invitations.usable_problem(inv, utcnow()) is not None:
        await _answer(db, reply, "sms_help", HELP_TEXT)
        return "help"
    level = parse_level(reply.text)
    pending = await pending_dialogue(db, inv.id)
    if pending is not None:
        await _close(db, pending.id)
        if level is None:  # the reason for the held bad level: the rating is stored now
            await _rate(db, secret, rules, inv, pending.level, reply.text[:COMMENT_MAX])
            await _answer(db, reply, "sms_thanks", THANKS_TEXT)
            return "rated"
        # A new level replaces the held one (below).
    if level is None:
        await _answer(db, reply, "sms_help", UNCLEAR_TEXT)
        return "help"
    if rules.is_bad(level):
        db.add(SmsDialogue(invitation_id=inv.id, phone_hash=phone_hash, level=level))
        await db.flush()
        await _answer(db, reply, "sms_reason", REASON_TEXT)
        return "reason_asked"
    await _rate(db, secret, rules, inv, level, None)
    await _answer(db, reply, "sms_thanks", THANKS_TEXT)
    return "rated"


# --- invitation by SMS (the periodic job) ---------------------------------------------------

INVITE_BATCH = 500  # cases looked at per region and pass (the next pass takes the rest)
INVITE_TEXT = "【好差评】您在{org}办理的{item}已办结，请对本次服务进行评价：{url}"


@dataclass
class InviteRun:
    """What one pass of the SMS invitations did."""

    regions: int = 0
    sent: int = 0

    def __str__(self) -> str:
        return f"短信评价邀请：{self.regions} 个区划启用，发送 {self.sent} 条"


async def invite_due(
    db: AsyncSession,
    *,
    policies: Any,
    secret: str,
    base_url: str,
    default_window_days: int,
    now: datetime | None = None,
) -> InviteRun:
    """Send the rating link by SMS to each completed case still unrated `sms_invite_after_hours`
    after completion (its region's policy; off when unset or 0), once per case: a case that
    has an SMS invitation is never looked at again, and the outbox's dedupe key makes two
    processes' passes send one message. Bounded: completed within the region's rating window,
    at most `INVITE_BATCH` per region and pass. The caller commits."""
    clock = now or utcnow()
    run = InviteRun()
    region_codes = (await db.execute(select(Org.region_code).distinct())).scalars().all()
    for region_code in sorted(region_codes):
        try:
            values, _ = await policies.get(db, region_code)
        except NotFound:
            continue
        hours = values.sms_invite_after_hours
        if not hours:
            continue
        run.regions += 1
        window = await policies.window_days(db, region_code, default_window_days)
        stage = values.stages[-1]  # the last stage: a completed case has reached it
        has_sms = exists().where(Invitation.case_id == Case.id, Invitation.channel == "sms")
        rated = exists().where(Evaluation.case_id == Case.id)
        rows = (
            await db.execute(
                select(Case, Org.name, Item.name)
                .join(Org, Org.id == Case.org_id)
                .join(Item, Item.id == Case.item_id)
                .where(
                    Org.region_code == region_code,
                    Case.completed_at.is_not(None),
                    Case.completed_at <= clock - timedelta(hours=hours),
                    Case.completed_at > clock - timedelta(days=window),
                    Case.applicant_phone_hash.is_not(None),
                    ~has_sms,
                    ~rated,
                )
                .order_by(Case.completed_at, Case.id)
                .limit(INVITE_BATCH)
            )
        ).all()
        for case, org_name, item_name in rows:
            text = INVITE_TEXT.format(org=org_name, item=item_name, url="{url}")
            if await _invite_one(db, case, text, stage, window, secret, base_url):
                run.sent += 1
    return run


async def _invite_one(
    db: AsyncSession,
    case: Case,
    text: str,
    stage: StageRule,
    window: int,
    secret: str,
    base_url: str,
) -> bool:
    """One case's invitation and its SMS, together or not at all (a savepoint)."""
    phone = case.applicant_phone
    if not phone:
        return False
    nested = await db.begin_nested()
    try:
        inv = await invitations.create(
            db=db,
            case=case,
            stage=stage.code,
            channel="sms",
            window_days=window,
            stages={stage.code: stage},
            client_id=None,
        )
    except DomainError:  # not rateable any more (window closed, stage not reached)
        await nested.rollback()
        return False
    url = f"{base_url.rstrip('/')}/r/{invitations.token_for(secret, inv)}"
    queued = await outbox.enqueue(
        db,
        kind="sms_invitation",
        channel=OutboxChannel.SMS.value,
        recipient=phone,
        subject="短信评价邀请",
        body=text.replace("{url}", url),
        dedupe_key=f"sms-invite:{case.id}",
    )
    if not queued:  # another process invited this case meanwhile
        await nested.rollback()
        return False
    await nested.commit()
    return True
