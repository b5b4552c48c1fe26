"""监督查评 in the console (issue 13): the inspector's form (a unit of their subtree, the
region's checklist, a level, notes and photos), the list of visits, a visit's page and its
photos, and the office's page for the region's checklist of inspection items.

The rules are `inspections.service`'s; the visit's rating goes through the evaluation
service, so a bad result opens a work order like any bad rating. Inspectors (the assessor
role, 监督查评人员) record; inspectors, offices and administrators read the visits of their
subtree; units and window staff are refused (403)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from haochaping.console import views
from haochaping.console.forms import validation_problem
from haochaping.console.layout import (
    Csrf,
    ManagerConsoleUser,
    console_gate,
    flash,
    page,
)
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.ratelimit import client_ip
from haochaping.core.roles import INSPECTION_READERS, INSPECTORS
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.core.timeutil import SHANGHAI, to_local, utcnow
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Level
from haochaping.inspections import queries, schemas, service
from haochaping.inspections.models import InspectionVisit

router = APIRouter(route_class=html_route("console/error.html"))

VISITS = "/console/inspections"
CHECKLIST = VISITS + "/checklist"
LABELS = {
    "org_code": "被查评单位",
    "visited_at": "查评时间",
    "passed": "检查项目",
    "level": "查评结果",
    "notes": "查评意见",
    "items": "检查项目",
}

InspectorConsoleUser = Annotated[
    Principal,
    Depends(
        console_gate(lambda user: user.has_role(*INSPECTORS), "只有监督查评人员可以录入监督查评")
    ),
]
InspectionReader = Annotated[
    Principal,
    Depends(
        console_gate(
            lambda user: user.has_role(*INSPECTION_READERS),
            "监督查评记录仅供监督查评人员、政务服务管理机构和系统管理员查阅",
        )
    ),
]


def _text(form: FormData, name: str, max_len: int) -> str:
    value = form.get(name)
    return value.replace("\r\n", "\n")[: max_len + 1] if isinstance(value, str) else ""


def _visited_at(value: str) -> Any:
    """A `datetime-local` value (Beijing wall-clock time) as an aware time; else the text,
    for the model to refuse."""
    text = value.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).isoformat()
    except ValueError:
        return text


def _visit_body(form: FormData) -> dict[str, Any]:
    """The posted fields as the VisitCreate body (left for the model to judge)."""
    level = _text(form, "level", 2).strip()
    passed = [
        int(v) if v.strip().isdigit() and len(v) < 4 else v
        for v in form.getlist("passed")[: schemas.ITEMS_MAX + 1]
        if isinstance(v, str)
    ]
    return {
        "org_code": _text(form, "org_code", 60).strip(),
        "visited_at": _visited_at(_text(form, "visited_at", 40)),
        "passed": passed,
        "level": int(level) if level.isdigit() else level or None,
        "notes": _text(form, "notes", schemas.NOTES_MAX).strip() or None,
    }


async def _photos(form: FormData) -> list[service.Photo]:
    """The uploaded photos (an empty file input sends one part without a name)."""
    out = []
    for upload in form.getlist("photos")[: schemas.PHOTOS_MAX + 1]:
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(schemas.PHOTO_MAX_BYTES + 1)
            out.append(service.Photo(upload.filename, upload.content_type, data))
    return out


async def _form_page(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    region = await service.actor_region(db=db, actor=user)
    checklist = await service.checklist_for(db=db, region_code=region)
    posted = posted or {}
    return await page(
        request,
        db,
        user,
        "console/inspection_form.html",
        {
            "title": "录入监督查评",
            "checklist": checklist,
            "levels": list(Level),
            "bad_levels": sorted(set(range(1, 6)) - set(request.app.state.rules.good_levels)),
            "posted": posted,
            "passed": {p for p in posted.get("passed", []) if isinstance(p, int)},
            "now_local": to_local(utcnow()).strftime("%Y-%m-%dT%H:%M"),  # type: ignore[union-attr]
            "notes_max": schemas.NOTES_MAX,
            "photos_max": schemas.PHOTOS_MAX,
            "photo_mb": schemas.PHOTO_MAX_BYTES // (1024 * 1024),
            "error": error,
        },
        status_code=status_code,
    )


@router.get(VISITS)
async def visit_list(request: Request, db: DbSession, user: InspectionReader):
    """The visits to units of the person's subtree, the latest first."""
    cursor = request.query_params.get("cursor") or None
    items, next_cursor = await queries.visit_page(
        db=db, actor=user, cursor=cursor, limit=views.PAGE_SIZE
    )
    return await page(
        request,
        db,
        user,
        "console/inspections.html",
        {
            "title": "监督查评",
            "items": items,
            "next_cursor": next_cursor,
            "cursor": cursor,
            "can_record": user.has_role(*INSPECTORS),
            "can_edit_checklist": user.has_role(*(INSPECTION_READERS - INSPECTORS)),
        },
    )


@router.get(VISITS + "/new")
async def visit_form(request: Request, db: DbSession, user: InspectorConsoleUser):
    """The inspector's form, with the checklist of their region."""
    return await _form_page(request, db, user)


@router.post(VISITS, dependencies=[Csrf])
async def record_visit(request: Request, db: DbSession, user: InspectorConsoleUser):
    """Store a visit and its rating, then show it (PRG); a refusal keeps what was typed."""
    form = await request.form()
    body = _visit_body(form)
    if body["level"] is None:
        return await _form_page(
            request, db, user, posted=body, error="请选择查评结果", status_code=422
        )
    try:
        photos = await _photos(form)
        data = schemas.VisitCreate.model_validate(body)
        visit = await service.record_visit(
            db=db,
            actor=user,
            data=data,
            photos=photos,
            rules=request.app.state.rules,
            source=evaluation_service.source_of(request),
            upload_dir=FilePath(request.app.state.settings.upload_dir),
        )
    except ValidationError as exc:
        return await _form_page(
            request, db, user, posted=body, error=validation_problem(exc, LABELS), status_code=422
        )
    except DomainError as exc:  # 422, 413, and a unit unknown (404) or outside the scope (403)
        await db.rollback()  # nothing of the refused visit may stay
        return await _form_page(
            request, db, user, posted=body, error=exc.message, status_code=exc.status_code
        )
    await db.commit()
    flash(request, f"监督查评 #{visit.id} 已保存")
    return RedirectResponse(f"{VISITS}/{visit.id}", status_code=303)


async def _checklist_page(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    text: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    region = await service.actor_region(db=db, actor=user)
    checklist = await service.checklist_for(db=db, region_code=region)
    return await page(
        request,
        db,
        user,
        "console/inspection_checklist.html",
        {
            "title": "监督查评检查项目",
            "checklist": checklist,
            "region": region,
            "own": checklist.region_code == region,
            "text": "\n".join(checklist.items) if text is None else text,
            "item_max": schemas.ITEM_MAX,
            "items_max": schemas.ITEMS_MAX,
            "error": error,
        },
        status_code=status_code,
    )


@router.get(CHECKLIST)
async def checklist_page(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The checklist in force for the office's region, to edit."""
    return await _checklist_page(request, db, user)


@router.post(CHECKLIST, dependencies=[Csrf])
async def set_checklist(request: Request, db: DbSession, user: ManagerConsoleUser):
    """A new version of the region's checklist: one item a line."""
    form = await request.form()
    text = _text(form, "items", schemas.ITEMS_MAX * (schemas.ITEM_MAX + 2))
    items = [line.strip() for line in text.split("\n") if line.strip()]
    try:
        data = schemas.ChecklistUpdate.model_validate({"items": items})
        await service.set_checklist(db=db, actor=user, data=data, source_ip=client_ip(request))
    except ValidationError as exc:
        return await _checklist_page(
            request,
            db,
            user,
            text=text,
            error=validation_problem(exc, LABELS),
            status_code=422,
        )
    except DomainError as exc:
        await db.rollback()
        return await _checklist_page(
            request, db, user, text=text, error=exc.message, status_code=exc.status_code
        )
    await db.commit()
    flash(request, f"检查项目已更新（{len(items)} 项），此后录入的监督查评使用新的项目")
    return RedirectResponse(CHECKLIST, status_code=303)


# After the checklist's routes: "/checklist" is not a visit's id.
async def _visit(db: DbSession, user: Principal, visit_id: int) -> dict[str, Any]:
    return await queries.visit_detail(db=db, actor=user, visit_id=visit_id)


@router.get(VISITS + "/{visit_id}")
async def visit_page(visit_id: Id, request: Request, db: DbSession, user: InspectionReader):
    """One visit: the unit, the checklist as answered, the level, the notes, the photos and
    the work order its rating opened."""
    view = await _visit(db, user, visit_id)
    return await page(
        request,
        db,
        user,
        "console/inspection.html",
        {"title": f"监督查评 #{visit_id}", "v": view},
    )


@router.get(VISITS + "/{visit_id}/photos/{photo_id}")
async def visit_photo(
    visit_id: Id, photo_id: Id, request: Request, db: DbSession, user: InspectionReader
):
    """A photo of a visit, to the people who may read the visit."""
    view = await _visit(db, user, visit_id)
    visit: InspectionVisit = view["visit"]
    photo, data = await service.read_photo(
        db=db,
        visit=visit,
        photo_id=photo_id,
        upload_dir=FilePath(request.app.state.settings.upload_dir),
    )
    return Response(
        data,
        media_type=photo.content_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
        },
    )
