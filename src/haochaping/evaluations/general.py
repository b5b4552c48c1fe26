"""综合点评: a general comment on a hall or department from its public page (`/c/{code}`),
not bound to a case; stored through `service.submit` like every other rating (channel
`review`, stage `whole`, no case), so a bad one opens its work order in the same
transaction."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.core.errors import Invalid, NotFound
from haochaping.core.handlers import validation_details
from haochaping.evaluations import schemas
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Channel
from haochaping.orgs.choices import OrgKind
from haochaping.orgs.models import Org

# The organisations that have a public comment page: halls and departments (a window is
# rated through its hall, or case by case).
RATEABLE_KINDS = frozenset({OrgKind.HALL, OrgKind.DEPARTMENT})
PUBLIC_COMMENTER = Principal(
    kind="public",
    id=0,
    name="citizen",
    org_id=0,
    org_path="/",
    channels=frozenset({Channel.REVIEW.value}),
)


async def rateable_org(*, db: AsyncSession, code: str) -> Org:
    """The active hall or department with this code, or 404 `org_not_found`."""
    org = (await db.execute(select(Org).where(Org.code == code))).scalar_one_or_none()
    if org is None or org.kind not in RATEABLE_KINDS or not org.active:
        raise NotFound(
            "未找到可以点评的服务大厅或部门，请核对二维码或网址",
            code="org_not_found",
            details=[{"field": "org_code", "value": code}],
        )
    return org


def _phone_problem(exc: ValidationError) -> Invalid | None:
    fields = {d["field"] or "" for d in validation_details(exc.errors())}
    if any(f.startswith("rater") for f in fields):
        return Invalid(
            "联系电话格式不正确，请填写手机号码或固定电话",
            code="invalid_phone",
            details=[{"field": "phone"}],
        )
    return None


async def submit_comment(
    *,
    db: AsyncSession,
    org: Org,
    level: int,
    reasons: list[str],
    comment: str,
    phone: str,
    rules: evaluation_service.IntakeRules,
    source: evaluation_service.Source,
) -> dict[str, Any]:
    """Store one general comment on `org`; returns the stored rating as the API answers it
    (the contact phone masked). Raises `Invalid` (422) on bad input, nothing stored."""
    raw: dict[str, Any] = {
        "org_code": org.code,
        "channel": Channel.REVIEW.value,
        "level": level,
        "reasons": reasons,
        "comment": comment or None,
        "public": True,
    }
    if phone.strip():
        raw["rater"] = {"type": "person", "phone": phone}
    try:
        data = schemas.EvaluationCreate.model_validate(raw)
    except ValidationError as exc:
        problem = _phone_problem(exc)
        if problem is not None:
            raise problem from exc
        raise
    return await evaluation_service.submit(
        db=db, actor=PUBLIC_COMMENTER, data=data, rules=rules, source=source
    )
