"""JSON routes of the closed loop: work orders, actions, attachments, follow-ups,
spot checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends, File, Request, UploadFile
from fastapi.responses import Response

from haochaping.core import pagination
from haochaping.core.auth import CurrentPrincipal, CurrentUser, HandlerUser, Principal, roles
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.roles import HANDLERS
from haochaping.core.schemas import Id, Limit, Page, Timestamp
from haochaping.core.timeutil import utcnow
from haochaping.workorders import attachments as attachment_store
from haochaping.workorders import contact, followup, queries, schemas, spotchecks
from haochaping.workorders import service as wo_service
from haochaping.workorders.loop import loop_context
from haochaping.workorders.models import SpotCheck, WorkOrder
from haochaping.workorders.states import State

router = APIRouter(prefix="/api/v1", tags=["work orders 差评工单"])
# Who may add evidence to an order (403 `role_forbidden` for window staff and assessors).
Uploader = Annotated[Principal, Depends(roles(*HANDLERS, message=attachment_store.UPLOADERS_ONLY))]


async def load_order(work_order_id: Id, db: DbSession, principal: CurrentPrincipal) -> WorkOrder:
    """The work order named in the path, visible to the caller (403 outside its scope)."""
    order = await wo_service.get_order(db=db, work_order_id=work_order_id)
    await wo_service.require_visible(db, principal, order)
    return order


CurrentWorkOrder = Annotated[WorkOrder, Depends(load_order)]


async def _detail(request: Request, db, order: WorkOrder, principal: Principal) -> dict:
    ctx = await loop_context(request, db)
    return await queries.detail(
        db=db,
        order=order,
        actor_role=principal.role or "",
        rules=request.app.state.rules,
        deadlines=ctx.deadlines,
        now=utcnow(),
    )


@router.get("/work-orders", response_model=Page[schemas.WorkOrderRead])
async def list_work_orders(
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    state: State | None = None,
    org_code: str | None = None,
    overdue: bool | None = None,
    due_before: Timestamp | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
):
    """A queue of work orders in the caller's subtree (filters: state, org, overdue, due)."""
    now = utcnow()
    stmt = queries.work_orders(
        actor=principal,
        state=state,
        org_code=org_code,
        overdue=overdue,
        due_before=due_before,
        now=now,
    )
    rows, nxt = await pagination.page(db, stmt, key=WorkOrder.id, cursor=cursor, limit=limit)
    ctx = await loop_context(request, db)
    items = await queries.summaries(
        db=db,
        orders=[o for o, _code, _name in rows],
        actor_role=principal.role or "",
        rules=request.app.state.rules,
        deadlines=ctx.deadlines,
        now=now,
    )
    return {"items": items, "next_cursor": nxt}


@router.get(
    "/work-orders/{work_order_id}",
    response_model=schemas.WorkOrderRead,
    responses=declare(codes={404: "work_order_not_found"}),
)
async def get_work_order(
    order: CurrentWorkOrder, request: Request, db: DbSession, principal: CurrentPrincipal
):
    """One work order with its rating, deadlines as dates, and its timeline."""
    return await _detail(request, db, order, principal)


@router.post(
    "/work-orders/{work_order_id}/actions",
    response_model=schemas.WorkOrderRead,
    responses=declare(
        409,
        422,
        codes={
            403: "callback_by_office",
            404: "work_order_not_found",
            409: ["illegal_transition", "stale_version", "concurrent_update", "appeal_pending"],
        },
    ),
)
async def act_on_work_order(
    order: CurrentWorkOrder,
    request: Request,
    db: DbSession,
    principal: CurrentUser,
    data: Annotated[schemas.ActionIn, Body()],
):
    """Take an action; one the state or the role does not allow answers 409 / 403."""
    ctx = await loop_context(request, db)
    await wo_service.act(db=db, principal=principal, order=order, data=data, ctx=ctx)
    await db.commit()
    return await _detail(request, db, order, principal)


@router.post(
    "/work-orders/{work_order_id}/attachments",
    status_code=201,
    response_model=schemas.AttachmentRead,
    responses=declare(codes={422: ["attachment_empty", "attachment_type", "attachment_disguised"]}),
)
async def upload_attachment(
    order: CurrentWorkOrder,
    request: Request,
    db: DbSession,
    principal: Uploader,
    file: Annotated[UploadFile, File()],
):
    """Store an evidence file (PDF, PNG, JPEG, WebP; size-limited); cite it in an action."""
    settings = request.app.state.settings
    data = await file.read(settings.attachment_max_bytes + 1)
    a = await attachment_store.add(
        db=db,
        order=order,
        filename=file.filename or "",
        declared=file.content_type,
        data=data,
        max_bytes=settings.attachment_max_bytes,
        folder=Path(settings.upload_dir),
        uploaded_by=principal.name,
    )
    await db.commit()
    return {
        "id": a.id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
    }


@router.get(
    "/work-orders/{work_order_id}/attachments/{attachment_id}",
    responses={
        200: {"content": {t: {} for t in attachment_store.SIGNATURES}},
        **declare(codes={404: ["work_order_not_found", "attachment_not_found"]}),
    },
)
async def download_attachment(
    order: CurrentWorkOrder, attachment_id: Id, request: Request, db: DbSession
):
    a, data = await attachment_store.read(
        db=db,
        order=order,
        attachment_id=attachment_id,
        folder=Path(request.app.state.settings.upload_dir),
    )
    return Response(
        data,
        media_type=a.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{a.id}{Path(a.filename).suffix}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/work-orders/{work_order_id}/reveal-phone",
    response_model=schemas.PhoneRead,
    responses=declare(codes={422: ["work_order_closed", "no_phone"]}),
)
async def reveal_phone(
    order: CurrentWorkOrder, request: Request, db: DbSession, principal: CurrentUser
):
    """The rater's phone number, for the callback; the reveal is recorded in the audit trail."""
    body = await contact.reveal_phone(
        db=db,
        principal=principal,
        order=order,
        source_ip=request.client.host if request.client else None,
    )
    await db.commit()
    return body


@router.post(
    "/work-orders/{work_order_id}/follow-up",
    status_code=201,
    response_model=schemas.FollowUpRead,
    responses=declare(409, 422, codes={409: "followup_used", 422: "followup_not_open"}),
)
async def follow_up(
    order: CurrentWorkOrder,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    data: schemas.FollowUpCreate,
):
    """The rater's one follow-up rating (追评) after rectification, posted for them by a
    channel client on a case-bound channel it holds; people get 403."""
    ctx = await loop_context(request, db)
    body = await followup.add_for_rater(
        db=db,
        principal=principal,
        order=order,
        data=data,
        rules=request.app.state.rules,
        ctx=ctx,
        source_ip=request.client.host if request.client else None,
    )
    await db.commit()
    return body


@router.get("/spot-checks", response_model=Page[schemas.SpotCheckRead])
async def list_spot_checks(
    db: DbSession,
    principal: CurrentUser,
    state: str = "pending",
    cursor: str | None = None,
    limit: Limit = 50,
):
    """Callback tasks on sampled good ratings in the caller's subtree."""
    rows, nxt = await pagination.page(
        db,
        queries.spot_checks(actor=principal, state=state),
        key=SpotCheck.id,
        cursor=cursor,
        limit=limit,
    )
    return {
        "items": [
            {
                "id": s.id,
                "evaluation_id": s.evaluation_id,
                "org_code": code,
                "state": s.state,
                "verdict": s.verdict,
                "work_order_id": s.work_order_id,
                "created_at": s.created_at,
            }
            for s, code in rows
        ],
        "next_cursor": nxt,
    }


@router.post(
    "/spot-checks/{spot_check_id}/callback",
    response_model=schemas.SpotCheckResult,
    response_model_exclude_unset=True,
    responses=declare(
        codes={404: "spot_check_not_found", 409: "spot_check_done", 422: "verdict_required"}
    ),
)
async def spot_check_callback(
    spot_check_id: Id,
    request: Request,
    db: DbSession,
    principal: HandlerUser,
    data: schemas.SpotCheckCallbackIn,
):
    """Record the callback of a sampled good rating; a dissatisfied citizen opens a work
    order."""
    ctx = await loop_context(request, db)
    result = await spotchecks.record(
        db=db, principal=principal, spot_check_id=spot_check_id, data=data, ctx=ctx
    )
    await db.commit()
    return result
