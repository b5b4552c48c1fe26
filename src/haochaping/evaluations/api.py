"""JSON routes for ratings: intake (single, batch), reading, and rating links."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from haochaping.cases import service as case_service
from haochaping.cases.schemas import InvitationCreate, InvitationRead
from haochaping.core import idempotency, pagination
from haochaping.core.auth import CurrentPrincipal, CurrentUser, InviterOrClient, cached_client
from haochaping.core.db import DbSession
from haochaping.core.errors import Forbidden, NotFound, declare
from haochaping.core.lean import Fallback, LeanRequest, LeanResponse, LeanRoute
from haochaping.core.schemas import (
    Id,
    Limit,
    Page,
    Timestamp,
)
from haochaping.evaluations import invitations, queries, schemas
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.models import Evaluation

router = APIRouter(prefix="/api/v1", tags=["evaluations 评价"])


def _conflict_bodies() -> dict[int | str, dict[str, Any]]:
    return {
        409: {"description": "已评价（duplicate_evaluation），details 中给出已有评价的 id"},
        404: {"description": "办件不存在（case_not_found）"},
        403: {"description": "渠道或机构超出 API 密钥的范围"},
        422: {
            "description": "未受理、超出评价期限、原因代码不符、差评缺少原因、"
            "机构/事项/工作人员已停用（org_inactive、item_inactive、staff_inactive）等"
        },
    }


def _json_default(value: Any) -> Any:
    # Datetimes are the values JSON lacks in every intake answer (two per rating):
    # `isoformat()` is what jsonable_encoder gives them, without its generic dispatch.
    if isinstance(value, datetime):
        return value.isoformat()
    return jsonable_encoder(value)


def json_bytes(content: Any) -> bytes:
    """The bytes of `JSONResponse(jsonable_encoder(content))`, encoded in one pass."""
    # jsonable_encoder first walks every value in Python: ~150 us per item of a batch answer
    # against ~14 us for json.dumps calling it only for the values JSON lacks (datetimes).
    return json.dumps(
        content,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
        default=_json_default,
    ).encode("utf-8")


def fast_json(content: Any, status_code: int = 200) -> Response:
    """`JSONResponse(jsonable_encoder(content))`, encoded in one pass."""
    return Response(json_bytes(content), status_code=status_code, media_type="application/json")


@router.post(
    "/evaluations",
    status_code=201,
    response_model=schemas.EvaluationRead,
    responses=_conflict_bodies(),
)
async def create_evaluation(
    data: schemas.EvaluationCreate,
    request: Request,
    db: DbSession,
    actor: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header()] = None,
):
    """Submit one rating. A retry with the same `Idempotency-Key` replays the first answer."""
    rules = request.app.state.rules
    source = evaluation_service.source_of(request)
    group = request.app.state.intake_group
    if idempotency_key is None and group is not None:
        # Stored with the ratings arriving beside it, in one transaction; answered after its
        # COMMIT. What authentication read is let go first: the writer uses its own session.
        await db.rollback()
        body = await group.submit(
            evaluation_service.Submission(actor=actor, data=data, source=source)
        )
        return fast_json(body, status_code=201)
    if idempotency_key is not None:
        digest = idempotency.request_hash(data.model_dump(mode="json"))
        replay = await idempotency.claim(db=db, actor=actor, key=idempotency_key, digest=digest)
        if replay is not None:
            await db.rollback()
            return JSONResponse(
                replay[1], status_code=replay[0], headers={"Idempotent-Replayed": "true"}
            )
    body = await evaluation_service.submit(
        db=db, actor=actor, data=data, rules=rules, source=source
    )
    response = fast_json(body, status_code=201)
    if idempotency_key is not None:
        await idempotency.store(
            db=db,
            actor=actor,
            key=idempotency_key,
            status_code=201,
            body=json.loads(bytes(response.body)),
        )
    await db.commit()
    return response


def prefers_minimal(prefer: str | None) -> bool:
    """`Prefer: return=minimal` (RFC 7240) among the header's preferences."""
    return prefer is not None and any(
        part.split(";")[0].strip().lower().replace(" ", "") == "return=minimal"
        for part in prefer.split(",")
    )


@router.post("/evaluations/batch", response_model=schemas.BatchResult)
async def create_evaluations_batch(
    data: schemas.EvaluationBatch,
    request: Request,
    db: DbSession,
    actor: CurrentPrincipal,
    prefer: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
):
    """Up to 1,000 independent ratings from a buffering channel; one result per item.

    A stored item answers `{"status": 201, "id", "evaluation"}` with the stored rating; with
    `Prefer: return=minimal` just `{"status": 201, "id"}` (what the contract requires, and a
    fraction of the bytes and CPU); refused items answer `{"status", "error"}` either way.
    A retry with the same `Idempotency-Key` replays the first answer and stores nothing (what
    keeps `review`/`inspection` items, which have no natural key, from being stored twice)."""
    minimal = prefers_minimal(prefer)
    headers = {"Preference-Applied": "return=minimal"} if minimal else {}
    if idempotency_key is not None:
        digest = idempotency.request_hash({"items": data.items, "minimal": minimal})
        replay = await idempotency.claim(db=db, actor=actor, key=idempotency_key, digest=digest)
        if replay is not None:
            await db.rollback()
            return JSONResponse(
                replay[1], status_code=replay[0], headers={**headers, "Idempotent-Replayed": "true"}
            )
    results = await evaluation_service.submit_batch(
        db=db,
        actor=actor,
        items=data.items,
        rules=request.app.state.rules,
        source=evaluation_service.source_of(request),
        echo=not minimal,
    )
    response = fast_json({"items": results})
    if idempotency_key is not None:
        await idempotency.store(
            db=db,
            actor=actor,
            key=idempotency_key,
            status_code=200,
            body=json.loads(bytes(response.body)),
        )
    await db.commit()
    response.headers.update(headers)
    return response


# The lean path (core/lean.py) of the two intake routes: requests with an API key that this
# process has cached, a JSON body and no `Idempotency-Key` (nor cookie) are served below with
# one parse of the body, no dependency solving and one encode of the answer; everything else,
# and any body that does not validate, goes to the routes above, which answer as always.


async def _lean_client(req: LeanRequest) -> Any:
    actor = await cached_client(req.state, req.headers[b"x-api-key"].decode("latin-1"))
    if actor is None:
        raise Fallback  # a key this process has not cached, or an invalid one: 401 there
    return actor


async def lean_create_evaluation(req: LeanRequest) -> LeanResponse:
    """`create_evaluation` without the framework: same checks, storage and answer."""
    actor = await _lean_client(req)
    try:
        data = schemas.EvaluationCreate.model_validate_json(req.body)
    except ValidationError:
        raise Fallback from None  # the framework words the 400/422 as it always has
    state = req.state
    source = evaluation_service.Source(ip=req.client_host, user_agent=req.header(b"user-agent"))
    group = state.intake_group
    if group is not None:
        body = await group.submit(
            evaluation_service.Submission(actor=actor, data=data, source=source)
        )
    else:
        async with state.sessionmaker() as db:
            body = await evaluation_service.submit(
                db=db, actor=actor, data=data, rules=state.rules, source=source
            )
            await db.commit()
    return LeanResponse(201, json_bytes(body))


async def lean_create_evaluations_batch(req: LeanRequest) -> LeanResponse:
    """`create_evaluations_batch` without the framework: same checks, storage and answer."""
    actor = await _lean_client(req)
    try:
        data = schemas.EvaluationBatch.model_validate_json(req.body)
    except ValidationError:
        raise Fallback from None
    minimal = prefers_minimal(req.header(b"prefer"))
    state = req.state
    async with state.sessionmaker() as db:
        results = await evaluation_service.submit_batch(
            db=db,
            actor=actor,
            items=data.items,
            rules=state.rules,
            source=evaluation_service.Source(
                ip=req.client_host, user_agent=req.header(b"user-agent")
            ),
            echo=not minimal,
        )
        await db.commit()
    headers = [(b"preference-applied", b"return=minimal")] if minimal else []
    return LeanResponse(200, json_bytes({"items": results}), headers)


_LEAN_HEADERS = {"requires": (b"x-api-key",), "declines": (b"idempotency-key",)}
LEAN_ROUTES = {
    ("POST", "/api/v1/evaluations"): LeanRoute(lean_create_evaluation, **_LEAN_HEADERS),
    ("POST", "/api/v1/evaluations/batch"): LeanRoute(
        lean_create_evaluations_batch, **_LEAN_HEADERS
    ),
}


@router.get("/evaluations", response_model=Page[schemas.EvaluationRead])
async def list_evaluations(
    request: Request,
    db: DbSession,
    actor: CurrentPrincipal,
    case_no: str | None = None,
    org_code: str | None = None,
    item_code: str | None = None,
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    channel: Channel | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
):
    """Ratings in the caller's subtree, newest first, cursor-paginated."""
    stmt = queries.evaluations(
        actor=actor,
        case_no=case_no,
        org_code=org_code,
        item_code=item_code,
        level=level,
        channel=channel,
        since=since,
        until=until,
    )
    rows, nxt = await pagination.page(
        db, stmt, key=Evaluation.id, cursor=cursor, limit=limit, descending=True
    )
    rules = request.app.state.rules
    return {"items": [queries.read_row(row, rules) for row in rows], "next_cursor": nxt}


@router.get("/evaluations/{evaluation_id}", response_model=schemas.EvaluationRead)
async def get_evaluation(
    evaluation_id: Id, request: Request, db: DbSession, actor: CurrentPrincipal
):
    row = (
        await db.execute(queries.evaluations(actor=actor).where(Evaluation.id == evaluation_id))
    ).first()
    if row is None:
        raise NotFound("评价不存在或不在本账号的权限范围内", code="evaluation_not_found")
    return queries.read_row(row, request.app.state.rules)


@router.post(
    "/evaluations/{evaluation_id}/reveal-comment",
    response_model=schemas.CommentReveal,
    responses={
        403: {"description": "仅责任单位、管理机构和管理员（role_forbidden）"},
        404: {"description": "评价不存在或不在权限范围内"},
        422: {"description": "评价内容中没有遮盖的号码（comment_not_masked）"},
    },
)
async def reveal_comment(evaluation_id: Id, request: Request, db: DbSession, user: CurrentUser):
    """The comment as the rater typed it, phone and ID numbers unmasked; every reveal is
    recorded in the audit trail."""
    body = await evaluation_service.reveal_comment(
        db=db,
        actor=user,
        evaluation_id=evaluation_id,
        source_ip=request.client.host if request.client else None,
    )
    await db.commit()
    return body


@router.post(
    "/cases/{case_no}/invitations",
    status_code=201,
    response_model=InvitationRead,
    tags=["cases 办件"],
    responses=declare(
        404,
        422,
        codes={
            404: "case_not_found",
            422: [
                "case_not_accepted",
                "evaluation_window_closed",
                "org_inactive",
                "item_inactive",
                "staff_inactive",
            ],
        },
    ),
)
async def create_invitation(
    case_no: str,
    request: Request,
    db: DbSession,
    actor: InviterOrClient,
    data: InvitationCreate | None = None,
):
    """A signed, single-use rating link for the applicant, with its QR code at `{url}/qr.svg`."""
    data = data or InvitationCreate()
    if actor.channels is not None and data.channel not in actor.channels:
        # A key may not hand out links that rate on a channel it may not use itself.
        raise Forbidden(
            f"此 API 密钥无权使用渠道 {data.channel}",
            code="channel_out_of_scope",
            details=[{"field": "channel", "value": data.channel}],
        )
    case = await case_service.get_case(db=db, case_no=case_no, actor=actor)
    settings = request.app.state.settings
    window, stages = await evaluation_service.rules_for_case(
        db=db, case=case, rules=request.app.state.rules
    )
    inv = await invitations.create(
        db=db,
        case=case,
        stage=data.stage,
        channel=data.channel,
        window_days=window,
        stages=stages,
        client_id=actor.id if actor.is_client else None,
    )
    await db.commit()
    url = f"{settings.base_url.rstrip('/')}/r/{invitations.token_for(settings.secret_key, inv)}"
    return InvitationRead(url=url, qr_url=f"{url}/qr.svg", expires_at=inv.expires_at)
