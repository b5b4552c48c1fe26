"""Read side of the window evaluator: what a pad shows now, and the console's list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.auth import Principal
from haochaping.evaluations.choices import DEFAULT_STAGE
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.choices import OrgKind
from haochaping.orgs.models import Item, Org, Staff
from haochaping.pads.models import PadDevice, WindowService


@dataclass(frozen=True)
class StaffCard:
    staff_no: str
    name: str
    has_photo: bool


@dataclass(frozen=True)
class Screen:
    """What a pad shows: a service to rate (faces), or the idle card between services (with
    the staff member of the latest service, `service_id` naming it for the photo)."""

    state: str  # "serving" | "idle"
    window_name: str
    service_id: int | None = None
    flow_no: str | None = None
    item_name: str | None = None
    staff: StaffCard | None = None
    rated: bool = False


def _card(row: Any) -> StaffCard | None:
    if row is None or row.staff_no is None:
        return None
    return StaffCard(staff_no=row.staff_no, name=row.staff_name, has_photo=bool(row.photo_key))


async def screen(*, db: AsyncSession, window: Org) -> Screen:
    """The window's open service, unless its case is rated already; else the idle screen
    with the card of the staff member who served last."""
    rated = exists().where(
        Evaluation.case_id == WindowService.case_id, Evaluation.stage == DEFAULT_STAGE
    )
    latest = (
        await db.execute(
            select(
                WindowService.id,
                WindowService.flow_no,
                WindowService.ended_at,
                Item.name.label("item_name"),
                Staff.staff_no,
                Staff.name.label("staff_name"),
                Staff.photo_key,
                rated.label("rated"),
            )
            .join(Item, Item.id == WindowService.item_id)
            .outerjoin(Staff, Staff.id == WindowService.staff_id)
            .where(WindowService.window_id == window.id)
            .order_by(WindowService.started_at.desc(), WindowService.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        return Screen(state="idle", window_name=window.name)
    if latest.ended_at is None and not latest.rated:
        return Screen(
            state="serving",
            window_name=window.name,
            service_id=latest.id,
            flow_no=latest.flow_no,
            item_name=latest.item_name,
            staff=_card(latest),
        )
    return Screen(
        state="idle",
        window_name=window.name,
        service_id=latest.id,
        staff=_card(latest),
        rated=bool(latest.rated),
    )


async def service_photo(*, db: AsyncSession, window: Org, service_id: int) -> Any:
    """The photo (key, type) of the staff member of one of the window's services."""
    return (
        await db.execute(
            select(Staff.photo_key, Staff.photo_type)
            .join(WindowService, WindowService.staff_id == Staff.id)
            .where(WindowService.id == service_id, WindowService.window_id == window.id)
        )
    ).first()


async def pads(*, db: AsyncSession, actor: Principal, window_code: str | None = None) -> list[Any]:
    """The pads of the windows in the caller's subtree, newest first (at most 500)."""
    stmt = (
        select(
            PadDevice.id,
            PadDevice.name,
            Org.code.label("window_code"),
            Org.name.label("window_name"),
            PadDevice.created_at,
            PadDevice.created_by,
            PadDevice.paired_at,
            PadDevice.revoked_at,
            PadDevice.revoked_by,
            PadDevice.last_seen_at,
            PadDevice.pairing_expires_at,
        )
        .join(Org, Org.id == PadDevice.window_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(PadDevice.id.desc())
        .limit(500)
    )
    if window_code:
        stmt = stmt.where(Org.code == window_code)
    return list((await db.execute(stmt)).all())


async def windows(*, db: AsyncSession, actor: Principal) -> list[Any]:
    """The active windows in the caller's subtree, by code (for the pairing form)."""
    return list(
        (
            await db.execute(
                select(Org.code, Org.name)
                .where(
                    Org.kind == OrgKind.WINDOW,
                    Org.active.is_(True),
                    Org.path.startswith(actor.org_path, autoescape=True),
                )
                .order_by(Org.code)
                .limit(1000)
            )
        ).all()
    )
