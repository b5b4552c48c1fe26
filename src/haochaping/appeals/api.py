"""JSON routes for appeals (申诉复核) and the review of held ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from haochaping.appeals import queries, schemas
from haochaping.appeals import service as appeal_service
from haochaping.appeals.models import Appeal
from haochaping.core.auth import CurrentUser, Principal, roles
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.roles import MANAGERS
from haochaping.core.schemas import Id, Limit, Page
from haochaping.orgs.models import Org
from haochaping.workorders.loop import loop_context

router = APIRouter(prefix="/api/v1", tags=["appeals 申诉复核"])

# The office decides appeals and reviews held ratings (403 `role_forbidden` for others).
AppealDecider = Annotated[
    Principal, Depends(roles(*MANAGERS, message=appeal_service.DECIDERS_ONLY))
]
HeldReviewer = Annotated[
    Principal, Depends(roles(*MANAGERS, message=appeal_service.REVIEWERS_ONLY))
]


async def _read(db, appeal: Appeal) -> dict:
    org = await db.get(Org, appeal.org_id)
    return appeal_service.read(appeal, org.code)


@router.post(
    "/appeals",
    status_code=201,
    response_model=schemas.AppealRead,
    responses=declare(
        404,
        409,
        422,
        codes={
            404: "evaluation_not_found",
            409: "duplicate_appeal",
            422: ["not_a_bad_rating", "appeal_deadline_passed"],
        },
    ),
)
async def file_appeal(
    data: schemas.AppealCreate, request: Request, db: DbSession, user: CurrentUser
):
    """A unit appeals a bad rating of its own (mistaken, malicious, outside remit, other)."""
    ctx = await loop_context(request, db)
    appeal = await appeal_service.file(db=db, principal=user, data=data, ctx=ctx)
    body = await _read(db, appeal)
    await db.commit()
    return body


@router.get("/appeals", response_model=Page[schemas.AppealRead])
async def list_appeals(
    db: DbSession,
    user: CurrentUser,
    state: str | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
):
    """Appeals in the caller's subtree, oldest first (the decision queue)."""
    rows, nxt = await queries.appeal_page(
        db=db, actor=user, state=state, cursor=cursor, limit=limit
    )
    return {"items": [appeal_service.read(a, code) for a, code, _name in rows], "next_cursor": nxt}


@router.get(
    "/appeals/{appeal_id}",
    response_model=schemas.AppealRead,
    responses=declare(codes={404: "appeal_not_found"}),
)
async def get_appeal(appeal_id: Id, db: DbSession, user: CurrentUser):
    return await _read(db, await appeal_service.get(db=db, principal=user, appeal_id=appeal_id))


@router.post(
    "/appeals/{appeal_id}/decision",
    response_model=schemas.AppealRead,
    responses=declare(
        409,
        422,
        codes={404: "appeal_not_found", 409: "appeal_decided", 422: "register_not_allowed"},
    ),
)
async def decide_appeal(
    appeal_id: Id,
    data: schemas.AppealDecision,
    request: Request,
    db: DbSession,
    user: AppealDecider,
):
    """The office upholds or rejects an appeal, with reasons."""
    appeal = await appeal_service.get(db=db, principal=user, appeal_id=appeal_id)
    ctx = await loop_context(request, db)
    await appeal_service.decide(db=db, principal=user, appeal=appeal, data=data, ctx=ctx)
    body = await _read(db, appeal)
    await db.commit()
    await request.app.state.register_cache.clear()
    return body


@router.post(
    "/evaluations/{evaluation_id}/standing",
    response_model=schemas.StandingRead,
    responses=declare(
        409, 422, codes={404: "evaluation_not_found", 409: "not_held", 422: "invalid_standing"}
    ),
)
async def review_held_rating(
    evaluation_id: Id, data: schemas.StandingDecision, db: DbSession, user: HeldReviewer
):
    """A reviewer's decision on a held rating: it counts (valid) or it does not (invalid)."""
    await appeal_service.review_held(
        db=db, actor=user, evaluation_id=evaluation_id, standing=data.standing, note=data.note
    )
    await db.commit()
    return {"evaluation_id": evaluation_id, "standing": data.standing}
