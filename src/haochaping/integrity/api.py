"""JSON routes of the review queue (疑似刷评复核) and the staff identity register."""

from __future__ import annotations

from fastapi import APIRouter, Request

from haochaping.core import pagination
from haochaping.core.auth import ManagerUser
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.core.schemas import Id, Limit, Page
from haochaping.integrity import detectors, queries, schemas, service
from haochaping.integrity.choices import FlagState
from haochaping.integrity.models import IntegrityFlag

router = APIRouter(prefix="/api/v1/integrity", tags=["integrity 防刷评"])


@router.get("/checks", response_model=list[schemas.CheckRead])
async def list_checks(principal: ManagerUser):
    """The checks of the pipeline, with their labels and where they run."""
    return [
        {"name": c.name, "label": c.label, "intake": c.at_intake, "batch": c.in_batch}
        for c in detectors.REGISTRY.values()
    ]


@router.get(
    "/flags",
    response_model=Page[schemas.FlagRead],
    responses=declare(404, codes={404: "org_not_found"}),
)
async def list_flags(
    db: DbSession,
    principal: ManagerUser,
    state: FlagState | None = None,
    check: str | None = None,
    org_code: str | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
):
    """Flagged ratings in the caller's subtree, oldest first (filters: state, check, org)."""
    subtree = await queries.org_path(db, principal, org_code) if org_code else None
    stmt = queries.flags(
        actor=principal, state=state.value if state else None, check=check, subtree=subtree
    )
    rows, nxt = await pagination.page(db, stmt, key=IntegrityFlag.id, cursor=cursor, limit=limit)
    return {"items": [queries.item(r) for r in rows], "next_cursor": nxt}


@router.get(
    "/flags/{flag_id}",
    response_model=schemas.FlagDetail,
    responses=declare(codes={404: "flag_not_found"}),
)
async def get_flag(flag_id: Id, request: Request, db: DbSession, principal: ManagerUser):
    """One flag with its evidence, the rating (personal data masked) and its history."""
    flag = await service.get_flag(db=db, actor=principal, flag_id=flag_id)
    return await queries.detail(db=db, actor=principal, flag=flag, rules=request.app.state.rules)


@router.post(
    "/flags/{flag_id}/review",
    response_model=schemas.FlagDetail,
    responses=declare(
        codes={404: "flag_not_found", 409: "flag_already_reviewed", 422: "note_required"}
    ),
)
async def review_flag(
    flag_id: Id, data: schemas.ReviewIn, request: Request, db: DbSession, principal: ManagerUser
):
    """Clear the flag (the rating counts) or invalidate the rating; once per flag (409)."""
    flag = await service.review(
        db=db, actor=principal, flag_id=flag_id, decision=data.decision, note=data.note
    )
    await db.commit()
    return await queries.detail(db=db, actor=principal, flag=flag, rules=request.app.state.rules)


@router.post(
    "/staff-identities",
    response_model=schemas.StaffIdentityRead,
    responses=declare(codes={404: "staff_not_found", 422: "identity_required"}),
)
async def register_staff_identity(
    data: schemas.StaffIdentityIn, request: Request, db: DbSession, principal: ManagerUser
):
    """Record a staff member's ID number and/or phone (kept only as keyed hashes); their
    recent ratings are checked at once."""
    staff, kinds, flagged = await service.register_staff_identity(
        db=db,
        actor=principal,
        keys=request.app.state.keys,
        staff_no=data.staff_no,
        cert_no=data.cert_no,
        phone=data.phone,
    )
    await db.commit()
    guard = getattr(request.app.state, "integrity_guard", None)
    if guard is not None:
        guard.identities.invalidate()
    return {"staff_no": staff.staff_no, "recorded": kinds, "flagged": flagged}
