"""JSON routes for service cases (办件)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from haochaping.cases import schemas
from haochaping.cases import service as case_service
from haochaping.core.auth import CurrentPrincipal, HandlerOrClient
from haochaping.core.db import DbSession
from haochaping.core.errors import declare

router = APIRouter(prefix="/api/v1", tags=["cases 办件"])


@router.post(
    "/cases",
    response_model=schemas.CaseRead,
    status_code=201,
    responses={
        200: {"description": "已有办件被更新"},
        409: {"description": "状态不能回退（status_regression）"},
        **declare(
            404,
            422,
            codes={
                404: ["org_not_found", "item_not_found", "staff_not_found"],
                422: ["not_a_window", "org_inactive", "item_inactive", "staff_inactive"],
            },
        ),
    },
)
async def upsert_case(
    data: schemas.CaseUpsert,
    db: DbSession,
    actor: HandlerOrClient,
    request: Request,
    response: Response,
):
    """Create (201) or move forward (200) a case; `status` never moves back."""
    case, created = await case_service.upsert_case(
        db=db, actor=actor, data=data, keys=request.app.state.keys
    )
    read = await case_service.case_read(db=db, case=case)
    await db.commit()
    response.status_code = 201 if created else 200
    return read


@router.get("/cases/{case_no}", response_model=schemas.CaseRead)
async def get_case(case_no: str, db: DbSession, actor: CurrentPrincipal):
    """A case, with the applicant's personal data masked."""
    case = await case_service.get_case(db=db, case_no=case_no, actor=actor)
    return await case_service.case_read(db=db, case=case)
