"""The console's view code: the wording people read, put on the values the domains' queries
return (labels, deadlines as people count them, policy values, page summaries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from haochaping.appeals.choices import CATEGORY_LABELS
from haochaping.appeals.choices import STATE_LABELS as APPEAL_STATE_LABELS
from haochaping.appeals.models import Appeal
from haochaping.core.security import mask_text
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.evaluations.standing import Standing, StandingReason
from haochaping.integrity.choices import IdentityKind, RegisterStatus
from haochaping.workorders.choices import (
    CALLBACK_METHOD_LABELS,
    VERDICT_LABELS,
    ActorKind,
    DeadlineKind,
    OrderEvent,
)
from haochaping.workorders.models import Attachment
from haochaping.workorders.states import ACTION_LABELS, STATE_LABELS, Action, State

PAGE_SIZE = 20  # rows on one page of every console list


def list_order(time_label: str, *, newest_first: bool) -> str:
    """A list's order as its header states it, e.g. 按评价时间倒序（最近的在前）."""
    if newest_first:
        return f"按{time_label}倒序（最近的在前）"
    return f"按{time_label}顺序（最早的在前）"


ORDER_RATINGS = list_order("评价时间", newest_first=True)
ORDER_WORK_ORDERS = list_order("生成时间", newest_first=False)

# The list's badge for a rating that does not simply count (its standing's label, spelt out).
STANDING_BADGES = {
    Standing.HELD.value: Standing.HELD.label,
    Standing.INVALID.value: "无效（不计入统计）",
}


# --- ratings ----------------------------------------------------------------------------------


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


def evaluation_view(item: dict[str, Any]) -> dict[str, Any]:
    """A rating of the list with its standing badge (held or invalid; else none)."""
    standing = item["standing"]
    item["standing"] = standing if standing in STANDING_BADGES else None
    item["standing_label"] = STANDING_BADGES.get(standing or "")
    return item


def held_view(item: dict[str, Any]) -> dict[str, Any]:
    """A held rating with why it is held and its work order's state, as people read them."""
    wo = item["work_order"]
    return {
        **item,
        "held_reason": StandingReason.label_of(item["held_reason"], item["held_reason"]),
        "work_order": (
            {"id": wo["id"], "state_label": STATE_LABELS[State(wo["state"])]} if wo else None
        ),
    }


# --- the closed loop: queues and the work-order page ---------------------------------------


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
        "label": DeadlineKind.label_of(deadline["kind"], deadline["kind"]) + "期限",
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


def queue_item_view(item: dict[str, Any]) -> dict[str, Any]:
    """A queue's row: its state's label and the first deadline to fall due, as counted."""
    due = item.pop("deadlines")
    return {
        **item,
        "state_label": STATE_LABELS[State(item["state"])],
        "deadline": deadline_view(due[0]) if due else None,
    }


def work_order_view(wo: dict[str, Any], appeals: Any) -> dict[str, Any]:
    """The work-order page's values with their wording: deadlines, the events, the appeals."""
    return {
        **wo,
        "deadlines": [deadline_view(x) for x in wo["deadlines"]],
        "events": [event_view(e, files) for e, files in wo["events"]],
        "appeals": [appeal_view(a) for a in appeals],
    }


def event_view(e: Any, files: list[Attachment]) -> dict[str, Any]:
    data = e.data or {}
    extras = []
    if data.get("lead_org_code"):
        extras.append(f"牵头单位：{data['lead_org_code']}")
    if data.get("co_org_codes"):
        extras.append("协办单位：" + "、".join(data["co_org_codes"]))
    if data.get("method"):
        extras.append(f"回访方式：{CALLBACK_METHOD_LABELS.get(data['method'], data['method'])}")
    if "reached" in data and data.get("method"):
        extras.append("已联系上评价人" if data["reached"] else "未联系上评价人")
    if data.get("verdict"):
        extras.append(f"评价人意见：{VERDICT_LABELS.get(data['verdict'], data['verdict'])}")
    if data.get("rectify_days"):
        extras.append(f"整改期限：{data['rectify_days']} 个工作日")
    if data.get("category"):
        extras.append(f"申诉类别：{CATEGORY_LABELS.get(data['category'], data['category'])}")
    if data.get("paused_workdays"):
        extras.append(f"申诉期间暂停计时 {data['paused_workdays']} 个工作日")
    try:
        label = ACTION_LABELS[Action(e.action)]
    except ValueError:
        label = OrderEvent.label_of(e.action, e.action)
    return {
        "id": e.id,
        "label": label,
        "actor": e.actor_name,
        "actor_kind": ActorKind.label_of(e.actor_kind) if e.actor_kind != ActorKind.USER else "",
        "at": e.created_at,
        "from_label": STATE_LABELS[State(e.from_state)] if e.from_state else None,
        "to_label": STATE_LABELS[State(e.to_state)],
        "note": mask_text(e.note),
        "extras": extras,
        "files": files,
    }


def appeal_view(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id,
        "work_order_id": a.work_order_id,
        "category": a.category,
        "category_label": CATEGORY_LABELS.get(a.category, a.category),
        "reasons": mask_text(a.reasons),
        "state": a.state,
        "state_label": APPEAL_STATE_LABELS.get(a.state, a.state),
        "filed_by": a.filed_by,
        "filed_at": a.filed_at,
        "decide_due_at": a.decide_due_at,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
        "decision_note": mask_text(a.decision_note),
        "register_rater": a.register_rater,
    }


# --- settings pages: policies ---------------------------------------------------------------

POLICY_ROWS = [
    ("bad_levels", "差评等级"),
    ("verify_days", "核实期限"),
    ("rectify_days", "整改期限"),
    ("callback_days", "回访期限"),
    ("warn_days", "超期预警"),
    ("max_contact_attempts", "回访最多联系次数"),
    ("callback_by", "回访由谁开展"),
    ("spot_check_rate", "好评抽查回访比例"),
    ("evaluation_window_days", "评价期限"),
    ("default_rating", "默认评价"),
    ("followup_allowance", "追评次数"),
    ("appeal_days", "申诉期限"),
    ("appeal_decision_days", "申诉复核期限"),
    ("stages", "评价环节"),
    ("good_levels", "好评等级"),
    ("level_points", "各等级分值"),
    ("rectified_on_time", "按时整改口径"),
    ("ranking_metric", "排名依据"),
    ("min_sample", "参与排名最少评价数"),
    ("bottom_n", "末位名次数"),
    ("bottom_k", "连续末位期数"),
    ("public_min_cell", "公开最小样本数"),
    ("register_notice", "恶意评价人员异议告知"),
    ("monthly_report", "月度通报"),
    ("star_min_ratings", "服务之星最少评价数"),
    ("sms_invite_after_hours", "短信评价邀请"),
    ("retention_months", "评价在线保留期限"),
]
_RECTIFIED_TEXT = {"reported": "期限内报告整改完成", "closed": "整改期限内办结"}
_CALLBACK_BY_TEXT = {"unit": "责任单位", "office": "政务服务管理机构（独立回访）"}
_RANKING_TEXT = {"score": "平均分（好评率次之）", "good_rate": "好评率（平均分次之）"}
_WORKDAY_KEYS = {
    "verify_days",
    "rectify_days",
    "callback_days",
    "appeal_days",
    "appeal_decision_days",
}


def policy_value_text(key: str, value: Any) -> str:
    """A policy value as people read it."""
    if key == "good_levels" and value is None:
        return "差评以外的各等级"
    if key == "sms_invite_after_hours":
        return f"办结 {value} 小时后仍未评价的发送评价短信" if value else "不发送"
    if key == "retention_months":
        return f"{value} 个月，更早的评价可归档" if value else "全部保留"
    if value is None:
        return "—"
    if key in ("bad_levels", "good_levels"):
        return "、".join(LEVEL_LABELS.get(v, str(v)) for v in sorted(value, reverse=True))
    if key == "level_points":
        return " / ".join(f"{LEVEL_LABELS.get(5 - i, '')} {p} 分" for i, p in enumerate(value))
    if key == "rectified_on_time":
        return _RECTIFIED_TEXT.get(value, str(value))
    if key == "ranking_metric":
        return _RANKING_TEXT.get(value, str(value))
    if key == "callback_by":
        return _CALLBACK_BY_TEXT.get(value, str(value))
    if key == "monthly_report":
        return "每月首个工作日生成上月通报" if value else "不生成"
    if key in ("min_sample", "public_min_cell", "star_min_ratings"):
        return f"{value} 条"
    if key == "bottom_n":
        return f"后 {value} 名"
    if key == "bottom_k":
        return f"连续 {value} 期"
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


# --- the register of malicious raters -------------------------------------------------------


def register_view(item: dict[str, Any]) -> dict[str, Any]:
    """An entry of the register with its status and identifier kind as people read them."""
    return {
        **item,
        "status_label": RegisterStatus.label_of(item["status"], item["status"]),
        "kind_label": IdentityKind.label_of(item["kind"], item["kind"]),
    }
