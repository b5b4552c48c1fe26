"""Case use cases: create or update a case pushed by a business system."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases import schemas
from haochaping.cases.choices import STATUS_RANK, CaseStatus
from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.security import mask_cert_no, mask_name, mask_phone
from haochaping.db.crypto import DataKeys
from haochaping.orgs.models import Item, Org, Staff
from haochaping.orgs.service import get_org, inactive


async def get_case(*, db: AsyncSession, case_no: str, actor: Principal | None = None) -> Case:
    """A case by number, or 404; with an actor, 403 outside its subtree."""
    case = (await db.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is None:
        raise NotFound(
            f"办件 {case_no} 不存在",
            code="case_not_found",
            details=[{"field": "case_no", "value": case_no}],
        )
    if actor is not None:
        org = await db.get(Org, case.org_id)
        actor.require(org.path)  # type: ignore[union-attr]
    return case


async def upsert_case(
    *, db: AsyncSession, actor: Principal, data: schemas.CaseUpsert, keys: DataKeys
) -> tuple[Case, bool]:
    """Create a case, or move an existing one forward; a status never moves back."""
    org = await get_org(db=db, code=data.org_code)
    actor.require(org.path)
    item = (await db.execute(select(Item).where(Item.code == data.item_code))).scalar_one_or_none()
    if item is None:
        raise NotFound(
            f"事项 {data.item_code} 不存在",
            code="item_not_found",
            details=[{"field": "item_code", "value": data.item_code}],
        )
    # Every code in the request is checked against the caller's subtree, the item's unit too:
    # a case (and the ratings of it) may not be filed under another region's service item.
    actor.require((await db.get(Org, item.org_id)).path)  # type: ignore[union-attr]
    window_id = staff_id = None
    window: Org | None = None
    staff: Staff | None = None
    if data.window_code:
        window = await get_org(db=db, code=data.window_code, field="window_code")
        actor.require(window.path)
        if window.kind != "window":
            raise Invalid(
                f"{data.window_code} 不是窗口",
                code="not_a_window",
                details=[{"field": "window_code"}],
            )
        window_id = window.id
    if data.staff_no:
        staff = (
            await db.execute(select(Staff).where(Staff.staff_no == data.staff_no))
        ).scalar_one_or_none()
        if staff is None:
            raise NotFound(
                f"工作人员 {data.staff_no} 不存在",
                code="staff_not_found",
                details=[{"field": "staff_no", "value": data.staff_no}],
            )
        # Like the window: a caller may not attribute cases (and their ratings) to staff
        # outside its subtree.
        actor.require((await db.get(Org, staff.org_id)).path)  # type: ignore[union-attr]
        staff_id = staff.id

    case = (
        await db.execute(select(Case).where(Case.case_no == data.case_no).with_for_update())
    ).scalar_one_or_none()
    # Deactivation stops new cases against the organisation, window, item or staff member; a
    # case already filed under them may still move forward (its business goes on).
    kept = (
        {"org": case.org_id, "window": case.window_id, "item": case.item_id, "staff": case.staff_id}
        if case is not None
        else {}
    )
    refused = "不再受理新办件"
    if not org.active and kept.get("org") != org.id:
        raise inactive("org", org.code, "org_code", refused)
    if window is not None and not window.active and kept.get("window") != window.id:
        raise inactive("org", window.code, "window_code", refused)
    if not item.active and kept.get("item") != item.id:
        raise inactive("item", item.code, "item_code", refused)
    if staff is not None and not staff.active and kept.get("staff") != staff.id:
        raise inactive("staff", staff.staff_no, "staff_no", refused)
    created = case is None
    if case is None:
        case = Case(case_no=data.case_no, client_id=actor.id if actor.is_client else None)
        db.add(case)
    else:
        old_org = await db.get(Org, case.org_id)
        actor.require(old_org.path)  # type: ignore[union-attr]
        old, new = CaseStatus(case.status), data.status
        if STATUS_RANK[new] < STATUS_RANK[old] or (
            STATUS_RANK[new] == STATUS_RANK[old] and new != old
        ):
            raise Conflict(
                f"办件状态不能从“{old}”改为“{new}”",
                code="status_regression",
                details=[{"field": "status", "current": old, "requested": new}],
            )
    case.item_id, case.org_id = item.id, org.id
    case.window_id, case.staff_id = window_id, staff_id
    case.mode, case.case_type, case.status = data.mode, data.case_type, data.status
    a = data.applicant
    case.applicant_type, case.applicant_name = a.type, a.name
    case.applicant_cert_type, case.applicant_cert_no, case.applicant_phone = (
        a.cert_type,
        a.cert_no,
        a.phone,
    )
    case.applicant_cert_hash = keys.identity_hash(a.cert_no, "cert")
    case.applicant_phone_hash = keys.identity_hash(a.phone, "phone")
    case.received_at = data.received_at or case.received_at
    case.accepted_at = data.accepted_at or case.accepted_at
    case.completed_at = data.completed_at or case.completed_at
    await db.flush()
    return case, created


def evaluation_deadline(case: Case, window_days: int) -> datetime | None:
    """The end of the case's evaluation window, or None while it is still open-ended."""
    if case.completed_at is not None:
        return case.completed_at + timedelta(days=window_days)
    return None


async def case_read(*, db: AsyncSession, case: Case) -> schemas.CaseRead:
    """The public view of a case: personal data masked."""
    item = await db.get(Item, case.item_id)
    org = await db.get(Org, case.org_id)
    window = await db.get(Org, case.window_id) if case.window_id else None
    staff = await db.get(Staff, case.staff_id) if case.staff_id else None
    assert item is not None and org is not None  # a case's item and org (foreign keys)
    return schemas.CaseRead(
        case_no=case.case_no,
        item_code=item.code,
        item_name=item.name,
        org_code=org.code,
        window_code=window.code if window else None,
        staff_no=staff.staff_no if staff else None,
        mode=case.mode,
        case_type=case.case_type,
        status=case.status,
        applicant=schemas.ApplicantRead(
            type=case.applicant_type,
            name=mask_name(case.applicant_name),
            cert_type=case.applicant_cert_type,
            cert_no=mask_cert_no(case.applicant_cert_no),
            phone=mask_phone(case.applicant_phone),
        ),
        received_at=case.received_at,
        accepted_at=case.accepted_at,
        completed_at=case.completed_at,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )
