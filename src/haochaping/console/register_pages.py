"""HTML routes of the register of malicious raters (恶意评价人员信息库) in the console: the
entries of the office's area (in force, or ended), a search by identity, an entry made outside
an appeal with its evidence, and an early revocation with its reason.

Only offices and administrators keep the register. A number typed for a search or an entry is
normalised and hashed at once with the register's keyed hash (it travels in a POST body, never
in a URL, and is neither stored nor logged). Every act is on the audit trail; a change to the
register reaches the intake's cache after the commit. POSTs carry the CSRF token and redirect
back (PRG); a refusal re-renders the page with its status and what was typed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.appeals import queries as appeal_queries
from haochaping.appeals import service as appeal_service
from haochaping.appeals.schemas import RegisterEntryCreate, RegisterRevoke
from haochaping.console import views
from haochaping.console.forms import (
    REGISTER_KIND_LABELS,
    REGISTER_LABELS,
    REGISTER_STATE_LABELS,
    RegisterFilters,
    RegisterForm,
    validation_problem,
)
from haochaping.console.layout import Csrf, ManagerConsoleUser, flash, is_partial, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError
from haochaping.core.schemas import Id
from haochaping.core.templating import html_route
from haochaping.integrity import queries as integrity_queries

router = APIRouter(route_class=html_route("console/error.html"))

REGISTER = "/console/register"
ENTRY_FIELDS = ("kind", "identifier", "evidence", "days", "org_code")
SEARCH_FIELDS = ("kind", "identifier")


def _back(value: str) -> str:
    """Where to return after an act: the register, with the filters it was showing."""
    if value == REGISTER or (value.startswith(REGISTER + "?") and "//" not in value):
        return value
    return REGISTER


async def _register_page(
    request: Request,
    db: DbSession,
    user: Principal,
    filters: RegisterFilters,
    *,
    form: str | None = None,
    posted: dict[str, Any] | None = None,
    error: str | None = None,
    identity_hash: str | None = None,
    status_code: int = 200,
) -> Response:
    items: list[dict[str, Any]] = []
    next_cursor = None
    subtree = None
    if filters.org_code:
        try:
            subtree = await integrity_queries.org_path(db, user, filters.org_code)
        except DomainError as exc:  # unknown (404) or outside the person's area (403)
            filters.errors.append(exc.message)
            status_code = exc.status_code if status_code == 200 else status_code
    if not filters.errors:
        items, next_cursor = await appeal_queries.register_page(
            db=db,
            actor=user,
            state="all" if identity_hash else filters.state,
            subtree=subtree,
            identity_hash=identity_hash,
            cursor=None if identity_hash else filters.cursor,
            limit=views.PAGE_SIZE,
        )
        items = [views.register_view(i) for i in items]
    partial = is_partial(request)
    context: dict[str, Any] = {
        "title": "恶意评价人名单",
        "filters": filters,
        "items": items,
        "next_cursor": None if identity_hash else next_cursor,
        "searched": identity_hash is not None,
        "states": REGISTER_STATE_LABELS,
        "kinds": REGISTER_KIND_LABELS,
        "partial": partial,
        "form": form,
        # The number typed is shown again only in its own field, to whoever typed it.
        "posted": posted or {},
        "error": error,
        "error_in_list": form == "revoke"
        and any(i["id"] == (posted or {}).get("id") for i in items),
        "back": REGISTER + ("?" + request.url.query if request.url.query else ""),
    }
    if partial:
        return await page(
            request, db, user, "console/_register_results.html", context, partial=True
        )
    context["in_force"] = await appeal_queries.register_count(db, user)
    return await page(request, db, user, "console/register.html", context, status_code=status_code)


@router.get(REGISTER)
async def register_list(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The register of the office's area, newest entry first; htmx gets only the results."""
    return await _register_page(request, db, user, RegisterFilters.from_query(request.query_params))


@router.post(REGISTER + "/search", dependencies=[Csrf])
async def register_search(request: Request, db: DbSession, user: ManagerConsoleUser):
    """The entries of one identity (in force or ended), found by its keyed hash."""
    form = RegisterForm.from_form(await request.form(), SEARCH_FIELDS)
    filters = RegisterFilters()
    kind, identifier = form.values["kind"], form.values["identifier"]
    error = None
    if kind not in REGISTER_KIND_LABELS:
        error = "请选择号码类型"
    elif not identifier:
        error = "请填写要查询的号码"
    if error is None:
        try:
            digest = appeal_service.search_register(
                db=db,
                actor=user,
                kind="phone" if kind == "phone" else "cert",
                identifier=identifier,
                keys=request.app.state.keys,
            )
        except DomainError as exc:
            error = exc.message
    if error is not None:
        return await _register_page(
            request,
            db,
            user,
            filters,
            form="search",
            posted=form.values,
            error=error,
            status_code=422,
        )
    await db.commit()  # the search's audit row
    return await _register_page(
        request, db, user, filters, form="search", posted=form.values, identity_hash=digest
    )


@router.post(REGISTER, dependencies=[Csrf])
async def register_add(request: Request, db: DbSession, user: ManagerConsoleUser):
    """A new entry outside an appeal (the service checks the number, the unit, duplicates)."""
    form = RegisterForm.from_form(await request.form(), ENTRY_FIELDS)
    filters = RegisterFilters()
    try:
        data = RegisterEntryCreate.model_validate(form.body())
        entry = await appeal_service.add_to_register(
            db=db, actor=user, data=data, keys=request.app.state.keys
        )
    except ValidationError as exc:
        error, status_code = validation_problem(exc, REGISTER_LABELS), 422
    except DomainError as exc:
        await db.rollback()
        error, status_code = exc.message, exc.status_code
    else:
        masked = entry.masked
        await db.commit()
        await request.app.state.register_cache.clear()
        flash(request, f"已将 {masked} 列入恶意评价人员信息库（记录 #{entry.id}）")
        return RedirectResponse(REGISTER, status_code=303)
    return await _register_page(
        request,
        db,
        user,
        filters,
        form="add",
        posted=form.values,
        error=error,
        status_code=status_code,
    )


@router.post(REGISTER + "/{entry_id}/revoke", dependencies=[Csrf])
async def register_revoke(entry_id: Id, request: Request, db: DbSession, user: ManagerConsoleUser):
    """End an entry before its expiry, with the reason; then back to the register."""
    raw = await request.form()
    form = RegisterForm.from_form(raw, ("note",))
    back = _back(str(raw.get("back") or ""))
    filters = RegisterFilters.from_query(request.query_params)
    posted = {"id": entry_id, **form.values}
    try:
        data = RegisterRevoke.model_validate(form.body())
        await appeal_service.revoke_register_entry(
            db=db, actor=user, entry_id=entry_id, note=data.note
        )
    except ValidationError as exc:
        error, status_code = validation_problem(exc, REGISTER_LABELS), 422
    except DomainError as exc:
        await db.rollback()
        error, status_code = exc.message, exc.status_code
    else:
        await db.commit()
        await request.app.state.register_cache.clear()
        flash(request, f"记录 #{entry_id} 已移出信息库：此后该评价人的评价照常计入统计")
        return RedirectResponse(back, status_code=303)
    return await _register_page(
        request,
        db,
        user,
        filters,
        form="revoke",
        posted=posted,
        error=error,
        status_code=status_code,
    )
