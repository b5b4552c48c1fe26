"""`POST /api/v1/compat/evaluations`: ratings in the national interface's shape, answered in
its terms (`{"status": {"code": "200"}, "custom": {"code": "1"|"0", "text"}}`)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from haochaping.core import errors
from haochaping.core.auth import ClientOnly, Principal
from haochaping.core.db import DbSession
from haochaping.core.schemas import ReadModel
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import service as evaluation_service
from haochaping.exchange import federation, national, records, service
from haochaping.workorders.loop import loop_context

router = APIRouter(prefix="/api/v1", tags=["compat 全国接口兼容"])


class CompatStatus(ReadModel):
    code: str


class CompatCustom(ReadModel):
    """`code` "1": stored (`id` the rating's); "0": refused, `text` says why and `error` is
    the stable code (the native route's, where it has one)."""

    code: str
    text: str
    id: int | None = None
    is_bad: bool | None = None
    work_order_state: str | None = None
    error: str | None = None
    field: str | None = None


class CompatAnswer(ReadModel):
    status: CompatStatus
    custom: CompatCustom


def dialect_of(request: Request) -> national.Dialect:
    settings = request.app.state.settings
    return national.Dialect(
        satisfaction=national.SatisfactionOrder(settings.compat_satisfaction),
        pf={int(k): v for k, v in settings.compat_pf.items()},
    )


@router.post(
    "/compat/evaluations",
    response_model=CompatAnswer,
    responses={400: {"model": CompatAnswer, "description": '请求体不是 {"params": {...}}'}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"params": {"type": "object"}},
                        "required": ["params"],
                    }
                }
            },
        }
    },
)
async def compat_evaluation(request: Request, db: DbSession, actor: ClientOnly) -> Any:
    """One rating as business systems send it to their provincial platform: `{"params":
    {projectNo, taskCode, deptCode, proStatus, pf, satisfaction, evalDetail,
    writingEvaluation, assessNumber, assessTime, userProp, userName, certKey, mobile,
    winName, winUserName}}`, field names in any case. A record whose case is unknown brings
    it (`taskCode`, `deptCode`, `proStatus`, times) within the key's scope. The rating is
    stored as through `POST /evaluations`; a refused record (HTTP 200, `custom.code` "0")
    stores nothing; a body that is not `{"params": {...}}` is a 400 with the same shape."""
    try:
        body = json.loads(await request.body())
        record = national.read_record(body, dialect_of(request), utcnow())
        stored = await service.take(
            db=db,
            actor=actor,
            record=record,
            rules=request.app.state.rules,
            keys=request.app.state.keys,
            source=evaluation_service.source_of(request),
            ctx=await loop_context(request, db),
        )
    except (ValueError, UnicodeDecodeError):
        await db.rollback()
        refused = national.RecordRefused("请求体不是有效的 JSON", "malformed_record")
        return JSONResponse(_malformed(refused), status_code=400)
    except national.RecordRefused as refused:
        await db.rollback()
        # A body that is no record at all is a 400 (still in the interface's terms); a record
        # the interface refuses is its own answer, HTTP 200 with custom.code "0".
        if refused.code == "malformed_record":
            return JSONResponse(_malformed(refused), status_code=400)
        return JSONResponse(_refusal(refused))
    await db.commit()
    return national.answer(ok=True, text="评价已接收", **stored)


def _refusal(refused: national.RecordRefused) -> dict[str, Any]:
    extra = {"error": refused.code, **({"field": refused.field} if refused.field else {})}
    return national.answer(ok=False, text=refused.text, **extra)


def _malformed(refused: national.RecordRefused) -> dict[str, Any]:
    """A body that is no record: the API's error body and the interface's refusal in one
    answer, for native and interface clients alike."""
    details = [{"field": refused.field}] if refused.field else []
    error = {"code": refused.code, "message": refused.text, "details": details}
    return {"error": error, **_refusal(refused)}


# --- reporting up (上报): a child instance's batches, and reconciliation -------------------


class ExchangeResult(ReadModel):
    """One record's answer: `code` "1" stored (or already stored: `duplicate`), "0" refused
    (`error` the stable code, `text` why, `field` where)."""

    index: int
    sourceId: int | None = None  # noqa: N815 - the exchange format's spelling
    code: str
    id: int | None = None
    duplicate: bool | None = None
    error: str | None = None
    text: str | None = None
    field: str | None = None


class ExchangeAnswer(ReadModel):
    formatVersion: str  # noqa: N815
    accepted: int
    refused: int
    results: list[ExchangeResult]


class ReconciliationRead(ReadModel):
    """The parent's count and SM3 digest of the calling child's ratings of one local day."""

    formatVersion: str  # noqa: N815
    day: date
    count: int
    digest: str


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "formatVersion": {"type": "string", "enum": [records.FORMAT_VERSION]},
                        "records": {
                            "type": "array",
                            "items": {"type": "object"},
                            "maxItems": records.MAX_BATCH,
                        },
                    },
                    "required": ["formatVersion", "records"],
                }
            }
        },
    }
}
_BATCH_ERRORS = errors.declare(
    400,
    403,
    422,
    codes={
        400: "malformed_batch",
        403: "exchange_forbidden",
        422: ["unsupported_format_version", "batch_too_large"],
    },
)


def _exchange_client(actor: ClientOnly) -> Principal:
    federation.require_exchange(actor)
    return actor


# A child instance's client: an API key holding the `exchange` channel (403 otherwise).
ExchangeClient = Annotated[Principal, Depends(_exchange_client)]


async def _batch_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise errors.Malformed("请求体不是有效的 JSON", code="malformed_batch") from None


# A batch's JSON body, parsed (checked as a batch by the service: 400 malformed_batch).
BatchBody = Annotated[Any, Depends(_batch_body)]


def _answer(results: list[dict[str, Any]]) -> dict[str, Any]:
    accepted = sum(1 for r in results if r["code"] == "1")
    return {
        "formatVersion": records.FORMAT_VERSION,
        "accepted": accepted,
        "refused": len(results) - accepted,
        "results": results,
    }


@router.post(
    "/exchange/evaluations",
    response_model=ExchangeAnswer,
    responses=_BATCH_ERRORS,
    openapi_extra=_BATCH_BODY,
    tags=["exchange 上报"],
)
async def exchange_evaluations(
    request: Request, db: DbSession, actor: ExchangeClient, body: BatchBody
) -> Any:
    """A child instance reports a batch of ratings (`{"formatVersion": "hcp-exchange/1",
    "records": [...]}`, national field names, see docs/api-contract.md). Each record is
    answered in order: stored, already stored (`duplicate`: same `sourceId`, or same case
    number, stage and evaluation count — nothing is stored twice) or refused with a stable
    code (nothing of it stored). Only a client holding the `exchange` channel may call."""
    results = await federation.take_ratings(
        db=db, actor=actor, body=body, dialect=dialect_of(request)
    )
    await db.commit()
    return _answer(results)


@router.post(
    "/exchange/work-orders",
    response_model=ExchangeAnswer,
    responses=_BATCH_ERRORS,
    openapi_extra=_BATCH_BODY,
    tags=["exchange 上报"],
)
async def exchange_work_orders(db: DbSession, actor: ExchangeClient, body: BatchBody) -> Any:
    """A child instance reports a batch of work-order outcomes (`sourceId` the order's id
    there, `evalSourceId` its rating's, `state`, `openTime`, `closeTime`, `closeReason`,
    `eventId`); an order's newest report wins."""
    results = await federation.take_work_orders(db=db, actor=actor, body=body)
    await db.commit()
    return _answer(results)


@router.get(
    "/exchange/reconciliation",
    response_model=ReconciliationRead,
    responses=errors.declare(403, codes={403: "exchange_forbidden"}),
    tags=["exchange 上报"],
)
async def exchange_reconciliation(
    db: DbSession,
    actor: ExchangeClient,
    day: Annotated[date, Query(description="北京时间的日期（评价时间），如 2026-12-06")],
) -> Any:
    """The parent's count and SM3 digest of the calling child's ratings of one day (by rating
    time, Beijing), over the records in `sourceId` order (docs/api-contract.md)."""
    figures = await federation.day_figures(db, day=day, origin_client_id=actor.id)
    return {
        "formatVersion": records.FORMAT_VERSION,
        "day": figures.day,
        "count": figures.count,
        "digest": figures.digest,
    }
