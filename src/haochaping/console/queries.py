"""Read-side helpers of the console: one page of ratings with the names people read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.appeals import queries as appeal_queries
from haochaping.appeals.models import Appeal, MaliciousRater
from haochaping.appeals.service import CATEGORY_LABELS
from haochaping.cases.models import Case
from haochaping.console.forms import EvaluationFilters
from haochaping.core import pagination
from haochaping.core.auth import Principal
from haochaping.core.security import mask_text
from haochaping.core.timeutil import utcnow
from haochaping.evaluations import queries
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import EvaluationStanding, Standing
from haochaping.orgs.models import Item, Org
from haochaping.workorders import queries as wo_queries
from haochaping.workorders.context import Deadlines
from haochaping.workorders.models import Attachment, WorkOrder
from haochaping.workorders.states import ACTION_LABELS, STATE_LABELS, Action, State

Window = aliased(Org)

PAGE_SIZE = 20


@dataclass
class EvaluationPage:
    """One page of the console's rating list."""

    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def bad_count(self) -> int:
        return sum(1 for item in self.items if item["is_bad"])

    @property
    def bad_share(self) -> str:
        """The share of bad ratings on this page, as people read it (e.g. 12.5%)."""
        if not self.items:
            return "0%"
        return f"{self.bad_count * 100 / len(self.items):.1f}".rstrip("0").rstrip(".") + "%"


async def _names(db: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict((await db.execute(select(model.id, model.name).where(model.id.in_(ids)))).all())


async def evaluation_page(
    *,
    db: AsyncSession,
    actor: Principal,
    filters: EvaluationFilters,
    rules: evaluation_service.IntakeRules,
    limit: int = PAGE_SIZE,
) -> EvaluationPage:
    """Ratings in the actor's subtree, newest first; personal data masked, free text too."""
    stmt = queries.evaluations(
        actor=actor,
        case_no=filters.case_no or None,
        org_code=filters.org_code or None,
        item_code=filters.item_code or None,
        level=filters.level,
        channel=filters.channel,
        since=filters.since_at,
        until=filters.until_at,
    )
    # A rating's standing when it is not plain valid (no row: it counts).
    stmt = stmt.add_columns(EvaluationStanding.standing).outerjoin(
        EvaluationStanding, EvaluationStanding.evaluation_id == Evaluation.id
    )
    rows, nxt = await pagination.page(
        db, stmt, key=Evaluation.id, cursor=filters.cursor, limit=limit, descending=True
    )
    orgs = await _names(
        db, Org, {r[0].org_id for r in rows} | {r[0].window_id for r in rows if r[0].window_id}
    )
    items_by_id = await _names(db, Item, {r[0].item_id for r in rows if r[0].item_id})
    out = []
    for ev, case_no, org_code, item_code, window_code, staff_no, standing in rows:
        target = evaluation_service.Target(
            case_no=case_no,
            org_code=org_code,
            item_code=item_code,
            window_code=window_code,
            staff_no=staff_no,
            region_code=ev.region_code,
        )
        item = evaluation_service.read_from_row(queries.row_dict(ev), target, rules)
        item["comment"] = mask_text(item["comment"])
        item["reason_texts"] = [
            rules.tags[c].text if c in rules.tags else c for c in item["reasons"]
        ]
        item["org_name"] = orgs.get(ev.org_id, "")
        item["window_name"] = orgs.get(ev.window_id, "") if ev.window_id else ""
        item["item_name"] = items_by_id.get(ev.item_id, "") if ev.item_id else ""
        item["standing"] = standing if standing in STANDING_BADGES else None
        item["standing_label"] = STANDING_BADGES.get(standing or "")
        out.append(item)
    return EvaluationPage(items=out, next_cursor=nxt)


# --- the closed loop: queues and the work-order page ---------------------------------------

DEADLINE_KINDS = {"verify": "核实期限", "rectify": "整改期限", "callback": "回访期限"}
EVENT_LABELS = {"open": "生成工单", "followup": "评价人追加评价"}
ACTOR_KINDS = {"system": "系统", "citizen": "评价人", "client": "评价渠道代评价人提交"}
CALLBACK_METHODS = {
    "phone": "电话",
    "sms": "短信",
    "wechat": "微信",
    "visit": "上门",
    "link": "评价人通过链接",
}
VERDICTS = {"satisfied": "满意", "basic": "基本满意", "dissatisfied": "不满意"}
SUPERVISED_STATES = ("supervising", "accountability")


def remaining_text(deadline: dict[str, Any]) -> str:
    """A deadline as people count it: 剩余 3 个工作日 / 今日到期 / 已超期 2 个工作日."""
    days = deadline["remaining_workdays"]
    if deadline["overdue"]:
        return f"已超期 {max(1, -days)} 个工作日"
    if days <= 0:
        return "今日到期"
    return f"剩余 {days} 个工作日"


def deadline_view(deadline: dict[str, Any]) -> dict[str, Any]:
    return {
        **deadline,
        "label": DEADLINE_KINDS.get(deadline["kind"], deadline["kind"]),
        "text": remaining_text(deadline),
    }


@dataclass
class WorkOrderPage:
    """One page of a work-order queue."""

    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def overdue_count(self) -> int:
        return sum(1 for item in self.items if item["overdue"])


async def work_order_page(
    *,
    db: AsyncSession,
    actor: Principal,
    filters: Any,
    deadlines: Deadlines,
    supervision: bool = False,
    limit: int = PAGE_SIZE,
) -> WorkOrderPage:
    """A queue of the actor's work orders (the supervision queue: supervised or overdue)."""
    now = utcnow()
    stmt = wo_queries.work_orders(
        actor=actor,
        state=filters.state,
        org_code=filters.org_code or None,
        overdue=filters.overdue_flag,
        due_before=filters.due_before_at,
        now=now,
    )
    if supervision:
        stmt = stmt.where(
            or_(WorkOrder.state.in_(SUPERVISED_STATES), wo_queries.overdue_clause(now))
        )
    rows, nxt = await pagination.page(
        db, stmt, key=WorkOrder.id, cursor=filters.cursor, limit=limit
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
        due = sorted(
            (deadline_view(d) for d in wo_queries.deadlines_of(order, deadlines, now)),
            key=lambda d: d["due_at"],
        )
        items.append(
            {
                "id": order.id,
                "state": order.state,
                "state_label": STATE_LABELS[State(order.state)],
                "level": level,
                "item_name": item_name or "",
                "org_code": code,
                "org_name": name,
                "opened_at": order.opened_at,
                "deadline": due[0] if due else None,
                "overdue": wo_queries.is_overdue(order, now),
                "escalations": order.escalations,
            }
        )
    return WorkOrderPage(items=items, next_cursor=nxt)


async def work_order_view(
    *,
    db: AsyncSession,
    order: WorkOrder,
    actor: Principal,
    rules: evaluation_service.IntakeRules,
    deadlines: Deadlines,
) -> dict[str, Any]:
    """Everything the work-order page shows: the loop's detail with names, case, files."""
    now = utcnow()
    d = await wo_queries.detail(
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
    events = [_event_view(e, by_event.get(e.id, [])) for e in d["events"]]
    appeals = (
        (
            await db.execute(
                select(Appeal).where(Appeal.work_order_id == order.id).order_by(Appeal.id)
            )
        )
        .scalars()
        .all()
    )
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
        "deadlines": [deadline_view(x) for x in d["deadlines"]],
        "events": events,
        "pending_files": [a for a in files if a.event_id is None],
        "appeals": [_appeal_view(a) for a in appeals],
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


def _event_view(e: Any, files: list[Attachment]) -> dict[str, Any]:
    data = e.data or {}
    extras = []
    if data.get("lead_org_code"):
        extras.append(f"牵头单位：{data['lead_org_code']}")
    if data.get("co_org_codes"):
        extras.append("协办单位：" + "、".join(data["co_org_codes"]))
    if data.get("method"):
        extras.append(f"回访方式：{CALLBACK_METHODS.get(data['method'], data['method'])}")
    if "reached" in data and data.get("method"):
        extras.append("已联系上评价人" if data["reached"] else "未联系上评价人")
    if data.get("verdict"):
        extras.append(f"评价人意见：{VERDICTS.get(data['verdict'], data['verdict'])}")
    if data.get("rectify_days"):
        extras.append(f"整改期限：{data['rectify_days']} 个工作日")
    if data.get("category"):
        extras.append(f"申诉类别：{CATEGORY_LABELS.get(data['category'], data['category'])}")
    if data.get("paused_workdays"):
        extras.append(f"申诉期间暂停计时 {data['paused_workdays']} 个工作日")
    try:
        label = ACTION_LABELS[Action(e.action)]
    except ValueError:
        label = EVENT_LABELS.get(e.action, e.action)
    return {
        "id": e.id,
        "label": label,
        "actor": e.actor_name,
        "actor_kind": ACTOR_KINDS.get(e.actor_kind, ""),
        "at": e.created_at,
        "from_label": STATE_LABELS[State(e.from_state)] if e.from_state else None,
        "to_label": STATE_LABELS[State(e.to_state)],
        "note": mask_text(e.note),
        "extras": extras,
        "files": files,
    }


def _appeal_view(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id,
        "work_order_id": a.work_order_id,
        "category": a.category,
        "category_label": CATEGORY_LABELS.get(a.category, a.category),
        "reasons": mask_text(a.reasons),
        "state": a.state,
        "state_label": APPEAL_STATES.get(a.state, a.state),
        "filed_by": a.filed_by,
        "filed_at": a.filed_at,
        "decide_due_at": a.decide_due_at,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
        "decision_note": mask_text(a.decision_note),
        "register_rater": a.register_rater,
    }


APPEAL_STATES = {"pending": "待复核", "upheld": "申诉成立", "rejected": "申诉驳回"}


async def appeal_page(
    *,
    db: AsyncSession,
    actor: Principal,
    state: str | None,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict], str | None]:
    """Appeals in the actor's subtree, oldest first (the decision queue)."""
    rows, nxt = await pagination.page(
        db,
        appeal_queries.appeals(actor=actor, state=state),
        key=Appeal.id,
        cursor=cursor,
        limit=limit,
    )
    items = [{**_appeal_view(a), "org_code": code, "org_name": name} for a, code, name in rows]
    return items, nxt


# --- settings pages: policies, calendar, outbox -------------------------------------------

POLICY_ROWS = [
    ("bad_levels", "差评等级"),
    ("verify_days", "核实期限"),
    ("rectify_days", "整改期限"),
    ("callback_days", "回访期限"),
    ("warn_days", "超期预警"),
    ("max_contact_attempts", "回访最多联系次数"),
    ("spot_check_rate", "好评抽查回访比例"),
    ("evaluation_window_days", "评价期限"),
    ("default_rating", "默认评价"),
    ("followup_allowance", "追评次数"),
    ("appeal_days", "申诉期限"),
    ("appeal_decision_days", "申诉复核期限"),
    ("stages", "评价环节"),
]
_WORKDAY_KEYS = {
    "verify_days",
    "rectify_days",
    "callback_days",
    "appeal_days",
    "appeal_decision_days",
}


def policy_value_text(key: str, value: Any) -> str:
    """A policy value as people read it."""
    if value is None:
        return "—"
    if key == "bad_levels":
        return "、".join(LEVEL_LABELS.get(v, str(v)) for v in sorted(value, reverse=True))
    if key in _WORKDAY_KEYS:
        return "当日" if value == 0 else f"{value} 个工作日"
    if key == "warn_days":
        return f"到期前 {value} 个工作日"
    if key == "spot_check_rate":
        return f"{float(value) * 100:g}%"
    if key == "evaluation_window_days":
        return f"办结后 {value} 天内"
    if key == "stages":
        return "、".join(
            f"{s['label']}（办结后）"
            if s.get("reached") == "completed" and s["code"] != "complete"
            else s["label"]
            for s in value
        )
    if key in ("max_contact_attempts", "followup_allowance"):
        return f"{value} 次"
    if key == "default_rating":
        rule = value if isinstance(value, dict) else value.model_dump()
        if not rule.get("enabled"):
            return "不启用"
        level = LEVEL_LABELS.get(rule.get("level", 3), "")
        return f"办结 {rule.get('after_days', 7)} 天内未评价的，记为“{level}”"
    return str(value)


def policy_rows(
    values: dict[str, Any], sources: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """(label, value, source) rows of a policy's values, in a fixed order."""
    return [
        {
            "key": key,
            "label": label,
            "text": policy_value_text(key, values.get(key)),
            "source": (sources or {}).get(key, "全国默认"),
        }
        for key, label in POLICY_ROWS
        if sources is not None or key in values
    ]


# --- held ratings (待复核评价): held for a reason other than the detectors ---------------------

HELD_REASONS = {"malicious_rater": "评价人在恶意评价人员信息库中"}
STANDING_BADGES = {"held": "待复核", "invalid": "无效（不计入统计）"}


def held_clause(actor: Principal, subtree: str | None = None) -> list[Any]:
    """Conditions: a rating in the actor's (or a narrower) subtree, held, not by a detector
    (the detectors' holds have their own queue)."""
    return [
        EvaluationStanding.standing == Standing.HELD.value,
        EvaluationStanding.reason != "detector",
        Org.path.startswith(subtree or actor.org_path, autoescape=True),
    ]


async def held_count(db: AsyncSession, actor: Principal) -> int:
    """How many ratings in the actor's subtree wait for a review of their hold."""
    return (
        await db.execute(
            select(func.count())
            .select_from(EvaluationStanding)
            .join(Evaluation, Evaluation.id == EvaluationStanding.evaluation_id)
            .join(Org, Org.id == Evaluation.org_id)
            .where(*held_clause(actor))
        )
    ).scalar_one()


async def held_page(
    *,
    db: AsyncSession,
    actor: Principal,
    subtree: str | None,
    cursor: str | None,
    rules: evaluation_service.IntakeRules,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """Held ratings of the actor's subtree, newest first, masked, with why they are held,
    the register's expiry (for a registered rater) and the work order, if any."""
    stmt = (
        select(
            Evaluation,
            EvaluationStanding,
            Org.code,
            Org.name,
            Case.case_no,
            Item.name,
            Window.name,
            WorkOrder.id,
            WorkOrder.state,
        )
        .join(EvaluationStanding, EvaluationStanding.evaluation_id == Evaluation.id)
        .join(Org, Org.id == Evaluation.org_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(Item, Item.id == Evaluation.item_id)
        .outerjoin(Window, Window.id == Evaluation.window_id)
        .outerjoin(WorkOrder, WorkOrder.evaluation_id == Evaluation.id)
        .where(*held_clause(actor, subtree))
    )
    rows, nxt = await pagination.page(
        db, stmt, key=Evaluation.id, cursor=cursor, limit=limit, descending=True
    )
    # The register's entries behind these holds: one query on the keyed hashes kept beside
    # each rating (the register stores the same hashes, never the numbers).
    hashes = {h for r in rows for h in (r[0].rater_cert_hash, r[0].rater_phone_hash) if h}
    expiry: dict[str, Any] = {}
    if hashes:
        expiry = dict(
            (
                await db.execute(
                    select(MaliciousRater.identity_hash, func.max(MaliciousRater.expires_at))
                    .where(
                        MaliciousRater.identity_hash.in_(hashes), MaliciousRater.active.is_(True)
                    )
                    .group_by(MaliciousRater.identity_hash)
                )
            ).all()
        )
    now = utcnow()
    items = []
    for ev, st, code, name, case_no, item_name, window_name, wo_id, wo_state in rows:
        until = max(
            (expiry[h] for h in (ev.rater_cert_hash, ev.rater_phone_hash) if h in expiry),
            default=None,
        )
        items.append(
            {
                "id": ev.id,
                "level": ev.level,
                "is_bad": rules.is_bad(ev.level),
                "channel": ev.channel,
                "evaluated_at": ev.evaluated_at,
                "reason_texts": [rules.tags[c].text if c in rules.tags else c for c in ev.reasons],
                "comment": mask_text(ev.comment),
                "org_code": code,
                "org_name": name,
                "case_no": case_no,
                "item_name": item_name or "",
                "window_name": window_name or "",
                "held_reason": HELD_REASONS.get(st.reason, st.reason),
                "held_note": mask_text(st.note),
                "held_at": st.updated_at,
                "register_until": until,
                "register_expired": until is not None and until <= now,
                "work_order": (
                    {"id": wo_id, "state_label": STATE_LABELS[State(wo_state)]} if wo_id else None
                ),
            }
        )
    return items, nxt
