"""`/api/v1/windows/{window_code}/serving`: the queuing or business system tells a window
what it serves now (its pads show it), or that it serves nobody."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from haochaping.core.auth import ClientOnly
from haochaping.core.db import DbSession
from haochaping.core.errors import declare
from haochaping.pads import schemas, service

router = APIRouter(prefix="/api/v1", tags=["pads 评价器"])
# A window's code in the path, bounded like every code (an unknown one is a 404).
WindowCode = Annotated[str, Path(min_length=1, max_length=50)]


@router.post(
    "/windows/{window_code}/serving",
    status_code=201,
    response_model=schemas.ServingRead,
    responses=declare(
        403,
        404,
        422,
        codes={
            403: "out_of_scope",
            404: ["window_not_found", "case_not_found", "staff_not_found"],
            422: ["invalid_input", "item_mismatch", "org_inactive", "staff_inactive"],
        },
    ),
)
async def start_serving(
    window_code: WindowCode, data: schemas.ServingCreate, db: DbSession, actor: ClientOnly
):
    """The window serves this case now (叫号): `{case_no, flow_no, item_code, staff_no}`
    (`item_code` and `staff_no` default to the case's). The window's open service ends and
    the new one starts; its pads show the item, flow number and staff card, then the faces,
    within seconds. The window and the case must lie in the key's scope."""
    body = await service.start_service(db=db, actor=actor, window_code=window_code, data=data)
    await db.commit()
    return body


@router.delete(
    "/windows/{window_code}/serving",
    status_code=204,
    responses=declare(403, 404, codes={403: "out_of_scope", 404: "window_not_found"}),
)
async def end_serving(window_code: WindowCode, db: DbSession, actor: ClientOnly) -> Response:
    """The window serves nobody now: its pads show the idle screen with the staff card.
    Ending an idle window is no error (204 either way)."""
    await service.end_service(db=db, actor=actor, window_code=window_code)
    await db.commit()
    return Response(status_code=204)
