"""`POST /api/v1/sms/inbound`: the SMS operator reports a citizen's reply (signed)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import StringConstraints, ValidationError

from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Invalid, Malformed, Unauthenticated, declare
from haochaping.core.schemas import InputModel, ReadModel
from haochaping.evaluations import sms

router = APIRouter(prefix="/api/v1", tags=["sms 短信评价"])

BODY_MAX = 16 * 1024


class SmsInbound(InputModel):
    from_: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=5, max_length=20, pattern=r"^\+?\d+$"),
    ]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    received_at: datetime

    model_config = {**InputModel.model_config, "populate_by_name": False}


class SmsInboundAnswer(ReadModel):
    outcome: str


class SmsInboundDisabled(DomainError):
    """Replies are not taken here (no operator secret configured): as if the route did not
    exist, a 404 — not a server error — so that nothing retries it or alarms."""

    status_code = 404
    code = "sms_inbound_disabled"
    message = "短信回复评价未启用（未配置 HAOCHAPING_SMS_INBOUND_SECRET）"


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc).replace("from_", "from")


def _phone(raw: str) -> str:
    """The number as cases store it: mainland numbers without the +86 prefix."""
    return raw[3:] if raw.startswith("+86") else raw


@router.post(
    "/sms/inbound",
    response_model=SmsInboundAnswer,
    responses=declare(
        400,
        401,
        404,
        422,
        codes={
            400: "malformed_request",
            401: "sms_signature_invalid",
            422: "validation_failed",
            404: "sms_inbound_disabled",
        },
    ),
)
async def inbound(request: Request, db: DbSession) -> SmsInboundAnswer:
    """A citizen's SMS reply, signed by the operator: `X-Haochaping-Signature:
    sha256=<hex HMAC-SHA256 of the raw body>`. Answered by SMS through the outbox."""
    settings = request.app.state.settings
    secret = settings.sms_inbound_secret
    if not secret:
        raise SmsInboundDisabled()
    body = await request.body()
    if len(body) > BODY_MAX or not sms.signature_ok(
        secret, body, request.headers.get(sms.SIGNATURE_HEADER)
    ):
        raise Unauthenticated("短信回调签名无效", code="sms_signature_invalid")
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Malformed("请求体不是有效的 JSON") from exc
    if not isinstance(raw, dict):
        raise Malformed("请求体应为 JSON 对象")
    if "from" in raw:
        raw["from_"] = raw.pop("from")
    try:
        data = SmsInbound.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(
            "短信回调内容不完整或格式错误",
            code="validation_failed",
            details=[
                {"field": ".".join(str(p) for p in e["loc"]).replace("from_", "from")}
                for e in exc.errors()
            ],
        ) from exc
    phone = _phone(data.from_)
    outcome = await sms.handle(
        db=db,
        secret=settings.secret_key,
        rules=request.app.state.rules,
        reply=sms.Reply(
            phone=phone,
            text=data.text,
            message_key=f"{phone}:{data.received_at.isoformat()}",
        ),
    )
    await db.commit()
    return SmsInboundAnswer(outcome=outcome)
