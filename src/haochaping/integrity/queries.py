"""Read side of the review queue: flags with their rating, in the reviewer's subtree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.errors import NotFound
from haochaping.core.timeutil import fmt_local
from haochaping.evaluations import queries as evaluation_queries
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import CHANNEL_LABELS, LEVEL_LABELS
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import (
    STANDING_LABELS,
    EvaluationStanding,
    Standing,
    StandingEvent,
    StandingReason,
)
from haochaping.integrity import detectors
from haochaping.integrity.choices import STATE_LABELS, FlagState, IdentityKind, SourceKind
from haochaping.integrity.models import IntegrityFlag, StaffIdentity
from haochaping.orgs.models import Org, Staff
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import STATE_LABELS as WO_STATE_LABELS


async def org_path(db: AsyncSession, actor: Principal, org_code: str) -> str:
    """The path of an organisation the caller may look into (404 unknown, 403 outside)."""
    path = (await db.execute(select(Org.path).where(Org.code == org_code))).scalar_one_or_none()
    if path is None:
        raise NotFound(
            f"机构 {org_code} 不存在",
            code="org_not_found",
            details=[{"field": "org_code", "value": org_code}],
        )
    actor.require(path)
    return path


def flags(
    *,
    actor: Principal,
    state: str | None = None,
    check: str | None = None,
    subtree: str | None = None,
    evaluation_id: int | None = None,
) -> Select:
    """Flags on ratings inside the caller's subtree, oldest first (a work queue)."""
    stmt = (
        select(
            IntegrityFlag,
            Org.code,
            Org.name,
            Evaluation.level,
            Evaluation.channel,
            Case.case_no,
            EvaluationStanding.standing,
            Evaluation.evaluated_at,
        )
        .join(Org, Org.id == IntegrityFlag.org_id)
        .join(Evaluation, Evaluation.id == IntegrityFlag.evaluation_id)
        .outerjoin(Case, Case.id == Evaluation.case_id)
        .outerjoin(
            EvaluationStanding, EvaluationStanding.evaluation_id == IntegrityFlag.evaluation_id
        )
        .where(Org.path.startswith(actor.org_path, autoescape=True))
        .order_by(IntegrityFlag.id)
    )
    if state:
        stmt = stmt.where(IntegrityFlag.state == state)
    if check:
        stmt = stmt.where(IntegrityFlag.check_name == check)
    if subtree:
        # A plain prefix comparison: codes may contain "_", a LIKE wildcard.
        stmt = stmt.where(func.substr(Org.path, 1, len(subtree)) == subtree)
    if evaluation_id is not None:
        stmt = stmt.where(IntegrityFlag.evaluation_id == evaluation_id)
    return stmt


def item(row: Any) -> dict[str, Any]:
    """One line of the queue: the flag, its evidence and what the rating is."""
    flag, org_code, org_name, level, channel, case_no, standing, evaluated_at = row
    labels = detectors.check_labels()
    standing = standing or Standing.VALID.value
    return {
        "id": flag.id,
        "evaluation_id": flag.evaluation_id,
        "check": flag.check_name,
        "check_label": labels.get(flag.check_name, flag.check_name),
        "stage": flag.stage,
        "subject": flag.subject,
        "reason": flag.reason,
        "evidence": flag.evidence,
        "state": flag.state,
        "state_label": STATE_LABELS[FlagState(flag.state)],
        "org_code": org_code,
        "org_name": org_name,
        "case_no": case_no,
        "level": level,
        "level_label": LEVEL_LABELS[level],
        "channel": channel,
        "channel_label": CHANNEL_LABELS.get(channel, channel),
        "evaluated_at": evaluated_at,
        "standing": standing,
        "standing_label": STANDING_LABELS[Standing(standing)],
        "created_at": flag.created_at,
        "reviewed_by": flag.reviewed_by,
        "reviewed_at": flag.reviewed_at,
        "review_note": flag.review_note,
    }


async def detail(
    *,
    db: AsyncSession,
    actor: Principal,
    flag: IntegrityFlag,
    rules: evaluation_service.IntakeRules,
) -> dict[str, Any]:
    """A flag with its rating (personal data masked), the rating's other flags and the
    history of its standing."""
    rows = (await db.execute(flags(actor=actor, evaluation_id=flag.evaluation_id).limit(100))).all()
    this = next(r for r in rows if r[0].id == flag.id)
    ev_row = (
        await db.execute(
            evaluation_queries.evaluations(actor=actor).where(Evaluation.id == flag.evaluation_id)
        )
    ).one()
    history = (
        (
            await db.execute(
                select(StandingEvent)
                .where(StandingEvent.evaluation_id == flag.evaluation_id)
                .order_by(StandingEvent.id)
            )
        )
        .scalars()
        .all()
    )
    return {
        **item(this),
        "evaluation": evaluation_queries.read_row(ev_row, rules),
        "other_flags": [item(r) for r in rows if r[0].id != flag.id],
        "standing_history": [
            {
                "from": e.from_standing,
                "to": e.to_standing,
                "reason": e.reason,
                "note": e.note,
                "actor": e.actor,
                "at": e.created_at,
            }
            for e in history
        ],
    }


async def open_counts(db: AsyncSession, actor: Principal) -> dict[str, int]:
    """Open flags in the caller's subtree, by check (what waits for a reviewer)."""
    rows = (
        await db.execute(
            select(IntegrityFlag.check_name, func.count())
            .join(Org, Org.id == IntegrityFlag.org_id)
            .where(
                IntegrityFlag.state == FlagState.OPEN.value,
                Org.path.startswith(actor.org_path, autoescape=True),
            )
            .group_by(IntegrityFlag.check_name)
        )
    ).all()
    return dict(rows)  # type: ignore[arg-type]


async def work_order_of(db: AsyncSession, evaluation_id: int) -> dict[str, Any] | None:
    """The work order a flagged bad rating opened, if any (id and state, for a link)."""
    row = (
        await db.execute(
            select(WorkOrder.id, WorkOrder.state).where(WorkOrder.evaluation_id == evaluation_id)
        )
    ).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "state": row.state,
        "state_label": WO_STATE_LABELS.get(row.state, row.state),
    }


async def staff_identities(
    db: AsyncSession, actor: Principal, limit: int = 20
) -> list[dict[str, Any]]:
    """Staff members of the caller's subtree whose identities are registered, latest first
    (which kinds, by whom, when: the numbers themselves are never stored)."""
    rows = (
        await db.execute(
            select(
                Staff.staff_no,
                Staff.name,
                Org.name,
                StaffIdentity.kind,
                StaffIdentity.recorded_by,
                StaffIdentity.updated_at,
            )
            .join(Staff, Staff.id == StaffIdentity.staff_id)
            .join(Org, Org.id == Staff.org_id)
            .where(Org.path.startswith(actor.org_path, autoescape=True))
            .order_by(StaffIdentity.updated_at.desc(), Staff.staff_no)
            .limit(limit * 2)
        )
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for staff_no, name, org_name, kind, by, at in rows:
        entry = out.setdefault(
            staff_no,
            {
                "staff_no": staff_no,
                "name": name,
                "org_name": org_name,
                "kinds": [],
                "recorded_by": by,
                "updated_at": at,
            },
        )
        entry["kinds"].append(kind)
    order = list(IDENTITY_KINDS)
    for entry in out.values():
        entry["kinds"] = [
            IDENTITY_KINDS.get(k, k)
            for k in sorted(
                entry["kinds"], key=lambda k: order.index(k) if k in order else len(order)
            )
        ]
    return list(out.values())[:limit]


# --- evidence as people read it -------------------------------------------------------------

IDENTITY_KINDS = IdentityKind.labels()
STANDING_REASON_LABELS = StandingReason.labels()


def standing_reason(reason: str, to: str) -> str:
    """Why a rating's standing changed, as people read it (the detectors' reason covers both
    the hold and a reviewer's invalidation)."""
    if reason == StandingReason.DETECTOR and to == Standing.INVALID.value:
        return "疑似刷评复核：判定无效"
    return STANDING_REASON_LABELS.get(reason, reason)


_LINKS = SourceKind.labels()
_TIME_BASIS = {"given": "评价器或渠道报告的评价时间", "received": "评价到达服务器的时间"}


def _basis(v: Any) -> str:
    return "、".join(_TIME_BASIS.get(x, str(x)) for x in ([v] if isinstance(v, str) else v))


_UNITS = {"window": "窗口", "staff": "工作人员"}
_RELATIONS = {"self": "办理该件的工作人员本人", "colleague": "被评价单位的其他工作人员"}
IDS_SHOWN = 20


def _n(unit: str) -> Callable[[Any], str]:
    return lambda v: f"{v} {unit}"


def _pct(v: Any) -> str:
    return f"{float(v) * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _secs(v: Any) -> str:
    return f"{float(v):g} 秒"


def _days(v: Any) -> str:
    return f"近 {v} 天"


def _time(v: Any) -> str:
    try:
        return fmt_local(datetime.fromisoformat(str(v)))
    except ValueError:
        return str(v)


def _ids(v: Any) -> str:
    ids = list(v) if isinstance(v, list | tuple) else [v]
    shown = "、".join(f"#{i}" for i in ids[:IDS_SHOWN])
    return f"共 {len(ids)} 条：{shown}" + ("…" if len(ids) > IDS_SHOWN else "")


def _choice(labels: dict[str, str]) -> Callable[[Any], str]:
    return lambda v: labels.get(str(v), str(v))


def _join(labels: dict[str, str]) -> Callable[[Any], str]:
    return lambda v: "、".join(labels.get(str(x), str(x)) for x in (v or [])) or "—"


Field = tuple[str, Callable[[Any], str]]
# Each check's evidence keys in the order a reviewer reads them: label and formatter. A key a
# check adds later and this table lacks is still shown, under its own name.
EVIDENCE_FIELDS: dict[str, dict[str, Field]] = {
    "staff_self_rating": {
        "relation": ("一致的对象", _choice(_RELATIONS)),
        "matched": ("一致的信息", _choice(IDENTITY_KINDS)),
        "staff_no": ("工作人员工号", str),
    },
    "source_burst": {
        "source": ("来源类型", _choice(_LINKS)),
        "value": ("来源（已脱敏）", str),
        "window_hours": ("时间窗口", lambda v: f"{float(v):g} 小时"),
        "cases": ("评价的办件", _n("件")),
        "raters": ("涉及评价人", _n("人")),
        "time_basis": ("时间依据", _basis),
        "evaluation_ids": ("同一来源的评价", _ids),
    },
    "invitation_misuse": {
        "source": ("来源（已脱敏）", str),
        "invitation_id": ("评价链接编号", lambda v: f"#{v}"),
        "refused_reused": ("使用已用过的链接", _n("次")),
        "refused_forged": ("使用无效或伪造的链接", _n("次")),
        "seconds_after_issue": ("本条评价距链接签发", _secs),
        "fast_links": ("签发后过快完成的评价", _n("条")),
        "all_seconds": ("各条距链接签发", lambda v: "、".join(f"{float(x):g}" for x in v) + " 秒"),
        "days": ("统计范围", _days),
        "evaluation_ids": ("同组评价", _ids),
    },
    "instant_pad": {
        "window_code": ("窗口编码", str),
        "device": ("评价器（已脱敏）", str),
        "seconds": ("本条评价距办结", _secs),
        "ratings": ("该评价器评价总数", _n("条")),
        "instant": ("办结即评", _n("条")),
        "share": ("办结即评占比", _pct),
        "instant_seconds": ("“办结即评”的标准", lambda v: f"办结后 {float(v):g} 秒内"),
        "instant_after_seconds": ("且晚于", lambda v: f"办结后 {float(v):g} 秒"),
        "peer_share": ("其他评价器较高水平的占比", _pct),
        "peers": ("参与比较的评价器", _n("台")),
        "p_value": ("偶然出现的概率", lambda v: f"约 {float(v):.1e}"),
        "days": ("统计范围", _days),
    },
    "perfect_unit": {
        "unit": ("对象", _choice(_UNITS)),
        "code": ("编码或工号", str),
        "ratings": ("评价总数", _n("条")),
        "top": ("“非常满意”", _n("条")),
        "share": ("“非常满意”占比", _pct),
        "peer_share": ("同类平均占比", _pct),
        "peer_best": ("同类较好单位的占比", _pct),
        "peer_ratings": ("同类评价总数", _n("条")),
        "p_value": ("偶然出现的概率", lambda v: f"约 {float(v):.1e}"),
        "days": ("统计范围", _days),
    },
    "duplicate_comment": {
        "comment": ("雷同内容（已脱敏）", str),
        "org_code": ("单位编码", str),
        "cases": ("出现在不同办件", _n("件")),
        "variants": ("写法（去掉标点后）", _n("种")),
        "similarity": ("相似度标准", lambda v: f"编辑相似度 ≥ {float(v):g}%"),
        "days": ("统计范围", _days),
        "evaluation_ids": ("内容相同或相近的评价", _ids),
    },
    "coordinated_bad": {
        "org_code": ("被评价单位编码", str),
        "ratings": ("集中差评", _n("条")),
        "cases": ("涉及办件", _n("件")),
        "raters": ("涉及评价人", _n("人")),
        "linked_by": ("评价人之间的关联", _join(_LINKS)),
        "first": ("第一条差评", _time),
        "last": ("最后一条差评", _time),
        "time_basis": ("时间依据", _basis),
        "evaluation_ids": ("同组差评", _ids),
    },
    "pad_burst": {
        "window_code": ("窗口编码", str),
        "device": ("评价器（已脱敏）", str),
        "presses": ("连续快速评价", _n("次")),
        "gaps_seconds": ("相邻两次间隔", lambda v: "、".join(f"{float(x):g}" for x in v) + " 秒"),
        "first": ("第一次", _time),
        "last": ("最后一次", _time),
        "time_basis": ("时间依据", _basis),
        "evaluation_ids": ("同组评价", _ids),
    },
    "agent_volume": {
        "rater": ("证件号（已脱敏）", str),
        "applicants": ("涉及不同办事人", _n("人")),
        "ratings": ("评价", _n("条")),
        "hours": ("时间跨度", lambda v: f"{float(v):g} 小时"),
        "place_code": ("集中的窗口或单位", str),
        "at_place": ("其中在该处", _n("条")),
        "level": ("评价等级", lambda v: LEVEL_LABELS.get(int(v), str(v))),
        "at_level": ("该等级", _n("条")),
        "time_basis": ("时间依据", _basis),
        "evaluation_ids": ("同组评价", _ids),
    },
}


def evidence_rows(check: str, evidence: dict[str, Any] | None) -> list[dict[str, str]]:
    """A check's evidence as labelled rows (never raw JSON); unknown keys keep their name."""
    evidence = evidence or {}
    fields = EVIDENCE_FIELDS.get(check, {})
    rows = []
    for key in [*[k for k in fields if k in evidence], *[k for k in evidence if k not in fields]]:
        value = evidence[key]
        label, fmt = fields.get(key, (key, _plain))
        try:
            text = "—" if value is None or value == "" else fmt(value)
        except (TypeError, ValueError):
            text = _plain(value)
        rows.append({"key": key, "label": label, "text": text})
    return rows


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}：{v}" for k, v in value.items())
    return str(value)
