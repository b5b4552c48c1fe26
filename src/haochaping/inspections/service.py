"""监督查评 rules: a region's checklist of inspection items (inherited down the region tree,
a default list where none was set), and recording a visit: the rating it gives is stored
through `evaluations.service.submit` (channel `inspection`), so a bad result opens its work
order like any bad rating, in the same transaction."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid, NotFound, PayloadTooLarge
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import schemas as evaluation_schemas
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import Channel
from haochaping.inspections import schemas
from haochaping.inspections.models import InspectionChecklist, InspectionPhoto, InspectionVisit
from haochaping.orgs.choices import OrgKind
from haochaping.orgs.models import Org, Region
from haochaping.workorders.attachments import sniff

# Used for a region (and the regions below it) until an office sets its own list.
DEFAULT_CHECKLIST: tuple[str, ...] = (
    "工作人员按规定着装、佩戴工作牌，服务用语文明规范",
    "窗口按时开放，无空岗、脱岗、串岗现象",
    "一次性告知办事要求，无推诿、刁难、吃拿卡要",
    "办事指南、收费标准等信息公开完整、准确",
    "评价器、评价二维码摆放醒目且可正常使用",
    "大厅环境整洁，便民设施齐全可用",
    "提供帮办代办、适老化等特殊群体服务",
    "差评工单按期核实、整改、回访",
)
INSPECTED_KINDS = frozenset({OrgKind.HALL, OrgKind.DEPARTMENT})
PHOTO_TYPES = {"image/jpeg": {".jpg", ".jpeg"}, "image/png": {".png"}}
PHOTO_FOLDER = "inspections"
PHOTO_MB = schemas.PHOTO_MAX_BYTES // (1024 * 1024)
# How far back a visit may be recorded (an inspector may enter the day's visits later).
BACKDATE_DAYS = 30


@dataclass(frozen=True)
class Checklist:
    """The checklist in force for a region: its items, the version's id (None: the default
    list) and the region that set it."""

    items: tuple[str, ...]
    id: int | None = None
    region_code: str | None = None


@dataclass(frozen=True)
class Photo:
    """An uploaded photo as the handler read it."""

    filename: str
    declared: str | None
    data: bytes


async def checklist_for(*, db: AsyncSession, region_code: str) -> Checklist:
    """The newest list of the region itself or of the nearest region above it that has
    one; the default list when none has."""
    path = (
        await db.execute(select(Region.path).where(Region.code == region_code))
    ).scalar_one_or_none()
    codes = [c for c in (path or f"/{region_code}/").split("/") if c]
    rows = (
        await db.execute(
            select(InspectionChecklist)
            .where(InspectionChecklist.region_code.in_(codes))
            .order_by(InspectionChecklist.id.desc())
        )
    ).scalars()
    newest: dict[str, InspectionChecklist] = {}
    for row in rows:
        newest.setdefault(row.region_code, row)
    for code in reversed(codes):  # the deepest region first
        if code in newest:
            row = newest[code]
            return Checklist(items=tuple(row.items), id=row.id, region_code=code)
    return Checklist(items=DEFAULT_CHECKLIST)


async def actor_region(*, db: AsyncSession, actor: Principal) -> str:
    """The region of the person's organisation: the one whose checklist they keep."""
    region = (await db.execute(select(Org.region_code).where(Org.id == actor.org_id))).scalar()
    if region is None:
        raise NotFound("账号所属机构不存在", code="org_not_found")
    return region


async def set_checklist(
    *, db: AsyncSession, actor: Principal, data: schemas.ChecklistUpdate, source_ip: str | None
) -> InspectionChecklist:
    """A new version of the checklist of the office's own region (audited)."""
    region = await actor_region(db=db, actor=actor)
    row = InspectionChecklist(region_code=region, items=list(data.items), created_by=actor.name)
    db.add(row)
    await db.flush()
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.SET_INSPECTION_CHECKLIST,
        target_type="inspection_checklist",
        target_id=row.id,
        detail={"region_code": region, "items": len(data.items)},
        source_ip=source_ip,
    )
    return row


async def inspected_org(*, db: AsyncSession, actor: Principal, code: str) -> Org:
    """The active hall or department to inspect, inside the inspector's subtree."""
    org = (await db.execute(select(Org).where(Org.code == code))).scalar_one_or_none()
    if org is None or org.kind not in INSPECTED_KINDS:
        raise NotFound(
            f"服务大厅或部门 {code} 不存在",
            code="org_not_found",
            details=[{"field": "org_code", "value": code}],
        )
    actor.require(org.path)
    return org


def check_photos(photos: list[Photo]) -> list[str]:
    """The content type of each photo: JPEG or PNG by their bytes, at most `PHOTO_MAX_BYTES`
    each and `PHOTOS_MAX` in all (413/422 otherwise, before anything is stored)."""
    if len(photos) > schemas.PHOTOS_MAX:
        raise Invalid(
            f"每次查评最多上传 {schemas.PHOTOS_MAX} 张照片",
            code="too_many_photos",
            details=[{"field": "photos", "limit": schemas.PHOTOS_MAX}],
        )
    types = []
    for photo in photos:
        if len(photo.data) > schemas.PHOTO_MAX_BYTES:
            raise PayloadTooLarge(
                f"照片“{photo.filename}”过大（每张上限 {PHOTO_MB} MB）",
                code="photo_too_large",
                details=[{"field": "photos", "limit_bytes": schemas.PHOTO_MAX_BYTES}],
            )
        real = sniff(photo.data)
        suffix = Path(photo.filename).suffix.lower()
        if real not in PHOTO_TYPES:
            raise Invalid(
                f"照片“{photo.filename}”不是 JPEG 或 PNG 图片",
                code="photo_type",
                details=[{"field": "photos"}],
            )
        declared = (photo.declared or "").split(";")[0].strip()
        if suffix not in PHOTO_TYPES[real] or (declared and declared != real):
            raise Invalid(
                f"照片“{photo.filename}”的文件名或类型与实际内容不符",
                code="photo_disguised",
                details=[{"field": "photos", "detected": real}],
            )
        types.append(real)
    return types


def _store(folder: Path, data: bytes) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    (folder / key).write_bytes(data)
    return key, hashlib.sha256(data).hexdigest()


def _comment(answers: list[dict[str, Any]], notes: str | None) -> str | None:
    """The rating's comment: the items the unit failed, then the inspector's notes."""
    failed = [a["item"] for a in answers if not a["passed"]]
    parts = []
    if failed:
        parts.append("未通过的检查项目：" + "；".join(failed))
    if notes:
        parts.append(notes)
    return "\n".join(parts) or None


async def record_visit(
    *,
    db: AsyncSession,
    actor: Principal,
    data: schemas.VisitCreate,
    photos: list[Photo],
    rules: evaluation_service.IntakeRules,
    source: evaluation_service.Source,
    upload_dir: Path,
) -> InspectionVisit:
    """Store a visit, its photos and its rating (channel `inspection`); the caller commits.
    Refused input (422, 403, 404, 413) stores nothing."""
    if not actor.has_role(*evaluation_service.USER_CHANNEL_ROLES[Channel.INSPECTION]):
        raise Forbidden("当前角色无权录入监督查评", code="role_forbidden")
    org = await inspected_org(db=db, actor=actor, code=data.org_code)
    now = utcnow()
    visited_at = data.visited_at or now
    if visited_at > now + timedelta(minutes=5) or visited_at < now - timedelta(days=BACKDATE_DAYS):
        raise Invalid(
            f"查评时间须在最近 {BACKDATE_DAYS} 天内，且不晚于现在",
            code="visited_at_out_of_range",
            details=[{"field": "visited_at"}],
        )
    checklist = await checklist_for(db=db, region_code=org.region_code)
    if any(i >= len(checklist.items) for i in data.passed):
        raise Invalid(
            "所勾选的检查项目不在本地区的检查项目之列，请刷新页面后重试",
            code="unknown_checklist_item",
            details=[{"field": "passed"}],
        )
    passed = set(data.passed)
    answers = [{"item": item, "passed": i in passed} for i, item in enumerate(checklist.items)]
    types = check_photos(photos)
    rating = evaluation_schemas.EvaluationCreate(
        org_code=org.code,
        channel=Channel.INSPECTION,
        level=data.level,
        reasons=data.reasons,
        comment=_comment(answers, data.notes),
        evaluated_at=min(visited_at, now),
    )
    body = await evaluation_service.submit(
        db=db, actor=actor, data=rating, rules=rules, source=source
    )
    visit = InspectionVisit(
        org_id=org.id,
        inspector_id=actor.id,
        visited_at=visited_at,
        answers=answers,
        checklist_id=checklist.id,
        level=data.level,
        notes=data.notes,
        evaluation_id=body["id"],
    )
    db.add(visit)
    await db.flush()
    folder = upload_dir / PHOTO_FOLDER
    for photo, content_type in zip(photos, types, strict=True):
        # The disk write runs in a worker thread: the event loop serves other requests.
        key, digest = await asyncio.to_thread(_store, folder, photo.data)
        db.add(
            InspectionPhoto(
                visit_id=visit.id,
                filename=(photo.filename or "photo")[:200],
                content_type=content_type,
                size=len(photo.data),
                sha256=digest,
                storage_key=key,
            )
        )
    await db.flush()
    return visit


async def read_photo(
    *, db: AsyncSession, visit: InspectionVisit, photo_id: int, upload_dir: Path
) -> tuple[InspectionPhoto, bytes]:
    """A photo of a visit the caller may read, and its bytes (404 for another visit's)."""
    photo = await db.get(InspectionPhoto, photo_id)
    if photo is None or photo.visit_id != visit.id:
        raise NotFound("照片不存在", code="photo_not_found")
    data = await asyncio.to_thread((upload_dir / PHOTO_FOLDER / photo.storage_key).read_bytes)
    return photo, data
