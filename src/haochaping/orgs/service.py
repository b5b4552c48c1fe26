"""Reference data use cases: regions, organisations, staff, service items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Forbidden, Invalid, NotFound
from haochaping.core.roles import Role
from haochaping.core.timeutil import utcnow
from haochaping.orgs import schemas
from haochaping.orgs.models import Item, Org, Region, Staff


async def get_region(*, db: AsyncSession, code: str) -> Region:
    """A region by code, or 404."""
    region = await db.get(Region, code)
    if region is None:
        raise NotFound(
            f"行政区划 {code} 不存在",
            code="region_not_found",
            details=[{"field": "region_code", "value": code}],
        )
    return region


async def get_org(*, db: AsyncSession, code: str, field: str = "org_code") -> Org:
    """An organisation by code, or 404."""
    org = (await db.execute(select(Org).where(Org.code == code))).scalar_one_or_none()
    if org is None:
        raise NotFound(
            f"机构 {code} 不存在", code="org_not_found", details=[{"field": field, "value": code}]
        )
    return org


async def stats_node(
    *, db: AsyncSession, actor: Principal, org: Org | None, region: Region | None
) -> Region | None:
    """Check a statistics question's node against what the caller reads (403 `out_of_scope`)
    and return the region the question is about. Most callers read their subtree: an
    organisation outside it is refused, a region narrows it. A reader of a region (an
    assessor, `Principal.region_path`) reads the organisations located in their
    organisation's region: an organisation or a region outside it is refused, and a
    question that names neither is about that whole region."""
    if actor.region_path is None:
        if org is not None:
            actor.require(org.path)
        return region
    if org is not None:
        located = await db.get(Region, org.region_code)
        actor.require_read(org.path, located.path if located is not None else None)
    if region is not None:
        if not actor.reads_region(region.path):
            raise Forbidden("超出本账号的统计范围", code="out_of_scope")
        return region
    if org is None:
        return await get_region(db=db, code=actor.region_path.strip("/").split("/")[-1])
    return None


def _same_or_conflict(what: str, changes: dict[str, tuple[object, object]]) -> None:
    diff = [k for k, (old, new) in changes.items() if old != new]
    if diff:
        raise Conflict(
            f"{what}已存在，且以下字段不可修改：{', '.join(diff)}",
            code="immutable_field",
            details=[{"field": k} for k in diff],
        )


async def _require_region_scope(db: AsyncSession, actor: Principal, path: str) -> None:
    """Regions are shared by every organisation: apart from administrators, a caller writes
    only inside the region of its own organisation (as for policies)."""
    if actor.has_role(Role.ADMIN):
        return
    own = (
        await db.execute(
            select(Region.path)
            .join(Org, Org.region_code == Region.code)
            .where(Org.id == actor.org_id)
        )
    ).scalar_one_or_none()
    if own is None or not path.startswith(own):
        raise Forbidden("只能维护本机构所在辖区内的行政区划", code="out_of_scope")


def _on_record(
    db: AsyncSession,
    actor: Principal,
    action: audit.AuditAction,
    target_type: str,
    target_id: int | None,
    detail: dict[str, Any],
) -> None:
    """A person's change to the reference data, on the audit trail. API-key clients pushing
    their systems' reference data are not: such a sync repeats every record on every run,
    and its source is the client's system, which keeps its own record."""
    if not actor.is_client:
        audit.record(
            db,
            actor=actor.name,
            actor_role=actor.role,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
        )


async def create_region(
    *, db: AsyncSession, actor: Principal, data: schemas.RegionCreate
) -> tuple[Region, bool]:
    """Create a region, or rename an existing one (its place in the tree never moves)."""
    existing = await db.get(Region, data.code)
    if existing is not None:
        await _require_region_scope(db, actor, existing.path)
        _same_or_conflict("行政区划", {"parent_code": (existing.parent_code, data.parent_code)})
        existing.name = data.name
        _on_record(
            db,
            actor,
            audit.AuditAction.UPDATE_REGION,
            "region",
            None,
            {"code": existing.code, "name": existing.name},
        )
        return existing, False
    if data.parent_code:
        parent = await get_region(db=db, code=data.parent_code)
        if parent.tier >= 5:
            raise Invalid(
                "行政区划最多五级", code="region_too_deep", details=[{"field": "parent_code"}]
            )
        tier, path = parent.tier + 1, f"{parent.path}{data.code}/"
    else:
        tier, path = 1, f"/{data.code}/"
    await _require_region_scope(db, actor, path)
    region = Region(
        code=data.code, name=data.name, parent_code=data.parent_code, tier=tier, path=path
    )
    db.add(region)
    await db.flush()
    _on_record(
        db,
        actor,
        audit.AuditAction.CREATE_REGION,
        "region",
        None,
        {"code": region.code, "name": region.name, "parent_code": region.parent_code},
    )
    return region, True


async def create_org(
    *, db: AsyncSession, actor: Principal, data: schemas.OrgCreate
) -> tuple[Org, bool]:
    """Create an organisation under a parent in the caller's subtree, or rename it; without
    a parent it goes directly under the administrator's own organisation."""
    await get_region(db=db, code=data.region_code)
    existing = (await db.execute(select(Org).where(Org.code == data.code))).scalar_one_or_none()
    if existing is not None:
        actor.require(existing.path)
        parent_code = requested = None
        if existing.parent_id is not None:
            parent = await db.get(Org, existing.parent_id)
            parent_code = parent.code  # type: ignore[union-attr]
            # Posted again without a parent: the default parent (the caller's own org) is it.
            requested = data.parent_code or (parent_code if parent.path == actor.org_path else None)  # type: ignore[union-attr]
        else:
            requested = data.parent_code
        _same_or_conflict(
            "机构",
            {"kind": (existing.kind, data.kind.value), "parent_code": (parent_code, requested)},
        )
        existing.name = data.name
        existing.region_code = data.region_code
        _on_record(
            db,
            actor,
            audit.AuditAction.UPDATE_ORG,
            "org",
            existing.id,
            {"code": existing.code, "name": existing.name, "region_code": existing.region_code},
        )
        return existing, False
    if data.parent_code:
        parent = await get_org(db=db, code=data.parent_code, field="parent_code")
        actor.require(parent.path)
        if parent.kind == "window":
            raise Invalid(
                "窗口下不能再设机构", code="invalid_parent", details=[{"field": "parent_code"}]
            )
        parent_id, path = parent.id, f"{parent.path}{data.code}/"
    elif actor.is_client or actor.role != "admin":
        raise Forbidden("只有系统管理员可以创建顶级机构", code="role_forbidden")
    elif actor.org_path != "/":
        # One root per installation: a "top-level" organisation is created directly under
        # the administrator's own organisation (for the one `haochaping user create` makes,
        # the installation's root), so that it stays within the reach of who created it.
        parent = (await db.execute(select(Org).where(Org.path == actor.org_path))).scalar_one()
        parent_id, path = parent.id, f"{parent.path}{data.code}/"
    else:
        # Only a caller scoped to the whole installation (loaders, never a signed-in person)
        # creates a root.
        parent_id, path = None, f"/{data.code}/"
    if data.kind == "window" and not data.parent_code:
        raise Invalid(
            "窗口必须属于某个大厅或部门", code="invalid_parent", details=[{"field": "parent_code"}]
        )
    org = Org(
        code=data.code,
        name=data.name,
        kind=data.kind.value,
        parent_id=parent_id,
        region_code=data.region_code,
        path=path,
    )
    db.add(org)
    await db.flush()
    _on_record(
        db,
        actor,
        audit.AuditAction.CREATE_ORG,
        "org",
        org.id,
        {"code": org.code, "kind": org.kind, "path": org.path},
    )
    return org, True


def parent_code(org: Org) -> str | None:
    """The code of an organisation's parent, read from its path (None for the root)."""
    codes = org.path.strip("/").split("/")
    return codes[-2] if len(codes) > 1 else None


async def create_staff(
    *, db: AsyncSession, actor: Principal, data: schemas.StaffCreate
) -> tuple[Staff, Org, bool]:
    """Create a staff member of an organisation in scope, or update name and org."""
    org = await get_org(db=db, code=data.org_code)
    actor.require(org.path)
    staff = (
        await db.execute(select(Staff).where(Staff.staff_no == data.staff_no))
    ).scalar_one_or_none()
    if staff is not None:
        old_org = await db.get(Org, staff.org_id)
        actor.require(old_org.path)  # type: ignore[union-attr]
        staff.name, staff.org_id = data.name, org.id
        _on_record(
            db,
            actor,
            audit.AuditAction.UPDATE_STAFF,
            "staff",
            staff.id,
            {"staff_no": staff.staff_no, "org": org.code},
        )
        return staff, org, False
    staff = Staff(staff_no=data.staff_no, name=data.name, org_id=org.id)
    db.add(staff)
    await db.flush()
    _on_record(
        db,
        actor,
        audit.AuditAction.CREATE_STAFF,
        "staff",
        staff.id,
        {"staff_no": staff.staff_no, "org": org.code},
    )
    return staff, org, True


async def create_item(
    *, db: AsyncSession, actor: Principal, data: schemas.ItemCreate
) -> tuple[Item, Org, bool]:
    """Create a service item implemented by an organisation in scope, or update it."""
    org = await get_org(db=db, code=data.org_code)
    actor.require(org.path)
    item = (await db.execute(select(Item).where(Item.code == data.code))).scalar_one_or_none()
    if item is not None:
        old_org = await db.get(Org, item.org_id)
        actor.require(old_org.path)  # type: ignore[union-attr]
        item.name, item.org_id, item.basic_code = data.name, org.id, data.basic_code
        _on_record(
            db,
            actor,
            audit.AuditAction.UPDATE_ITEM,
            "item",
            item.id,
            {"code": item.code, "org": org.code},
        )
        return item, org, False
    item = Item(code=data.code, name=data.name, org_id=org.id, basic_code=data.basic_code)
    db.add(item)
    await db.flush()
    _on_record(
        db,
        actor,
        audit.AuditAction.CREATE_ITEM,
        "item",
        item.id,
        {"code": item.code, "org": org.code},
    )
    return item, org, True


# --- administration in the console: rename, move, deactivate ---------------------------------

PATH_MAX = 600  # `org.path`'s column length


async def _org_in_scope(db: AsyncSession, actor: Principal, code: str, field: str) -> Org:
    org = await get_org(db=db, code=code, field=field)
    actor.require(org.path)
    return org


# What a deactivated record is called in the refusal, by the error code's stem.
_INACTIVE_NOUNS = {"org": "机构", "item": "服务事项", "staff": "工作人员"}


def inactive(kind: str, code: str, field: str, refused: str) -> Invalid:
    """The 422 for intake against a deactivated organisation, item or staff member
    (`org_inactive`, `item_inactive`, `staff_inactive`): deactivation stops new cases and
    ratings; what was recorded before stays and still counts."""
    return Invalid(
        f"{_INACTIVE_NOUNS[kind]} {code} 已停用，{refused}",
        code=f"{kind}_inactive",
        details=[{"field": field, "value": code}],
    )


def _not_own(actor: Principal, org: Org) -> None:
    """The caller's own organisation is where their reach starts: they cannot move or
    deactivate it (whoever stands above it can)."""
    if org.path == actor.org_path:
        raise Forbidden("不能调整或停用本账号所属的机构，请由上级机构的管理员操作", code="own_org")


async def rename_org(*, db: AsyncSession, actor: Principal, code: str, name: str) -> Org:
    """Give an organisation in the caller's subtree a new name (its code never changes)."""
    org = await _org_in_scope(db, actor, code, "code")
    old = org.name
    org.name = name
    _on_record(
        db,
        actor,
        audit.AuditAction.UPDATE_ORG,
        "org",
        org.id,
        {"code": org.code, "old_name": old, "name": name},
    )
    await db.flush()
    return org


async def move_org(*, db: AsyncSession, actor: Principal, code: str, parent_code: str) -> int:
    """Put an organisation, with its whole subtree, under a new parent; both in the caller's
    subtree, never under itself or its own descendants. Every descendant's materialised path
    is rewritten in one statement. Returns how many organisations moved."""
    org = await _org_in_scope(db, actor, code, "code")
    _not_own(actor, org)
    parent = await _org_in_scope(db, actor, parent_code, "parent_code")
    if parent.path.startswith(org.path):
        raise Invalid(
            "不能把机构移到它自己或其下级机构之下",
            code="move_into_subtree",
            details=[{"field": "parent_code", "value": parent_code}],
        )
    if parent.kind == "window":
        raise Invalid(
            "窗口下不能再设机构", code="invalid_parent", details=[{"field": "parent_code"}]
        )
    old_path, new_path = org.path, f"{parent.path}{org.code}/"
    if old_path == new_path:
        return 0
    longest = (
        await db.execute(
            select(func.max(func.length(Org.path))).where(
                Org.path.startswith(old_path, autoescape=True)
            )
        )
    ).scalar_one()
    if (longest or 0) - len(old_path) + len(new_path) > PATH_MAX:
        raise Invalid(
            "机构层级过深，无法移动", code="org_too_deep", details=[{"field": "parent_code"}]
        )
    moved = await db.execute(
        update(Org)
        .where(Org.path.startswith(old_path, autoescape=True))
        .values(path=literal(new_path, String) + func.substr(Org.path, len(old_path) + 1))
        .execution_options(synchronize_session="fetch")
    )
    org.parent_id = parent.id
    count = int(moved.rowcount or 0)  # type: ignore[attr-defined]
    _on_record(
        db,
        actor,
        audit.AuditAction.MOVE_ORG,
        "org",
        org.id,
        {"code": org.code, "from": old_path, "to": new_path, "moved": count},
    )
    await db.flush()
    return count


async def deactivate_org(*, db: AsyncSession, actor: Principal, code: str) -> int:
    """Deactivate an organisation and everything under it (kept, never deleted: past
    ratings and orders still name them). Returns how many were deactivated."""
    org = await _org_in_scope(db, actor, code, "code")
    _not_own(actor, org)
    done = await db.execute(
        update(Org)
        .where(Org.path.startswith(org.path, autoescape=True), Org.active.is_(True))
        .values(active=False)
        .execution_options(synchronize_session="fetch")
    )
    count = int(done.rowcount or 0)  # type: ignore[attr-defined]
    _on_record(
        db,
        actor,
        audit.AuditAction.DEACTIVATE_ORG,
        "org",
        org.id,
        {"code": org.code, "path": org.path, "deactivated": count},
    )
    await db.flush()
    return count


async def _staff_in_scope(db: AsyncSession, actor: Principal, staff_no: str) -> tuple[Staff, Org]:
    row = (
        await db.execute(
            select(Staff, Org).join(Org, Org.id == Staff.org_id).where(Staff.staff_no == staff_no)
        )
    ).first()
    if row is None:
        raise NotFound(f"工作人员 {staff_no} 不存在", code="staff_not_found")
    actor.require(row[1].path)
    return row[0], row[1]


async def deactivate_staff(*, db: AsyncSession, actor: Principal, staff_no: str) -> Staff:
    """A staff member who left: kept (their ratings stay theirs), no longer active."""
    staff, org = await _staff_in_scope(db, actor, staff_no)
    staff.active = False
    _on_record(
        db,
        actor,
        audit.AuditAction.DEACTIVATE_STAFF,
        "staff",
        staff.id,
        {"staff_no": staff.staff_no, "org": org.code},
    )
    await db.flush()
    return staff


async def deactivate_item(*, db: AsyncSession, actor: Principal, code: str) -> Item:
    """A service item no longer offered: kept (its ratings stay), no longer active."""
    row = (
        await db.execute(
            select(Item, Org).join(Org, Org.id == Item.org_id).where(Item.code == code)
        )
    ).first()
    if row is None:
        raise NotFound(f"服务事项 {code} 不存在", code="item_not_found")
    item, org = row
    actor.require(org.path)
    item.active = False
    _on_record(
        db,
        actor,
        audit.AuditAction.DEACTIVATE_ITEM,
        "item",
        item.id,
        {"code": item.code, "org": org.code},
    )
    await db.flush()
    return item


async def set_staff_photo(
    *, db: AsyncSession, actor: Principal, staff_no: str, key: str, content_type: str, sha256: str
) -> Staff:
    """Record a staff member's new photo (already checked and stored by the caller)."""
    staff, org = await _staff_in_scope(db, actor, staff_no)
    staff.photo_key, staff.photo_type = key, content_type
    _on_record(
        db,
        actor,
        audit.AuditAction.SET_STAFF_PHOTO,
        "staff",
        staff.id,
        {"staff_no": staff.staff_no, "org": org.code, "sha256": sha256},
    )
    await db.flush()
    return staff


async def set_staff_consent(
    *, db: AsyncSession, actor: Principal, staff_no: str, consent: bool
) -> Staff:
    """Record (or withdraw) a staff member's consent to be named on the public portal as a
    window service star (name, staff number, photo): when and by whom, on record."""
    staff, org = await _staff_in_scope(db, actor, staff_no)
    if consent:
        staff.publish_consent_at, staff.publish_consent_by = utcnow(), actor.name
    else:
        staff.publish_consent_at = staff.publish_consent_by = None
    _on_record(
        db,
        actor,
        audit.AuditAction.SET_STAFF_CONSENT,
        "staff",
        staff.id,
        {"staff_no": staff.staff_no, "org": org.code, "consent": consent},
    )
    await db.flush()
    return staff
