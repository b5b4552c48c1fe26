"""The window evaluator's rules: pairing a pad with its window, the services a window
announces, and a rating pressed on a pad (stored through the same intake as the API)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Invalid, NotFound, Unauthenticated
from haochaping.core.security import hash_api_key
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.schemas import EvaluationCreate
from haochaping.evaluations.service import IntakeRules, Source
from haochaping.orgs.choices import OrgKind
from haochaping.orgs.models import Item, Org, Staff
from haochaping.orgs.service import inactive
from haochaping.pads import schemas
from haochaping.pads.choices import PadState
from haochaping.pads.models import PadDevice, WindowService

# A pairing code: 8 characters people can read off a screen and type (no 0/O, 1/I/L).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
PAIRING_MINUTES = 10
# How far a pad's clock may run ahead, and how long before the announced start of a service
# a press may claim to be (clocks of pads and queuing systems differ a little).
CLOCK_SKEW = timedelta(minutes=5)
# A rating held offline is still taken this long after the service was announced.
OFFLINE_DAYS = 7
# last_seen_at is written at most this often (the pad polls every 2 s).
SEEN_EVERY = timedelta(seconds=60)
DEVICE_PREFIX = "pad-"
WINDOW_REFUSED = "评价器不再接受评价"
# The command line acts over every window (whoever runs it holds the database).
CLI = Principal(kind="user", id=0, name="cli", org_id=0, org_path="/")


def pairing_url(base_url: str, code: str) -> str:
    """The pairing page with the code filled in (the QR a pad's camera may open)."""
    return f"{base_url.rstrip('/')}/pad/pair?code={code}"


def normalise_code(text: str) -> str:
    """A pairing code as typed (any case, spaces and dashes) in its stored form."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def format_code(code: str) -> str:
    """`ABCD-EFGH`: how the code is shown."""
    return f"{code[:4]}-{code[4:]}"


def code_digest(secret: str, code: str) -> str:
    """The stored form of a pairing code: keyed, so that a copy of the table does not let
    anyone try the short codes offline."""
    key = secret.encode("utf-8")
    return hmac.new(key, b"pad-pairing:" + code.encode("ascii"), hashlib.sha256).hexdigest()


def device_label(device_id: int) -> str:
    """The `device_id` a pad's ratings carry (`evaluation.device_id`)."""
    return f"{DEVICE_PREFIX}{device_id}"


def state_of(device: Any, now: datetime) -> PadState:
    """Where a pad stands."""
    if device.revoked_at is not None:
        return PadState.REVOKED
    if device.paired_at is not None:
        return PadState.PAIRED
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        return PadState.EXPIRED
    return PadState.PENDING


async def get_window(*, db: AsyncSession, window_code: str, actor: Principal | None = None) -> Org:
    """A window by code (404 `window_not_found` for an unknown code or an organisation that
    is not a window), inside the caller's subtree (403 `out_of_scope`)."""
    window = (await db.execute(select(Org).where(Org.code == window_code))).scalar_one_or_none()
    if window is None or window.kind != OrgKind.WINDOW:
        raise NotFound(
            f"窗口 {window_code} 不存在",
            code="window_not_found",
            details=[{"field": "window_code", "value": window_code}],
        )
    if actor is not None:
        actor.require(window.path)
    return window


async def create_pairing(
    *,
    db: AsyncSession,
    secret: str,
    window_code: str,
    name: str | None = None,
    actor: Principal | None = None,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """A new pad of a window with a one-time pairing code (shown once, valid
    `PAIRING_MINUTES`); `actor` None is the command line (no scope)."""
    window = await get_window(db=db, window_code=window_code, actor=actor)
    if not window.active:
        raise inactive("org", window.code, "window_code", "不能再配对评价器")
    now = utcnow()
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    if not name:
        count = len(
            (await db.execute(select(PadDevice.id).where(PadDevice.window_id == window.id))).all()
        )
        name = f"{window.name}评价器{count + 1}"
    device = PadDevice(
        window_id=window.id,
        name=name,
        pairing_hash=code_digest(secret, code),
        pairing_expires_at=now + timedelta(minutes=PAIRING_MINUTES),
        created_at=now,
        created_by=actor.name if actor is not None else "cli",
    )
    db.add(device)
    await db.flush()
    audit.record(
        db,
        actor=device.created_by,
        actor_role=actor.role if actor is not None else None,
        action=audit.AuditAction.PAIR_PAD,
        target_type="pad_device",
        target_id=device.id,
        detail={"window": window.code, "name": name},
        source_ip=source_ip,
    )
    return {
        "device_id": device.id,
        "window_code": window.code,
        "name": name,
        "code": format_code(code),
        "expires_at": device.pairing_expires_at,
    }


async def pair(*, db: AsyncSession, secret: str, code: str) -> tuple[PadDevice, str]:
    """Spend a pairing code: the pad gets a long-lived credential (returned once; only its
    digest is kept). 422 `pairing_code_invalid` for an unknown or spent code,
    `pairing_code_expired` for one past its time."""
    now = utcnow()
    normal = normalise_code(code)
    invalid = Invalid(
        "配对码不正确或已使用，请核对后重新输入",
        code="pairing_code_invalid",
        details=[{"field": "code"}],
    )
    if len(normal) != CODE_LENGTH:
        raise invalid
    device = (
        await db.execute(
            select(PadDevice).where(
                PadDevice.pairing_hash == code_digest(secret, normal),
                PadDevice.paired_at.is_(None),
                PadDevice.revoked_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if device is None:
        raise invalid
    if state_of(device, now) is PadState.EXPIRED:
        raise Invalid(
            "配对码已过期，请在管理端重新生成",
            code="pairing_code_expired",
            details=[{"field": "code"}],
        )
    token = secrets.token_urlsafe(32)
    device.credential_hash = hash_api_key(token)
    device.pairing_hash = None
    device.paired_at = now
    device.last_seen_at = now
    await db.flush()
    return device, token


async def authenticate(*, db: AsyncSession, token: str | None) -> tuple[PadDevice, Org]:
    """The pad holding this credential and its window: 401 `pad_unpaired` without a known
    credential, 401 `pad_revoked` once revoked in the console."""
    if not token:
        raise Unauthenticated("此设备尚未配对，请输入配对码", code="pad_unpaired")
    row = (
        await db.execute(
            select(PadDevice, Org)
            .join(Org, Org.id == PadDevice.window_id)
            .where(PadDevice.credential_hash == hash_api_key(token))
        )
    ).first()
    if row is None:
        raise Unauthenticated("此设备尚未配对，请输入配对码", code="pad_unpaired")
    device, window = row
    if device.revoked_at is not None:
        raise Unauthenticated(
            "此评价器已被管理员停用，请联系大厅管理员重新配对", code="pad_revoked"
        )
    now = utcnow()
    if device.last_seen_at is None or now - device.last_seen_at > SEEN_EVERY:
        await db.execute(
            update(PadDevice).where(PadDevice.id == device.id).values(last_seen_at=now)
        )
    return device, window


def principal_of(device: PadDevice, window: Org) -> Principal:
    """The pad as a caller of intake: bound to its window and the `pad` channel."""
    return Principal(
        kind="device",
        id=device.id,
        name=device.name,
        org_id=window.id,
        org_path=window.path,
        channels=frozenset({Channel.PAD.value}),
    )


async def revoke(
    *, db: AsyncSession, actor: Principal, device_id: int, source_ip: str | None = None
) -> PadDevice:
    """Stop a pad (its credential and any unused code stop working at once)."""
    row = (
        await db.execute(
            select(PadDevice, Org.path, Org.code)
            .join(Org, Org.id == PadDevice.window_id)
            .where(PadDevice.id == device_id)
        )
    ).first()
    if row is None or not actor.covers(row[1]):
        raise NotFound("评价器不存在或不在本账号的管辖范围内", code="pad_not_found")
    device = row[0]
    if device.revoked_at is not None:
        return device
    device.revoked_at = utcnow()
    device.revoked_by = actor.name
    device.pairing_hash = None
    await db.flush()
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.REVOKE_PAD,
        target_type="pad_device",
        target_id=device.id,
        detail={"window": row[2], "name": device.name},
        source_ip=source_ip,
    )
    return device


async def start_service(
    *, db: AsyncSession, actor: Principal, window_code: str, data: schemas.ServingCreate
) -> dict[str, Any]:
    """The window serves this case now: the open service of the window (if any) ends and a
    new one starts; the window's pads show it within seconds."""
    window = await get_window(db=db, window_code=window_code, actor=actor)
    if not window.active:
        raise inactive("org", window.code, "window_code", WINDOW_REFUSED)
    row = (
        await db.execute(
            select(Case.id, Case.item_id, Case.staff_id, Org.path)
            .join(Org, Org.id == Case.org_id)
            .where(Case.case_no == data.case_no)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"办件 {data.case_no} 不存在",
            code="case_not_found",
            details=[{"field": "case_no", "value": data.case_no}],
        )
    actor.require(row.path)
    item = (await db.execute(select(Item).where(Item.id == row.item_id))).scalar_one()
    if data.item_code is not None and data.item_code != item.code:
        raise Invalid(
            f"事项 {data.item_code} 不是办件 {data.case_no} 的事项（{item.code}）",
            code="item_mismatch",
            details=[{"field": "item_code", "value": data.item_code}],
        )
    staff = None
    if data.staff_no is not None:
        staff = (
            await db.execute(select(Staff).where(Staff.staff_no == data.staff_no))
        ).scalar_one_or_none()
        if staff is None:
            raise NotFound(
                f"工作人员 {data.staff_no} 不存在",
                code="staff_not_found",
                details=[{"field": "staff_no", "value": data.staff_no}],
            )
        if not staff.active:
            raise inactive("staff", staff.staff_no, "staff_no", WINDOW_REFUSED)
    elif row.staff_id is not None:
        staff = await db.get(Staff, row.staff_id)
    now = utcnow()
    await _end_open(db, window.id, now)
    service = WindowService(
        window_id=window.id,
        case_id=row.id,
        flow_no=data.flow_no,
        item_id=item.id,
        staff_id=staff.id if staff is not None else None,
        client_id=actor.id if actor.is_client else None,
        started_at=now,
    )
    db.add(service)
    await db.flush()
    return {
        "id": service.id,
        "window_code": window.code,
        "case_no": data.case_no,
        "flow_no": service.flow_no,
        "item_code": item.code,
        "item_name": item.name,
        "staff_no": staff.staff_no if staff is not None else None,
        "staff_name": staff.name if staff is not None else None,
        "started_at": service.started_at,
    }


async def _end_open(db: AsyncSession, window_id: int, now: datetime) -> int:
    result = await db.execute(
        update(WindowService)
        .where(WindowService.window_id == window_id, WindowService.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def end_service(*, db: AsyncSession, actor: Principal, window_code: str) -> int:
    """The window serves nobody now (its pads go idle); how many services ended (0 or 1)."""
    window = await get_window(db=db, window_code=window_code, actor=actor)
    return await _end_open(db, window.id, utcnow())


async def rate(
    *,
    db: AsyncSession,
    device: PadDevice,
    window: Org,
    data: schemas.PadRating,
    rules: IntakeRules,
    source: Source,
) -> dict[str, Any]:
    """Store a rating pressed on a pad for a service of its window, through the same intake
    as `POST /evaluations` (channel `pad`, the pad as device, the window and staff of the
    service), with the display and press moments; the caller commits."""
    if not window.active:
        raise inactive("org", window.code, "service_id", WINDOW_REFUSED)
    service = (
        await db.execute(select(WindowService).where(WindowService.id == data.service_id))
    ).scalar_one_or_none()
    if service is None or service.window_id != window.id:
        raise NotFound(
            "此服务不属于本评价器的窗口",
            code="service_not_found",
            details=[{"field": "service_id", "value": data.service_id}],
        )
    now = utcnow()
    pressed = data.evaluated_at
    if (
        pressed < service.started_at - CLOCK_SKEW
        or pressed > now + CLOCK_SKEW
        or pressed > service.started_at + timedelta(days=OFFLINE_DAYS)
    ):
        raise Invalid(
            "评价时间与本次服务的时间不符，请校准评价器的时钟",
            code="evaluated_at_out_of_range",
            details=[{"field": "evaluated_at"}],
        )
    case_no = (
        await db.execute(select(Case.case_no).where(Case.id == service.case_id))
    ).scalar_one()
    found = await evaluation_service.resolve_case_targets(db=db, case_nos={case_no})
    case, _, target = found[case_no]
    # The rating is of the window and the staff member who served, as announced.
    target.window_id, target.window_code = window.id, window.code
    if service.staff_id is not None:
        staff_no = (
            await db.execute(select(Staff.staff_no).where(Staff.id == service.staff_id))
        ).scalar_one()
        target.staff_id, target.staff_no = service.staff_id, staff_no
    content = EvaluationCreate(
        case_no=case_no,
        channel=Channel.PAD,
        level=data.level,
        reasons=list(data.reasons),
        evaluated_at=pressed,
        displayed_at=min(data.displayed_at, pressed),
        device_id=device_label(device.id),
    )
    # Through the client that announced the service (the hall's queuing system, as when it
    # posted pad ratings itself): the detectors then trust the press time the pad reports,
    # so that ratings buffered offline and sent together are judged by when they were given.
    source.client_id = service.client_id
    body = await evaluation_service.submit(
        db=db,
        actor=principal_of(device, window),
        data=content,
        rules=rules,
        source=source,
        target=target,
        case=case,
    )
    evaluated = min(pressed, now)
    display_ms = int((evaluated - min(data.displayed_at, evaluated)).total_seconds() * 1000)
    return {
        "id": body["id"],
        "level": body["level"],
        "is_bad": body["is_bad"],
        "display_ms": display_ms,
    }
