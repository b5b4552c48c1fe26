"""Read side of work orders: scoped lists (queues) and the detail view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.roles import Role
from haochaping.core.security import mask_name, mask_text
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.evaluations import queries as evaluation_queries
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.service import IntakeRules
from haochaping.orgs.models import Item, Org
from haochaping.workorders.context import Deadlines
from haochaping.workorders.models import (
    Attachment,
    SpotCheck,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderUnit,
)
from haochaping.workorders.states import (
    CALLBACK_ACTIONS,
    OPEN_STATES,
    STATE_LABELS,
    State,
    allowed_actions,
    records_callback,
)

W = WorkOrder
Window = aliased(Org)
SUPERVISED_STATES = ("supervising", "accountability")
OVERDUE_CONDITIONS = [
    (("verifying", "transferred"), W.verify_due_at),
    (("verifying", "transferred", "rectifying"), W.rectify_due_at),
    (("callback", "explained"), W.callback_due_at),
]


def overdue_clause(now: datetime, table: Any = W):
    """An order is overdue when a deadline of its current state has passed, or it was
    escalated for one and is still under supervision. `table`: `work_order`, or another with
    the same columns (`state`, the `*_due_at`, `overdue_at`: a child's reported orders)."""
    return or_(
        *[
            and_(table.state.in_(states), getattr(table, due.key) < now)
            for states, due in OVERDUE_CONDITIONS
        ],
        and_(table.state == "supervising", table.overdue_at.is_not(None)),
    )


def visible(actor: Principal):
    """Orders with an active unit (lead or co-handling) inside the caller's subtree; for window
    staff also the orders of ratings given at their window, wherever the order went (it is
    usually assigned to the hall, above the window)."""
    by_unit = (
        select(WorkOrderUnit.work_order_id)
        .join(Org, Org.id == WorkOrderUnit.org_id)
        .where(
            WorkOrderUnit.work_order_id == W.id,
            WorkOrderUnit.active.is_(True),
            Org.path.startswith(actor.org_path, autoescape=True),
        )
        .exists()
    )
    if not actor.has_role(Role.STAFF):
        return by_unit
    by_window = (
        select(Evaluation.id)
        .join(Window, Window.id == Evaluation.window_id)
        .where(
            Evaluation.id == W.evaluation_id,
            Window.path.startswith(actor.org_path, autoescape=True),
        )
        .exists()
    )
    return or_(by_unit, by_window)


def work_orders(
    *,
    actor: Principal,
    state: str | None = None,
    states: list[str] | None = None,
    org_code: str | None = None,
    overdue: bool | None = None,
    due_before: datetime | None = None,
    now: datetime,
) -> Select:
    """A queue: the caller's work orders, oldest first (the first to fall due)."""
    stmt = (
        select(W, Org.code, Org.name)
        .join(Org, Org.id == W.org_id)
        .where(visible(actor))
        .order_by(W.id)
    )
    if state:
        stmt = stmt.where(W.state == state)
    if states:
        stmt = stmt.where(W.state.in_(states))
    if org_code:
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        stmt = stmt.where(func.substr(Org.path, 1, func.length(sub)) == sub)  # not LIKE
    if overdue is True:
        stmt = stmt.where(overdue_clause(now))
    elif overdue is False:
        stmt = stmt.where(~overdue_clause(now))
    if due_before:
        stmt = stmt.where(
            or_(
                *[
                    and_(W.state.in_(states_), due < due_before)
                    for states_, due in OVERDUE_CONDITIONS
                ]
            )
        )
    return stmt


def spot_checks(*, actor: Principal, state: str) -> Select:
    """Callback tasks on sampled good ratings in the caller's subtree, oldest first."""
    return (
        select(SpotCheck, Org.code)
        .join(Org, Org.id == SpotCheck.org_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True), SpotCheck.state == state)
        .order_by(SpotCheck.id)
    )


def deadlines_of(order: WorkOrder, deadlines: Deadlines, now: datetime) -> list[dict[str, Any]]:
    """The deadlines that bind the order in its current state, as dates and days left."""
    out = []
    for states, due in OVERDUE_CONDITIONS:
        value = getattr(order, due.key)
        if order.state in states and value is not None:
            out.append(
                {
                    "kind": due.key.removesuffix("_due_at"),
                    "due_at": value,
                    "due_date": value.astimezone(SHANGHAI).date(),
                    "remaining_workdays": deadlines.remaining(value, now),
                    "overdue": value < now,
                    "verified": order.deadlines_verified,
                }
            )
    return out


def is_overdue(order: WorkOrder, now: datetime) -> bool:
    if order.state == "supervising":
        return order.overdue_at is not None
    return any(
        order.state in states
        and getattr(order, due.key) is not None
        and getattr(order, due.key) < now
        for states, due in OVERDUE_CONDITIONS
    )


SYSTEM = Principal(kind="system", id=0, name="", org_id=0, org_path="/")


async def _ratings(
    db: AsyncSession, evaluation_ids: set[int], rules: IntakeRules
) -> dict[int, tuple[dict[str, Any], str | None, str]]:
    """The ratings behind some orders, as the API reads them, with their case numbers and
    the codes of the organisations rated."""
    if not evaluation_ids:
        return {}
    rows = (
        await db.execute(
            evaluation_queries.evaluations(actor=SYSTEM).where(Evaluation.id.in_(evaluation_ids))
        )
    ).all()
    out = {}
    for row in rows:
        ev, case_no, org_code = row[0], row[1], row[2]
        out[ev.id] = (evaluation_queries.read_row(row, rules), case_no, org_code)
    return out


async def _units(db: AsyncSession, work_order_ids: set[int]) -> dict[int, list[tuple[str, str]]]:
    """The active units (role, organisation code) of some orders."""
    if not work_order_ids:
        return {}
    rows = (
        await db.execute(
            select(WorkOrderUnit.work_order_id, WorkOrderUnit.role, Org.code)
            .join(Org, Org.id == WorkOrderUnit.org_id)
            .where(WorkOrderUnit.work_order_id.in_(work_order_ids), WorkOrderUnit.active.is_(True))
        )
    ).all()
    out: dict[int, list[tuple[str, str]]] = {}
    for work_order_id, role, code in rows:
        out.setdefault(work_order_id, []).append((role, code))
    return out


def _read(
    order: WorkOrder,
    rating: tuple[dict[str, Any], str | None, str],
    units: list[tuple[str, str]],
    events: list[WorkOrderEvent],
    *,
    actor_role: str,
    deadlines: Deadlines,
    now: datetime,
) -> dict[str, Any]:
    evaluation, case_no, org_code = rating
    lead = next((c for r, c in units if r == "lead"), org_code)
    return {
        "id": order.id,
        "state": order.state,
        "state_label": STATE_LABELS[State(order.state)],
        "version": order.version,
        "origin": order.origin,
        "org_code": lead,
        "co_org_codes": sorted(c for r, c in units if r == "co"),
        "evaluation": evaluation,
        "case_no": case_no,
        "opened_at": order.opened_at,
        "deadlines": deadlines_of(order, deadlines, now),
        "deadlines_verified": order.deadlines_verified,
        "overdue": is_overdue(order, now),
        "callback_attempts": order.callback_attempts,
        "followups": order.followups,
        "close_reason": order.close_reason,
        "policy_id": order.policy_id,
        "allowed_actions": sorted(
            {
                _public_action(a)
                for a in allowed_actions(State(order.state), actor_role)
                if a not in CALLBACK_ACTIONS
                or records_callback(actor_role, (order.policy or {}).get("callback_by", "unit"))
            }
        ),
        "events": events,
    }


async def detail(
    *,
    db: AsyncSession,
    order: WorkOrder,
    actor_role: str,
    rules: IntakeRules,
    deadlines: Deadlines,
    now: datetime,
) -> dict[str, Any]:
    """Everything the work-order page and API show about one order, with its timeline."""
    ratings = await _ratings(db, {order.evaluation_id}, rules)
    units = await _units(db, {order.id})
    events = list(
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id)
            )
        ).scalars()
    )
    return _read(
        order,
        ratings[order.evaluation_id],
        units.get(order.id, []),
        events,
        actor_role=actor_role,
        deadlines=deadlines,
        now=now,
    )


async def summaries(
    *,
    db: AsyncSession,
    orders: list[WorkOrder],
    actor_role: str,
    rules: IntakeRules,
    deadlines: Deadlines,
    now: datetime,
) -> list[dict[str, Any]]:
    """What a list shows of each order (the detail without the timeline), in a fixed
    number of queries however many orders there are."""
    ratings = await _ratings(db, {o.evaluation_id for o in orders}, rules)
    units = await _units(db, {o.id for o in orders})
    return [
        _read(
            o,
            ratings[o.evaluation_id],
            units.get(o.id, []),
            [],
            actor_role=actor_role,
            deadlines=deadlines,
            now=now,
        )
        for o in orders
    ]


def _public_action(action) -> str:
    """The three callback outcomes are one API action, `callback`, with a verdict."""
    return "callback" if action.value.startswith("callback_") else action.value


OPEN = sorted(s.value for s in OPEN_STATES)


# --- the console's queues and work-order page ------------------------------------------------


async def work_order_page(
    *,
    db: AsyncSession,
    actor: Principal,
    deadlines: Deadlines,
    state: str | None = None,
    org_code: str | None = None,
    overdue: bool | None = None,
    due_before: datetime | None = None,
    cursor: str | None = None,
    supervision: bool = False,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], str | None]:
    """A queue of the actor's work orders (the supervision queue: supervised or overdue), each
    with its rating's level and item and its open deadlines, in the order they were opened
    (the oldest, whose deadlines fall first, first; the id breaking ties)."""
    now = utcnow()
    stmt = work_orders(
        actor=actor,
        state=state,
        org_code=org_code,
        overdue=overdue,
        due_before=due_before,
        now=now,
    )
    if supervision:
        stmt = stmt.where(or_(W.state.in_(SUPERVISED_STATES), overdue_clause(now)))
    rows, nxt = await pagination.page(
        db, stmt, key=W.id, time_key=W.opened_at, cursor=cursor, limit=limit
    )
    ev_ids = [order.evaluation_id for order, _code, _name in rows]
    ratings: dict[int, tuple[int, str | None]] = {}
    if ev_ids:
        ratings = {
            i: (lvl, name)
            for i, lvl, name in (
                await db.execute(
                    select(Evaluation.id, Evaluation.level, Item.name)
                    .outerjoin(Item, Item.id == Evaluation.item_id)
                    .where(Evaluation.id.in_(ev_ids))
                )
            ).all()
        }
    items = []
    for order, code, name in rows:
        level, item_name = ratings.get(order.evaluation_id, (0, None))
        items.append(
            {
                "id": order.id,
                "state": order.state,
                "level": level,
                "item_name": item_name or "",
                "org_code": code,
                "org_name": name,
                "opened_at": order.opened_at,
                "deadlines": sorted(deadlines_of(order, deadlines, now), key=lambda d: d["due_at"]),
                "overdue": is_overdue(order, now),
                "escalations": order.escalations,
            }
        )
    return items, nxt


async def work_order_view(
    *,
    db: AsyncSession,
    order: WorkOrder,
    actor: Principal,
    rules: IntakeRules,
    deadlines: Deadlines,
) -> dict[str, Any]:
    """Everything the work-order page shows: the loop's detail with names, the case, the
    files (by event, and those not yet attached to one) and the rater's follow-ups."""
    now = utcnow()
    d = await detail(
        db=db, order=order, actor_role=actor.role or "", rules=rules, deadlines=deadlines, now=now
    )
    ev = d["evaluation"]
    ev["reason_texts"] = [rules.tags[c].text if c in rules.tags else c for c in ev["reasons"]]
    case = None
    if order.case_id is not None:
        row = (
            await db.execute(
                select(Case, Item.name, Org.name, Window.name)
                .join(Item, Item.id == Case.item_id)
                .join(Org, Org.id == Case.org_id)
                .outerjoin(Window, Window.id == Case.window_id)
                .where(Case.id == order.case_id)
            )
        ).first()
        if row is not None:
            c, item_name, hall_name, window_name = row
            case = {
                "case_no": c.case_no,
                "item_name": item_name,
                "hall_name": hall_name,
                "window_name": window_name,
                "received_at": c.received_at,
                "accepted_at": c.accepted_at,
                "completed_at": c.completed_at,
                "mode": c.mode,
            }
    codes = {d["org_code"], *d["co_org_codes"]}
    names = dict((await db.execute(select(Org.code, Org.name).where(Org.code.in_(codes)))).all())
    files = (
        (
            await db.execute(
                select(Attachment)
                .where(Attachment.work_order_id == order.id)
                .order_by(Attachment.id)
            )
        )
        .scalars()
        .all()
    )
    by_event: dict[int, list[Attachment]] = {}
    for a in files:
        if a.event_id is not None:
            by_event.setdefault(a.event_id, []).append(a)
    followups: Sequence[Evaluation] = []
    first = await db.get(Evaluation, order.evaluation_id) if order.followups else None
    if first is not None and case is not None:
        followups = (
            (
                await db.execute(
                    select(Evaluation)
                    .where(
                        Evaluation.case_id == order.case_id,
                        Evaluation.stage == first.stage,
                        Evaluation.eval_count > 1,
                    )
                    .order_by(Evaluation.id)
                )
            )
            .scalars()
            .all()
        )
    return {
        **d,
        "evaluation": ev,
        "case": case,
        "lead": {"code": d["org_code"], "name": names.get(d["org_code"], "")},
        "co_orgs": [{"code": c, "name": names.get(c, "")} for c in d["co_org_codes"]],
        "events": [(e, by_event.get(e.id, [])) for e in d["events"]],
        "pending_files": [a for a in files if a.event_id is None],
        "followups": [
            {
                "level": f.level,
                "is_bad": rules.is_bad(f.level),
                "reason_texts": [rules.tags[c].text if c in rules.tags else c for c in f.reasons],
                "comment": mask_text(f.comment),
                "evaluated_at": f.evaluated_at,
            }
            for f in followups
        ],
        "policy": order.policy,
    }


# --- the console's spot-check queue (抽查回访) --------------------------------------------------

SPOT_CHECK_STATES = ("pending", "done")


async def spot_check_page(
    *,
    db: AsyncSession,
    actor: Principal,
    state: str,
    cursor: str | None,
    limit: int,
    org_code: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the spot checks in the actor's subtree by sampled time (`created_at`, the id
    breaking ties): the pending ones oldest first (the order they were sampled in, to be
    called), the done ones newest first; each with what
    the caller needs to recognise the rating (the rater masked, never their number)."""
    stmt = (
        select(
            SpotCheck,
            Org.code,
            Org.name,
            Evaluation.level,
            Evaluation.channel,
            Evaluation.evaluated_at,
            Evaluation.rater_name,
            Evaluation.anonymous,
            Evaluation.rater_phone_hash.is_not(None).label("has_phone"),
            Item.name,
            Window.name,
        )
        .join(Org, Org.id == SpotCheck.org_id)
        .join(Evaluation, Evaluation.id == SpotCheck.evaluation_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .where(Org.path.startswith(actor.org_path, autoescape=True), SpotCheck.state == state)
    )
    if org_code:
        # The unit and everything below it; a plain prefix comparison (codes may hold "_").
        sub = select(Org.path).where(Org.code == org_code).scalar_subquery()
        stmt = stmt.where(func.substr(Org.path, 1, func.length(sub)) == sub)
    rows, nxt = await pagination.page(
        db,
        stmt,
        key=SpotCheck.id,
        time_key=SpotCheck.created_at,
        cursor=cursor,
        limit=limit,
        descending=state == "done",
    )
    items = []
    for check, code, name, level, channel, at, rater, anonymous, has_phone, item, window in rows:
        items.append(
            {
                "id": check.id,
                "evaluation_id": check.evaluation_id,
                "state": check.state,
                "verdict": check.verdict,
                "work_order_id": check.work_order_id,
                "created_at": check.created_at,
                "done_at": check.done_at,
                "org_code": code,
                "org_name": name,
                "window_name": window,
                "item_name": item,
                "level": level,
                "channel": channel,
                "evaluated_at": at,
                "rater": None if anonymous else mask_name(rater),
                "has_phone": bool(has_phone),
            }
        )
    return items, nxt


async def spot_check_count(db: AsyncSession, actor: Principal) -> int:
    """The pending spot checks in the actor's subtree."""
    return (
        await db.execute(
            select(func.count())
            .select_from(SpotCheck)
            .join(Org, Org.id == SpotCheck.org_id)
            .where(
                Org.path.startswith(actor.org_path, autoescape=True),
                SpotCheck.state == "pending",
            )
        )
    ).scalar_one()
