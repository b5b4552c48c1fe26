"""综合点评 pages: a hall's or department's public comment page (`/c/{org_code}`), its
thank-you page and its printable QR poster. The rules are `evaluations.general`'s; these
handlers parse, call and render."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from haochaping.core.db import DbSession
from haochaping.core.errors import Invalid, RateLimited
from haochaping.core.ratelimit import Limit, enforce
from haochaping.core.security import mask_phone
from haochaping.core.templating import csrf_token, html_route, render, verify_csrf
from haochaping.evaluations import general
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.schemas import COMMENT_MAX
from haochaping.portal.forms import RatingForm, validation_problem
from haochaping.portal.results_pages import PublicLimit

router = APIRouter(include_in_schema=False, route_class=html_route("portal/error.html"))
OrgCode = Annotated[str, Path(min_length=1, max_length=50)]
PHONE_MAX = 20
DONE_KEY = "comment_done"  # the session remembers the comment just given, for its thanks
COMMENT_WINDOW = 3600
TOO_MANY = "您提交点评过于频繁，请一小时后再试。如有紧急诉求，可拨打 12345 政务服务热线反映。"


async def comment_limit(request: Request) -> None:
    """At most `rate_comment_per_hour` comments an hour from one address (429 page)."""
    hits = request.app.state.settings.rate_comment_per_hour
    if hits <= 0:
        return
    try:
        await enforce(request, Limit("comment", hits, COMMENT_WINDOW))
    except RateLimited as exc:
        raise RateLimited(TOO_MANY, code="rate_limited", details=exc.details) from exc


CommentLimit = [Depends(comment_limit)]


def _groups(request: Request) -> dict[int, list]:
    rules = request.app.state.rules
    return {
        level: sorted((t for t in rules.tags.values() if t.level == level), key=lambda t: t.code)
        for level in (5, 4, 3, 2, 1)
    }


def _form_page(
    request: Request,
    org,
    form: RatingForm,
    phone: str = "",
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
):
    rules = request.app.state.rules
    return render(
        request,
        "portal/comment.html",
        {
            "title": f"综合点评 · {org.name}",
            "org": org,
            "form": form,
            "phone": phone,
            "phone_max": PHONE_MAX,
            "error": error,
            "error_field": error_field,
            "groups": _groups(request),
            "bad_levels": sorted(set(range(1, 6)) - set(rules.good_levels)),
            "comment_max": COMMENT_MAX,
            "csrf": csrf_token(request),
        },
        status_code=status_code,
    )


@router.get("/c/{org_code}", dependencies=PublicLimit)
async def comment_page(org_code: OrgCode, request: Request, db: DbSession):
    """The comment form of a hall or department (404 page for any other code)."""
    org = await general.rateable_org(db=db, code=org_code)
    return _form_page(request, org, RatingForm())


@router.post("/c/{org_code}", dependencies=[Depends(verify_csrf), *CommentLimit])
async def submit_comment(org_code: OrgCode, request: Request, db: DbSession):
    """Store a general comment, then thank the commenter (POST, redirect, GET)."""
    posted = await request.form()
    form = RatingForm.from_form(posted)
    raw_phone = posted.get("phone")
    phone = raw_phone.strip()[: PHONE_MAX + 1] if isinstance(raw_phone, str) else ""
    org = await general.rateable_org(db=db, code=org_code)
    if form.level is None:
        return _form_page(request, org, form, phone, "请选择您的满意程度", "level", 422)
    try:
        body = await general.submit_comment(
            db=db,
            org=org,
            level=form.level,
            reasons=form.reasons,
            comment=form.comment,
            phone=phone,
            rules=request.app.state.rules,
            source=evaluation_service.source_of(request),
        )
    except Invalid as exc:
        # Nothing is committed: the request's session rolls back whatever was written.
        field = "phone" if exc.code == "invalid_phone" else None
        return _form_page(request, org, form, phone, exc.message, field, 422)
    except ValidationError as exc:
        return _form_page(request, org, form, phone, validation_problem(exc), None, 422)
    await db.commit()
    rater = body.get("rater") or {}
    request.session[DONE_KEY] = {
        "org": org.code,
        "id": body["id"],
        "level": body["level"],
        "is_bad": body["is_bad"],
        # Already masked by the answer (138****5678); the number itself is never kept here.
        "phone": rater.get("phone"),
    }
    return RedirectResponse(f"/c/{org.code}/thanks", status_code=303)


@router.get("/c/{org_code}/thanks", dependencies=PublicLimit)
async def thanks(org_code: OrgCode, request: Request, db: DbSession):
    """The thank-you page after a comment; without one just given, back to the form."""
    org = await general.rateable_org(db=db, code=org_code)
    done = request.session.get(DONE_KEY)
    if not isinstance(done, dict) or done.get("org") != org.code:
        return RedirectResponse(f"/c/{org.code}", status_code=303)
    return render(
        request,
        "portal/comment_thanks.html",
        {
            "title": "谢谢您的点评",
            "org": org,
            "level": done["level"],
            "is_bad": done["is_bad"],
            "evaluation_id": done["id"],
            "phone": mask_phone(done.get("phone")),
        },
    )


@router.get("/c/{org_code}/poster", dependencies=PublicLimit)
async def poster(org_code: OrgCode, request: Request, db: DbSession):
    """A printable A4 poster: the page's QR code, 扫码评价 and the organisation's name."""
    org = await general.rateable_org(db=db, code=org_code)
    base = request.app.state.settings.base_url.rstrip("/")
    url = f"{base}/c/{org.code}"
    qr = segno.make(url, error="m").svg_inline(scale=10, border=2, title="扫码评价")
    context = {"title": f"扫码评价 · {org.name}", "org": org, "url": url, "qr": qr}
    return render(request, "portal/poster.html", context)
