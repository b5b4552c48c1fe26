"""HTML routes of the console's administration (issue 11): the directory of organisations,
staff and service items (机构与人员), people's accounts and API clients (账号与密钥), and the
organisation picker by name that other forms reuse.

Every act goes through the same services as the JSON API and the command line, writes its
audit row in the same transaction, and stays within the signed-in person's subtree."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from haochaping.accounts import queries as account_queries
from haochaping.accounts import schemas as account_schemas
from haochaping.accounts import service as account_service
from haochaping.accounts.models import ApiClient, User
from haochaping.analytics import rollups
from haochaping.console.forms import validation_problem
from haochaping.console.layout import (
    AdminConsoleUser,
    ConsoleUser,
    Csrf,
    ManagerConsoleUser,
    flash,
    is_partial,
    page,
)
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import Conflict, DomainError, Invalid, NotFound, PayloadTooLarge
from haochaping.core.ratelimit import client_ip
from haochaping.core.roles import PERSON_ROLES, Role
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route, render
from haochaping.evaluations.choices import Channel
from haochaping.orgs import queries as org_queries
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.choices import ORG_KIND_LABELS
from haochaping.orgs.models import Item, Org, Region, Staff
from haochaping.workorders import attachments

router = APIRouter(route_class=html_route("console/error.html"))

DIRECTORY = "/console/directory"
USERS = "/console/users"
CLIENTS = "/console/clients"
PICKER = "/console/pickers/orgs"
ITEM_PICKER = "/console/pickers/items"
PAGE_SIZE = 50
TEXT_MAX = 200
NO_STORE = {"Cache-Control": "no-store"}

LABELS = {
    "code": "编码",
    "name": "名称",
    "kind": "类型",
    "parent_code": "上级机构",
    "region_code": "行政区划编码",
    "staff_no": "工号",
    "org_code": "所属机构",
    "basic_code": "基本编码",
    "username": "用户名",
    "password": "密码",
    "role": "角色",
}


def _field(form: FormData, name: str, max_len: int = TEXT_MAX) -> str:
    value = form.get(name)
    return value.strip()[:max_len] if isinstance(value, str) else ""


def _query(request: Request, name: str) -> str:
    return (request.query_params.get(name) or "").strip()[:TEXT_MAX]


def _sections(user: Principal) -> list[tuple[str, str]]:
    """The sub-navigation of the administration pages this person may use."""
    links = [
        (DIRECTORY, "机构"),
        (DIRECTORY + "/staff", "工作人员"),
        (DIRECTORY + "/items", "服务事项"),
        (DIRECTORY + "/regions", "行政区划"),
    ]
    if user.has_role(Role.ADMIN):
        links += [(USERS, "账号"), (CLIENTS, "接入密钥")]
    return links


async def _render(
    request: Request,
    db: DbSession,
    user: Principal,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    return await page(
        request,
        db,
        user,
        name,
        {"sections": _sections(user), "kind_labels": ORG_KIND_LABELS, **context},
        status_code=status_code,
    )


def _problem(exc: DomainError | ValidationError) -> tuple[str, int]:
    if isinstance(exc, ValidationError):
        return validation_problem(exc, LABELS), 422
    return exc.message, exc.status_code


# --- the organisation picker ---------------------------------------------------------------


@router.get(PICKER)
async def org_picker(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    q: Annotated[str, Query(max_length=100)] = "",
    scope: Annotated[str, Query(pattern="^(own|region)$")] = "own",
    kind: Annotated[str, Query(pattern="^(|unit|department|hall|window)$")] = "",
    field: Annotated[str, Query(pattern="^[a-z_]{0,40}$")] = "",
    list: Annotated[str, Query(pattern="^[a-z][a-z0-9-]{0,40}$")] = "",  # noqa: A002
):
    """Options of a picker by name: the active organisations the person may reach whose
    name or code contains `q` (`scope=own`: their subtree; `region`: any unit of their
    organisation's region), as `<option>`s for the picker's `<datalist>`. The picker's input
    sends its text under its own form name, which `field` names; `list` is the picker's id,
    whose status line (what screen readers hear) the answer updates."""
    text = q or request.query_params.get(field, "") if field else q
    text = text.strip()[:100]
    options = await org_queries.pick_orgs(db=db, actor=user, q=text, scope=scope, kind=kind)
    return render(
        request,
        "console/_picker_options.html",
        {
            "options": options,
            "kind_labels": ORG_KIND_LABELS,
            "q": text,
            "status_id": f"{list}-status" if list else "",
            "limit": org_queries.PICKER_MAX,
        },
    )


@router.get(ITEM_PICKER)
async def item_picker(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    q: Annotated[str, Query(max_length=100)] = "",
    field: Annotated[str, Query(pattern="^[a-z_]{0,40}$")] = "",
    list: Annotated[str, Query(pattern="^[a-z][a-z0-9-]{0,40}$")] = "",  # noqa: A002
):
    """Options of an item picker: the active service items of the person's region line whose
    name or implementation code contains `q`, as `<option>`s (the same contract as the
    organisation picker's)."""
    text = q or request.query_params.get(field, "") if field else q
    text = text.strip()[:100]
    options = await org_queries.pick_items(db=db, actor=user, q=text)
    return render(
        request,
        "console/_picker_options.html",
        {
            "options": options,
            "noun": "事项",
            "q": text,
            "status_id": f"{list}-status" if list else "",
            "limit": org_queries.PICKER_MAX,
        },
    )


# --- organisations --------------------------------------------------------------------------


async def _org_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    q, kind, status = _query(request, "q"), _query(request, "kind"), _query(request, "status")
    kind = kind if kind in ORG_KIND_LABELS else ""
    active = {"active": True, "inactive": False}.get(status)
    rows, next_cursor = await pagination.page(
        db,
        org_queries.admin_orgs(actor=user, q=q, kind=kind, active=active),
        key=Org.path,
        cursor=request.query_params.get("cursor"),
        limit=PAGE_SIZE,
        text_key=True,
    )
    top = user.org_path.count("/")
    orgs = [
        {
            "org": org,
            "parent_code": parent_code,
            "parent_name": parent_name,
            "region_name": region_name,
            "depth": max(org.path.count("/") - top, 0),
        }
        for org, parent_code, parent_name, region_name in rows
    ]
    return await _render(
        request,
        db,
        user,
        "console/directory_orgs.html",
        {
            "title": "机构",
            "orgs": orgs,
            "filters": {"q": q, "kind": kind, "status": status},
            "next_cursor": next_cursor,
            "form": form or {},
            "error": error,
            "regions": await org_queries.region_options(db),
            "partial": is_partial(request),
        },
        status_code=status_code,
    )


@router.get(DIRECTORY)
async def org_list(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The organisations of the person's subtree in tree order, searched by name or code."""
    return await _org_list(request, db, user)


@router.post(DIRECTORY + "/orgs", dependencies=[Csrf])
async def create_org(request: Request, db: DbSession, user: ManagerConsoleUser):
    """A new department, hall or window under a parent of the person's subtree."""
    raw = await request.form()
    form = {k: _field(raw, k) for k in ("code", "name", "kind", "parent_code", "region_code")}
    try:
        data = org_schemas.OrgCreate.model_validate(
            {**form, "parent_code": form["parent_code"] or None}
        )
        if await _org_code_taken(db, data.code):
            # The console creates; renaming is its own act (the JSON route's
            # create-or-rename would silently rename an organisation on a reused code).
            raise Conflict(f"机构编码 {data.code} 已被使用", code="duplicate_code")
        org, _ = await org_service.create_org(db=db, actor=user, data=data)
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _org_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    flash(request, f"已新增机构：{org.name}（{org.code}）")
    return RedirectResponse(f"{DIRECTORY}/orgs/{org.id}", status_code=303)


async def _org_code_taken(db: DbSession, code: str) -> bool:
    return (await db.execute(select(Org.id).where(Org.code == code))).first() is not None


async def _org_in_scope(db: DbSession, user: Principal, org_id: int) -> Org:
    org = await db.get(Org, org_id)
    if org is None or not user.covers(org.path):  # outside one's reach is not there at all
        raise NotFound("机构不存在或不在本账号的管辖范围内", code="org_not_found")
    return org


async def _org_detail(
    request: Request,
    db: DbSession,
    user: Principal,
    org: Org,
    *,
    error: str | None = None,
    error_at: str = "",
    status_code: int = 200,
) -> Response:
    parent = await db.get(Org, org.parent_id) if org.parent_id else None
    counts = {
        "children": len(
            (await db.execute(select(Org.id).where(Org.parent_id == org.id).limit(1000))).all()
        ),
        "staff": len(
            (await db.execute(select(Staff.id).where(Staff.org_id == org.id).limit(1000))).all()
        ),
        "users": len(
            (await db.execute(select(User.id).where(User.org_id == org.id).limit(1000))).all()
        ),
    }
    return await _render(
        request,
        db,
        user,
        "console/directory_org.html",
        {
            "title": f"机构：{org.name}",
            "org": org,
            "parent": parent,
            "counts": counts,
            "own": org.path == user.org_path,
            "error": error,
            "error_at": error_at,
        },
        status_code=status_code,
    )


@router.get(DIRECTORY + "/orgs/{org_id}")
async def org_detail(org_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """One organisation: rename, move (with its subtree), deactivate."""
    return await _org_detail(request, db, user, await _org_in_scope(db, user, org_id))


@router.post(DIRECTORY + "/orgs/{org_id}/{act}", dependencies=[Csrf])
async def org_act(
    org_id: Id,
    act: Annotated[str, Path(pattern="^(rename|move|deactivate)$")],
    request: Request,
    db: DbSession,
    user: ManagerConsoleUser,
):
    """Rename, move or deactivate an organisation of the person's subtree."""
    org = await _org_in_scope(db, user, org_id)
    raw = await request.form()
    try:
        if act == "rename":
            data = org_schemas.OrgRename.model_validate({"name": _field(raw, "name")})
            await org_service.rename_org(db=db, actor=user, code=org.code, name=data.name)
            message = f"机构已改名为：{data.name}"
        elif act == "move":
            target = org_schemas.OrgMove.model_validate({"parent_code": _field(raw, "parent_code")})
            moved = await org_service.move_org(
                db=db, actor=user, code=org.code, parent_code=target.parent_code
            )
            # The rollups hold the subtree's history under its old ancestors: emptied with
            # the move (same transaction), reads are exact from the ratings until refolded.
            await rollups.reset(db)
            message = f"已将 {org.name} 及其下级共 {moved} 个机构移到 {target.parent_code} 之下"
        else:
            done = await org_service.deactivate_org(db=db, actor=user, code=org.code)
            message = f"已停用 {org.name} 及其下级共 {done} 个机构"
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        text, status = _problem(exc)
        org = await _org_in_scope(db, user, org_id)
        return await _org_detail(
            request, db, user, org, error=text, error_at=act, status_code=status
        )
    await db.commit()
    if act == "move":  # API clients cache their organisation's path for a short while
        await request.app.state.client_cache.revoked()
    flash(request, message)
    return RedirectResponse(f"{DIRECTORY}/orgs/{org_id}", status_code=303)


# --- regions ------------------------------------------------------------------------------


async def _region_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    q = _query(request, "q")
    rows, next_cursor = await pagination.page(
        db,
        org_queries.admin_regions(q=q),
        key=Region.path,
        cursor=request.query_params.get("cursor"),
        limit=PAGE_SIZE,
        text_key=True,
        scalars=True,
    )
    return await _render(
        request,
        db,
        user,
        "console/directory_regions.html",
        {
            "title": "行政区划",
            "rows": rows,
            "filters": {"q": q},
            "next_cursor": next_cursor,
            "form": form or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get(DIRECTORY + "/regions")
async def region_list(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The regions (shared by every organisation), in tree order."""
    return await _region_list(request, db, user)


@router.post(DIRECTORY + "/regions", dependencies=[Csrf])
async def save_region(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Add a region under a parent, or rename one (by code); within the person's region."""
    raw = await request.form()
    form = {k: _field(raw, k) for k in ("code", "name", "parent_code")}
    try:
        data = org_schemas.RegionCreate.model_validate(
            {**form, "parent_code": form["parent_code"] or None}
        )
        region, created = await org_service.create_region(db=db, actor=user, data=data)
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _region_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    verb = "已新增" if created else "已更名"
    flash(request, f"{verb}行政区划：{region.name}（{region.code}）")
    return RedirectResponse(DIRECTORY + "/regions", status_code=303)


# --- staff and service items ------------------------------------------------------------------


async def _reference_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    query: Any,
    key: Any,
    template: str,
    title: str,
    row_name: str,
    form: dict[str, str] | None,
    error: str | None,
    status_code: int,
) -> Response:
    """One page of staff or items searched by `q`, with the organisation each belongs to."""
    q = _query(request, "q")
    rows, next_cursor = await pagination.page(
        db,
        query(actor=user, q=q),
        key=key,
        cursor=request.query_params.get("cursor"),
        limit=PAGE_SIZE,
        text_key=True,
    )
    return await _render(
        request,
        db,
        user,
        template,
        {
            "title": title,
            "rows": [{row_name: r, "org_code": c, "org_name": n} for r, c, n in rows],
            "filters": {"q": q},
            "next_cursor": next_cursor,
            "form": form or {},
            "error": error,
        },
        status_code=status_code,
    )


async def _staff_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return await _reference_list(
        request,
        db,
        user,
        query=org_queries.admin_staff,
        key=Staff.staff_no,
        template="console/directory_staff.html",
        title="工作人员",
        row_name="staff",
        form=form,
        error=error,
        status_code=status_code,
    )


@router.get(DIRECTORY + "/staff")
async def staff_list(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Staff of the person's subtree with their number (工号) and window."""
    return await _staff_list(request, db, user)


@router.post(DIRECTORY + "/staff", dependencies=[Csrf])
async def save_staff(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Add a staff member, or change the name or window of one (by staff number)."""
    raw = await request.form()
    form = {k: _field(raw, k) for k in ("staff_no", "name", "org_code")}
    try:
        data = org_schemas.StaffCreate.model_validate(form)
        staff, org, created = await org_service.create_staff(db=db, actor=user, data=data)
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _staff_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    verb = "已新增" if created else "已更新"
    flash(request, f"{verb}工作人员：{staff.name}（工号 {staff.staff_no}，{org.name}）")
    return RedirectResponse(DIRECTORY + "/staff", status_code=303)


@router.post(DIRECTORY + "/staff/{staff_id}/deactivate", dependencies=[Csrf])
async def deactivate_staff(staff_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """A staff member who left: kept with their ratings, no longer active."""
    staff = await db.get(Staff, staff_id)
    if staff is None:
        raise NotFound("工作人员不存在", code="staff_not_found")
    try:
        await org_service.deactivate_staff(db=db, actor=user, staff_no=staff.staff_no)
    except DomainError as exc:
        await db.rollback()
        return await _staff_list(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    flash(request, f"已停用工作人员：{staff.name}（工号 {staff.staff_no}）")
    return RedirectResponse(DIRECTORY + "/staff", status_code=303)


@router.post(DIRECTORY + "/staff/{staff_id}/consent", dependencies=[Csrf])
async def set_consent(staff_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """Record (`consent=1`) or withdraw (`consent=0`) a staff member's consent to be named on
    the public portal as a window service star (窗口服务之星: name, number, photo)."""
    staff = await _staff_in_scope(db, user, staff_id)
    form = await request.form()
    value = form.get("consent")
    if value not in ("0", "1"):
        return await _staff_list(
            request, db, user, error="请选择登记或撤回公开同意", status_code=422
        )
    try:
        await org_service.set_staff_consent(
            db=db, actor=user, staff_no=staff.staff_no, consent=value == "1"
        )
    except DomainError as exc:
        await db.rollback()
        return await _staff_list(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    done = "已登记" if value == "1" else "已撤回"
    flash(request, f"{done}公开同意：{staff.name}（工号 {staff.staff_no}）")
    return RedirectResponse(DIRECTORY + "/staff", status_code=303)


PHOTO_MAX_BYTES = 2 * 1024 * 1024
PHOTO_TYPES = ("image/png", "image/jpeg", "image/webp")


async def _staff_in_scope(db: DbSession, user: Principal, staff_id: int) -> Staff:
    row = (
        await db.execute(
            select(Staff, Org.path).join(Org, Org.id == Staff.org_id).where(Staff.id == staff_id)
        )
    ).first()
    if row is None or not user.covers(row[1]):
        raise NotFound("工作人员不存在或不在本账号的管辖范围内", code="staff_not_found")
    return row[0]


@router.post(DIRECTORY + "/staff/{staff_id}/photo", dependencies=[Csrf])
async def upload_photo(staff_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """A staff member's photo (PNG, JPEG or WebP up to 2 MB, the type read from its bytes),
    stored like work-order attachments under a random key."""
    staff = await _staff_in_scope(db, user, staff_id)
    raw = await request.form()
    upload = raw.get("photo")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("请选择照片文件", code="photo_missing", details=[{"field": "photo"}])
        data = await upload.read(PHOTO_MAX_BYTES + 1)
        if len(data) > PHOTO_MAX_BYTES:
            raise PayloadTooLarge("照片过大（上限 2 MB）", code="photo_too_large")
        real = attachments.check(
            filename=upload.filename,
            declared=upload.content_type,
            data=data,
            max_bytes=PHOTO_MAX_BYTES,
        )
        if real not in PHOTO_TYPES:
            raise Invalid(
                "照片只接受 PNG、JPEG、WebP 格式", code="photo_type", details=[{"field": "photo"}]
            )
        folder = FilePath(request.app.state.settings.upload_dir) / "staff"
        key, digest = await asyncio.to_thread(attachments.store, folder, data)
        await org_service.set_staff_photo(
            db=db, actor=user, staff_no=staff.staff_no, key=key, content_type=real, sha256=digest
        )
    except DomainError as exc:
        await db.rollback()
        return await _staff_list(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    flash(request, f"已更新工作人员照片：{staff.name}（工号 {staff.staff_no}）")
    return RedirectResponse(DIRECTORY + "/staff", status_code=303)


@router.get(DIRECTORY + "/staff/{staff_id}/photo")
async def staff_photo(staff_id: Id, request: Request, db: DbSession, user: ConsoleUser):
    """A staff member's photo, to the people whose subtree holds them."""
    staff = await _staff_in_scope(db, user, staff_id)
    if not staff.photo_key or not staff.photo_type:
        raise NotFound("该工作人员还没有照片", code="photo_not_found")
    path = FilePath(request.app.state.settings.upload_dir) / "staff" / staff.photo_key
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound("照片文件不存在", code="photo_not_found") from None
    return Response(
        data,
        media_type=staff.photo_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"},
    )


async def _item_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return await _reference_list(
        request,
        db,
        user,
        query=org_queries.admin_items,
        key=Item.code,
        template="console/directory_items.html",
        title="服务事项",
        row_name="item",
        form=form,
        error=error,
        status_code=status_code,
    )


@router.get(DIRECTORY + "/items")
async def item_list(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Service items implemented in the person's subtree."""
    return await _item_list(request, db, user)


@router.post(DIRECTORY + "/items", dependencies=[Csrf])
async def save_item(request: Request, db: DbSession, user: ManagerConsoleUser):
    """Add a service item, or rename it or move it to another organisation (by code)."""
    raw = await request.form()
    form = {k: _field(raw, k) for k in ("code", "name", "org_code", "basic_code")}
    try:
        data = org_schemas.ItemCreate.model_validate(
            {**form, "basic_code": form["basic_code"] or None}
        )
        item, org, created = await org_service.create_item(db=db, actor=user, data=data)
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _item_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    verb = "已新增" if created else "已更新"
    flash(request, f"{verb}服务事项：{item.name}（{item.code}，{org.name}）")
    return RedirectResponse(DIRECTORY + "/items", status_code=303)


@router.post(DIRECTORY + "/items/{item_id}/deactivate", dependencies=[Csrf])
async def deactivate_item(item_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """A service item no longer offered: kept with its ratings, no longer active."""
    item = await db.get(Item, item_id)
    if item is None:
        raise NotFound("服务事项不存在", code="item_not_found")
    try:
        await org_service.deactivate_item(db=db, actor=user, code=item.code)
    except DomainError as exc:
        await db.rollback()
        return await _item_list(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    flash(request, f"已停用服务事项：{item.name}（{item.code}）")
    return RedirectResponse(DIRECTORY + "/items", status_code=303)


# --- people's accounts ----------------------------------------------------------------------


def _role_choices() -> list[tuple[str, str]]:
    return [(r.value, r.label) for r in PERSON_ROLES]


async def _user_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    q = _query(request, "q")
    rows, next_cursor = await pagination.page(
        db,
        account_queries.admin_users(actor=user, q=q),
        key=User.username,
        cursor=request.query_params.get("cursor"),
        limit=PAGE_SIZE,
        text_key=True,
    )
    return await _render(
        request,
        db,
        user,
        "console/users.html",
        {
            "title": "账号",
            "rows": [{"u": u, "org_code": c, "org_name": n} for u, c, n in rows],
            "filters": {"q": q},
            "next_cursor": next_cursor,
            "roles": _role_choices(),
            "role_labels": dict(_role_choices()),
            "form": form or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get(USERS)
async def user_list(request: Request, db: DbSession, user: AdminConsoleUser):
    """People's accounts of the administrator's subtree, searched by username or name."""
    return await _user_list(request, db, user)


@router.post(USERS, dependencies=[Csrf])
async def create_user(request: Request, db: DbSession, user: AdminConsoleUser):
    """A new account for an organisation of the administrator's subtree."""
    raw = await request.form()
    form = {k: _field(raw, k) for k in ("username", "name", "role", "org_code")}
    password = raw.get("password") if isinstance(raw.get("password"), str) else ""
    try:
        data = account_schemas.AccountCreate.model_validate({**form, "password": password})
        created = await account_service.admin_create_user(
            db=db,
            actor=user,
            username=data.username,
            password=data.password,
            role=data.role,
            org_code=data.org_code,
            display_name=data.name or "",
        )
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _user_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    flash(request, f"已创建账号：{created.username}")
    return RedirectResponse(f"{USERS}/{created.id}", status_code=303)


async def _person_in_scope(db: DbSession, user: Principal, user_id: int) -> tuple[User, Org]:
    """The account, or 404 when it is not there or outside the administrator's subtree."""
    try:
        return await account_service.user_in_scope(db=db, actor=user, user_id=user_id)
    except DomainError:
        raise NotFound("账号不存在或不在本账号的管辖范围内", code="user_not_found") from None


async def _user_detail(
    request: Request,
    db: DbSession,
    user: Principal,
    user_id: int,
    *,
    error: str | None = None,
    error_at: str = "",
    status_code: int = 200,
) -> Response:
    person, org = await _person_in_scope(db, user, user_id)
    return await _render(
        request,
        db,
        user,
        "console/user.html",
        {
            "title": f"账号：{person.username}",
            "person": person,
            "org": org,
            "roles": _role_choices(),
            "role_labels": dict(_role_choices()),
            "is_self": person.id == user.id,
            "error": error,
            "error_at": error_at,
        },
        status_code=status_code,
    )


@router.get(USERS + "/{user_id}")
async def user_detail(user_id: Id, request: Request, db: DbSession, user: AdminConsoleUser):
    """One account: role and organisation, password reset, sessions, deactivation."""
    return await _user_detail(request, db, user, user_id)


@router.post(USERS + "/{user_id}/{act}", dependencies=[Csrf])
async def user_act(
    user_id: Id,
    act: Annotated[str, Path(pattern="^(assign|password|sessions|deactivate)$")],
    request: Request,
    db: DbSession,
    user: AdminConsoleUser,
):
    """Assign a role and organisation, reset the password, end the sessions, deactivate."""
    await _person_in_scope(db, user, user_id)
    raw = await request.form()
    try:
        if act == "assign":
            data = account_schemas.AccountAssign.model_validate(
                {"role": _field(raw, "role"), "org_code": _field(raw, "org_code")}
            )
            person = await account_service.assign_user(
                db=db, actor=user, user_id=user_id, role=data.role, org_code=data.org_code
            )
            message = f"已调整 {person.username} 的角色与机构，其登录已全部结束"
        elif act == "password":
            password = raw.get("password") if isinstance(raw.get("password"), str) else ""
            person = await account_service.admin_reset_password(
                db=db, actor=user, user_id=user_id, password=str(password)[:200]
            )
            message = f"已重设 {person.username} 的密码，其登录已全部结束"
        elif act == "sessions":
            person = await account_service.admin_end_sessions(db=db, actor=user, user_id=user_id)
            message = f"已结束 {person.username} 的全部登录"
        else:
            person = await account_service.admin_deactivate_user(db=db, actor=user, user_id=user_id)
            message = f"已停用账号 {person.username}，其登录已全部结束"
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        text, status = _problem(exc)
        return await _user_detail(
            request, db, user, user_id, error=text, error_at=act, status_code=status
        )
    await db.commit()
    flash(request, message)
    return RedirectResponse(f"{USERS}/{user_id}", status_code=303)


# --- API clients ----------------------------------------------------------------------------


async def _client_list(
    request: Request,
    db: DbSession,
    user: Principal,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    shown_key: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows, next_cursor = await pagination.page(
        db,
        account_queries.admin_clients(actor=user),
        key=ApiClient.name,
        cursor=request.query_params.get("cursor"),
        limit=PAGE_SIZE,
        text_key=True,
    )
    response = await _render(
        request,
        db,
        user,
        "console/clients.html",
        {
            "title": "接入密钥",
            "rows": [{"c": c, "org_code": code, "org_name": n} for c, code, n in rows],
            "next_cursor": next_cursor,
            "channels": Channel.choices(),
            "form": form or {"channels": []},
            "error": error,
            "shown_key": shown_key,
        },
        status_code=status_code,
    )
    if shown_key:  # the key is in this page only: no cache keeps it
        response.headers.update(NO_STORE)
    return response


@router.get(CLIENTS)
async def client_list(request: Request, db: DbSession, user: AdminConsoleUser):
    """API clients of the administrator's subtree (their key prefix, never the key)."""
    return await _client_list(request, db, user)


@router.post(CLIENTS, dependencies=[Csrf])
async def create_client(request: Request, db: DbSession, user: AdminConsoleUser):
    """A new API client; its key is shown on this answer once, and stored hashed."""
    raw = await request.form()
    channels = [c[:20] for c in raw.getlist("channels") if isinstance(c, str)][:20]
    form: dict[str, Any] = {
        "name": _field(raw, "name", 100),
        "org_code": _field(raw, "org_code"),
        "channels": channels,
    }
    try:
        data = account_schemas.ClientCreate.model_validate(form)
        client, key = await account_service.admin_create_client(
            db=db, actor=user, name=data.name, org_code=data.org_code, channels=data.channels
        )
    except (DomainError, ValidationError) as exc:
        await db.rollback()
        message, status = _problem(exc)
        return await _client_list(request, db, user, form=form, error=message, status_code=status)
    await db.commit()
    return await _client_list(
        request, db, user, shown_key={"name": client.name, "key": key, "verb": "已创建"}
    )


@router.post(CLIENTS + "/{client_id}/{act}", dependencies=[Csrf])
async def client_act(
    client_id: Id,
    act: Annotated[str, Path(pattern="^(rotate|revoke)$")],
    request: Request,
    db: DbSession,
    user: AdminConsoleUser,
):
    """Rotate a client's key (the new one shown once) or revoke the client; either way the
    old key stops working at once."""
    try:
        if act == "rotate":
            client, key = await account_service.rotate_client(
                db=db, actor=user, client_id=client_id
            )
        else:
            client = await account_service.revoke_client(
                db=db, client_id=client_id, actor=user, source_ip=client_ip(request)
            )
    except DomainError as exc:
        await db.rollback()
        return await _client_list(request, db, user, error=exc.message, status_code=exc.status_code)
    await db.commit()
    await request.app.state.client_cache.revoked()
    if act == "rotate":
        return await _client_list(
            request, db, user, shown_key={"name": client.name, "key": key, "verb": "已更换"}
        )
    flash(request, f"已吊销接入密钥：{client.name}，该密钥立即失效")
    return RedirectResponse(CLIENTS, status_code=303)
