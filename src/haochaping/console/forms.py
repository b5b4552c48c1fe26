"""The console's filter forms: query strings parsed leniently, with Chinese messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, QueryParams

from haochaping.core.audit import AuditAction
from haochaping.core.handlers import validation_details
from haochaping.core.timeutil import SHANGHAI
from haochaping.evaluations.choices import STAGE_LABELS, Channel, Level, Reached
from haochaping.integrity.choices import IdentityKind

TEXT_MAX = 50


def _text(params: QueryParams, name: str) -> str:
    return (params.get(name) or "").strip()[:TEXT_MAX]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_start(day: date) -> datetime:
    """Midnight in Asia/Shanghai of a calendar day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


@dataclass
class DateRange:
    """A list's date filters (开始日期, 结束日期, both inclusive, days in Shanghai)."""

    since: date | None = None
    until: date | None = None

    def parse_dates(self, params: QueryParams, errors: list[str]) -> None:
        """Read `since` and `until`; bad values are dropped and reported in `errors`."""
        for name, label in (("since", "开始日期"), ("until", "结束日期")):
            raw = (params.get(name) or "").strip()
            if raw:
                day = _day(raw)
                if day is None:
                    errors.append(f"{label}格式应为 年-月-日，已忽略")
                setattr(self, name, day)
        if self.since and self.until and self.until < self.since:
            errors.append("结束日期早于开始日期，已忽略日期条件")
            self.since = self.until = None

    @property
    def since_at(self) -> datetime | None:
        return day_start(self.since) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        # The end date is inclusive: up to the next midnight in Shanghai.
        return day_start(self.until + timedelta(days=1)) if self.until else None

    def date_query(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass
class EvaluationFilters(DateRange):
    """What the evaluation list is filtered by; bad values are dropped and reported."""

    level: int | None = None
    channel: str | None = None
    org_code: str = ""
    item_code: str = ""
    case_no: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> EvaluationFilters:
        """Parse the list's query string; never fails, collects messages instead."""
        f = cls(
            org_code=_text(params, "org_code"),
            item_code=_text(params, "item_code"),
            case_no=_text(params, "case_no"),
            cursor=params.get("cursor") or None,
        )
        level = (params.get("level") or "").strip()
        if level:
            if level in {str(v) for v in Level.values()}:
                f.level = int(level)
            else:
                f.errors.append("评价等级取值无效，已忽略")
        channel = (params.get("channel") or "").strip()
        if channel:
            if channel in {c.value for c in Channel}:
                f.channel = channel
            else:
                f.errors.append("评价渠道取值无效，已忽略")
        f.parse_dates(params, f.errors)
        return f

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out), with changes applied."""
        values: dict[str, Any] = {
            "level": self.level,
            "channel": self.channel,
            "org_code": self.org_code,
            "item_code": self.item_code,
            "case_no": self.case_no,
            **self.date_query(),
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.query())


# --- the work-order queue ------------------------------------------------------------------

OVERDUE_CHOICES = {"yes": "仅看已超期", "no": "仅看未超期"}


@dataclass
class WorkOrderFilters:
    """What a work-order queue is filtered by; bad values are dropped and reported."""

    state: str | None = None
    overdue: str | None = None  # "yes" | "no"
    due_before: date | None = None
    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams, states: set[str]) -> WorkOrderFilters:
        """Parse the queue's query string; never fails, collects messages instead."""
        f = cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)
        state = (params.get("state") or "").strip()
        if state:
            if state in states:
                f.state = state
            else:
                f.errors.append("工单状态取值无效，已忽略")
        overdue = (params.get("overdue") or "").strip()
        if overdue:
            if overdue in OVERDUE_CHOICES:
                f.overdue = overdue
            else:
                f.errors.append("超期条件取值无效，已忽略")
        raw = (params.get("due_before") or "").strip()
        if raw:
            f.due_before = _day(raw)
            if f.due_before is None:
                f.errors.append("到期日期格式应为 年-月-日，已忽略")
        return f

    @property
    def overdue_flag(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.overdue or "")

    @property
    def due_before_at(self) -> datetime | None:
        # "Due on or before the day": deadlines end before the next midnight in Shanghai.
        return day_start(self.due_before + timedelta(days=1)) if self.due_before else None

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "state": self.state,
            "overdue": self.overdue,
            "org_code": self.org_code,
            "due_before": self.due_before.isoformat() if self.due_before else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.query())


# --- the review queue of suspected fake ratings (疑似刷评复核) ---------------------------------

ALL = "all"


@dataclass
class FlagFilters:
    """What the review queue is filtered by. Unlike the lists above, a value the form could not
    have sent is refused (the page answers 4xx and says why), not silently dropped."""

    state: str = "open"  # a flag state, or ALL
    check: str = ""
    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams, states: set[str], checks: set[str]) -> FlagFilters:
        """Parse the queue's query string; never fails, collects messages instead."""
        f = cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)
        state = (params.get("state") or "").strip()
        if state:
            if state in states or state == ALL:
                f.state = state
            else:
                f.errors.append("复核状态取值无效")
        check = (params.get("check") or "").strip()
        if check:
            if check in checks:
                f.check = check
            else:
                f.errors.append("检测类型取值无效")
        return f

    @property
    def state_value(self) -> str | None:
        return None if self.state == ALL else self.state

    @property
    def newest_first(self) -> bool:
        """Open flags are a work queue (oldest first); reviewed ones a record (newest first)."""
        return self.state != "open"

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "state": self.state,
            "check": self.check,
            "org_code": self.org_code,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.check or self.org_code or self.state != "open")


# --- the appeals ------------------------------------------------------------------------------


@dataclass
class AppealFilters:
    """The appeal list's tab (a state, or all) and unit. An unknown state shows the pending
    tab, as the tabs always did; the export refuses it (`errors`)."""

    state: str = "pending"
    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams, states: set[str]) -> AppealFilters:
        f = cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)
        state = (params.get("state") or "pending").strip()
        if state in states or state == ALL:
            f.state = state
        else:
            f.errors.append("申诉状态取值无效")
        return f

    @property
    def state_value(self) -> str | None:
        return None if self.state == ALL else self.state

    @property
    def newest_first(self) -> bool:
        """Pending appeals are a work queue (oldest first); decided ones a record."""
        return self.state != "pending"

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {"state": self.state, "org_code": self.org_code, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


# --- posted forms: the values to show again, the body for the service's model ---------------

NOTE_MAX = 5000
FIELD_LABELS = {
    "action": "操作",
    "version": "工单版本",
    "note": "情况说明",
    "lead_org_code": "牵头单位",
    "co_org_codes": "协办单位",
    "method": "回访方式",
    "reached": "是否联系上评价人",
    "verdict": "评价人意见",
    "rectify_days": "整改期限",
    "attachment_ids": "附件",
    "category": "申诉类别",
    "reasons": "申诉理由",
    "decision": "复核决定",
    "register_rater": "列入恶意评价人员信息库",
    "register_days": "列入期限",
    "evaluation_id": "评价",
}
CHOICE_FIELDS = {"method", "reached", "verdict", "lead_org_code", "category", "decision", "action"}


def _field_name(loc: tuple[Any, ...], labels: dict[str, str]) -> str | None:
    for part in reversed([str(p) for p in loc]):
        if part in labels:
            return part
    return None


def validation_problem(exc: ValidationError, labels: dict[str, str] | None = None) -> str:
    """The refusals of a posted form as sentences naming the fields people see."""
    labels = labels or FIELD_LABELS
    messages: list[str] = []
    for err, detail in zip(exc.errors(), validation_details(exc.errors()), strict=True):
        name = _field_name(err.get("loc", ()), labels)
        label = labels.get(name or "", "")
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        if label and kind in ("missing", "string_too_short", "too_short"):
            verb = "请选择" if name in CHOICE_FIELDS else "请填写"
            text = f"{verb}{label}"
        elif label and kind == "greater_than_equal":
            text = f"{label}不能小于 {ctx.get('ge')}"
        elif label and kind == "less_than_equal":
            text = f"{label}不能大于 {ctx.get('le')}"
        elif label:
            text = f"{label}：{detail['message']}"
        else:
            text = detail["message"]
        if text not in messages:
            messages.append(text)
    return "；".join(messages) or "填写的内容不符合要求"


def _one(form: FormData, name: str, max_len: int = NOTE_MAX) -> str:
    value = form.get(name)
    # Browsers send textarea line breaks as CRLF but count them as one character.
    return value.replace("\r\n", "\n")[: max_len + 1] if isinstance(value, str) else ""


def _ints(form: FormData, name: str, limit: int = 20) -> list[Any]:
    out: list[Any] = []
    for value in form.getlist(name)[: limit + 1]:
        if isinstance(value, str) and value.strip():
            out.append(_int_or_raw(value))
    return out


def _int_or_raw(value: str) -> Any:
    """An integer when the text is one; otherwise the text, for the model to refuse."""
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() and len(text) < 19 else text


def _optional_int(form: FormData, name: str) -> Any:
    value = _one(form, name, 30).strip()
    return _int_or_raw(value) if value else None


@dataclass
class ActionForm:
    """An action posted from the work-order page: kept for a re-render, turned into ActionIn."""

    action: str
    values: dict[str, Any]
    body: dict[str, Any]
    version: int | None

    @classmethod
    def from_form(cls, form: FormData) -> ActionForm:
        action = _one(form, "action", 40).strip()
        version = _optional_int(form, "version")
        values: dict[str, Any] = {
            "note": _one(form, "note"),
            "lead_org_code": _one(form, "lead_org_code", 60).strip(),
            "lead_org_other": _one(form, "lead_org_other", 60).strip(),
            "co_org_codes": [
                v.strip() for v in form.getlist("co_org_codes") if isinstance(v, str) and v.strip()
            ][:11],
            "method": _one(form, "method", 20).strip(),
            "reached": _one(form, "reached", 5).strip(),
            "verdict": _one(form, "verdict", 20).strip(),
            "rectify_days": _one(form, "rectify_days", 10).strip(),
            "attachment_ids": _ints(form, "attachment_ids"),
        }
        body: dict[str, Any] = {
            "action": action,
            "version": version,
            "attachment_ids": values["attachment_ids"],
        }
        note = values["note"].strip()
        if action == "callback":
            body["method"] = values["method"] or None
            reached = {"yes": True, "no": False}.get(values["reached"])
            if reached is not None:
                body["reached"] = reached
            if values["verdict"]:
                body["verdict"] = values["verdict"]
            body["note"] = note or None
        else:
            body["note"] = note
        if action == "transfer":
            # A unit may name an organisation outside its own subtree by code.
            body["lead_org_code"] = values["lead_org_other"] or values["lead_org_code"]
            body["co_org_codes"] = values["co_org_codes"]
        if action == "redispatch":
            if values["lead_org_code"]:
                body["lead_org_code"] = values["lead_org_code"]
            if values["rectify_days"]:
                body["rectify_days"] = _int_or_raw(values["rectify_days"])
        return cls(
            action=action,
            values=values,
            body=body,
            version=version if isinstance(version, int) else None,
        )


@dataclass
class AppealForm:
    """A unit's appeal posted from the work-order page."""

    values: dict[str, Any]
    version: int | None

    @classmethod
    def from_form(cls, form: FormData) -> AppealForm:
        version = _optional_int(form, "version")
        return cls(
            values={
                "category": _one(form, "category", 30).strip(),
                "reasons": _one(form, "reasons").strip(),
                "attachment_ids": _ints(form, "attachment_ids"),
            },
            version=version if isinstance(version, int) else None,
        )

    def body(self, evaluation_id: int) -> dict[str, Any]:
        return {
            "evaluation_id": evaluation_id,
            "category": self.values["category"] or None,
            "reasons": self.values["reasons"],
            "attachment_ids": self.values["attachment_ids"],
        }


@dataclass
class DecisionForm:
    """The office's decision on an appeal."""

    values: dict[str, Any]

    @classmethod
    def from_form(cls, form: FormData) -> DecisionForm:
        return cls(
            values={
                "decision": _one(form, "decision", 20).strip(),
                "note": _one(form, "note").strip(),
                "register_rater": form.get("register_rater") in ("on", "yes", "1"),
                "register_days": _one(form, "register_days", 10).strip(),
            }
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "decision": self.values["decision"] or None,
            "note": self.values["note"],
            "register_rater": self.values["register_rater"],
        }
        if self.values["register_days"]:
            body["register_days"] = _int_or_raw(self.values["register_days"])
        return body


@dataclass
class ReviewForm:
    """A reviewer's decision on a flag: clear it or invalidate the rating, with a note."""

    values: dict[str, Any]

    @classmethod
    def from_form(cls, form: FormData) -> ReviewForm:
        return cls(
            values={"decision": _one(form, "decision", 20).strip(), "note": _one(form, "note")}
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"note": self.values["note"].strip() or None}
        if self.values["decision"]:  # left out when empty: "请选择复核决定"
            body["decision"] = self.values["decision"]
        return body


@dataclass
class StaffIdentityForm:
    """A staff member's identity as typed: staff number, ID number and/or phone."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: FormData) -> StaffIdentityForm:
        return cls(
            values={name: _one(form, name, 60).strip() for name in ("staff_no", "cert_no", "phone")}
        )

    def body(self) -> dict[str, Any]:
        return {name: value for name, value in self.values.items() if value}


# --- the policy form ------------------------------------------------------------------------

POLICY_INT_FIELDS = {
    "verify_days": "核实期限（工作日）",
    "rectify_days": "整改期限（工作日）",
    "callback_days": "回访期限（工作日）",
    "warn_days": "提前预警（工作日）",
    "max_contact_attempts": "回访最多联系次数",
    "evaluation_window_days": "评价期限（办结后天数）",
    "followup_allowance": "追评次数",
    "appeal_days": "申诉期限（工作日）",
    "appeal_decision_days": "申诉复核期限（工作日）",
    "star_min_ratings": "服务之星最少评价数（每月）",
    "sms_invite_after_hours": "短信评价邀请（办结后未评价的小时数，0 为不发送）",
    "retention_months": "评价在线保留期限（月，至少 12）",
}
POLICY_LABELS = {
    **POLICY_INT_FIELDS,
    "bad_levels": "差评等级",
    "spot_check_rate": "好评抽查回访比例（%）",
    "default_rating": "默认评价",
    "enabled": "默认评价",
    "after_days": "默认评价时限（天）",
    "level": "默认评价等级",
    "region_code": "行政区划",
    "effective_from": "生效日期",
    "note": "说明",
    "values": "政策参数",
    "stages": "评价环节",
    "code": "环节代码",
    "label": "环节名称",
    "reached": "可评价时点",
    "callback_by": "回访由谁开展",
    "register_notice": "恶意评价人员异议告知",
    "monthly_report": "月度通报",
}
# The monthly report (月度通报): on or off, empty inherits.
MONTHLY_REPORT_CHOICES = {"on": "每月首个工作日生成上月通报", "off": "不生成"}
# A stage as typed, one a line: `代码 名称`, or a known stage by its code or Chinese label
# (名称 fixed); a trailing `办结后` rates it only once the case is completed.
STAGE_BY_LABEL = {label: code for code, label in STAGE_LABELS.items()}
AFTER_COMPLETION = "办结后"
MAX_STAGE_LINES = 20
_STAGE_CODE = re.compile(r"[a-z0-9_]{1,30}")


def parse_stages(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """The stage list typed into the policy form, and what is wrong with it."""
    stages: list[dict[str, str]] = []
    errors: list[str] = []
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_STAGE_LINES:
        return [], [f"评价环节最多 {MAX_STAGE_LINES} 个"]
    for words in lines:
        stage: dict[str, str] = {}
        if len(words) > 1 and words[-1] == AFTER_COMPLETION:
            stage["reached"] = Reached.COMPLETED.value
            words = words[:-1]
        code = STAGE_BY_LABEL.get(words[0], words[0])
        stage["code"] = code
        if not _STAGE_CODE.fullmatch(code):
            errors.append(
                f"评价环节代码“{code}”须为 1 到 30 位小写字母、数字或下划线"
                "（整体评价、受理、办结可直接填写名称）"
            )
        elif code not in STAGE_LABELS:
            if len(words) < 2:
                errors.append(f"评价环节 {code} 须在代码后填写名称")
            stage["label"] = " ".join(words[1:])
        stages.append(stage)
    return stages, errors


def stages_text(stages: list[dict[str, Any]] | None) -> str:
    """A stage list as the policy form shows it (the inverse of `parse_stages`)."""
    lines = []
    for s in stages or []:
        words = [s["code"]] if s["code"] in STAGE_LABELS else [s["code"], s.get("label", "")]
        if s.get("reached") == Reached.COMPLETED.value and s["code"] != "complete":
            words.append(AFTER_COMPLETION)
        lines.append(" ".join(words))
    return "\n".join(lines)


# Who records the callback (policy `callback_by`): the unit rated, or the office on its own.
CALLBACK_BY_CHOICES = {
    "unit": "责任单位回访",
    "office": "政务服务管理机构独立回访（责任单位不能记录回访）",
}

BAD_LEVEL_CHOICES = {
    "1": "仅“非常不满意”",
    "1,2": "“非常不满意”和“不满意”",
    "1,2,3": "“非常不满意”“不满意”和“基本满意”",
}


@dataclass
class PolicyForm:
    """A new policy version as typed: empty fields are inherited from above."""

    values: dict[str, str]
    errors: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, region_code: str = "") -> PolicyForm:
        return cls(values={"region_code": region_code})

    @classmethod
    def from_form(cls, form: FormData) -> PolicyForm:
        names = [
            *POLICY_INT_FIELDS,
            "bad_levels",
            "spot_check_rate",
            "default_enabled",
            "default_after_days",
            "default_level",
            "region_code",
            "effective_from",
            "callback_by",
            "monthly_report",
        ]
        f = cls(values={n: _one(form, n, 30).strip() for n in names})
        f.values["note"] = _one(form, "note", 600).strip()
        f.values["stages"] = _one(form, "stages", 2000).strip()
        f.values["register_notice"] = _one(form, "register_notice", 600).strip()
        patch: dict[str, Any] = {}
        if f.values["stages"]:
            stages, problems = parse_stages(f.values["stages"])
            f.errors.extend(problems)
            patch["stages"] = stages
        if f.values["register_notice"]:
            patch["register_notice"] = f.values["register_notice"]
        for name, label in POLICY_INT_FIELDS.items():
            raw = f.values[name]
            if raw:
                value = _int_or_raw(raw)
                if isinstance(value, int):
                    patch[name] = value
                else:
                    f.errors.append(f"{label}须为整数")
        if f.values["bad_levels"]:
            if f.values["bad_levels"] in BAD_LEVEL_CHOICES:
                patch["bad_levels"] = [int(v) for v in f.values["bad_levels"].split(",")]
            else:
                f.errors.append("差评等级取值无效")
        rate = f.values["spot_check_rate"]
        if rate:
            try:
                percent = float(rate)
            except ValueError:
                percent = -1.0
            if not 0 <= percent <= 100:
                f.errors.append("好评抽查回访比例须为 0 到 100 之间的数字")
            else:
                patch["spot_check_rate"] = round(percent / 100, 6)
        enabled = f.values["default_enabled"]
        if enabled in ("on", "off"):
            rule: dict[str, Any] = {"enabled": enabled == "on"}
            for key, name, label in (
                ("after_days", "default_after_days", "默认评价时限（天）"),
                ("level", "default_level", "默认评价等级"),
            ):
                if f.values[name]:
                    value = _int_or_raw(f.values[name])
                    if isinstance(value, int):
                        rule[key] = value
                    else:
                        f.errors.append(f"{label}须为整数")
            patch["default_rating"] = rule
        elif enabled:
            f.errors.append("默认评价取值无效")
        if f.values["monthly_report"] in MONTHLY_REPORT_CHOICES:
            patch["monthly_report"] = f.values["monthly_report"] == "on"
        elif f.values["monthly_report"]:
            f.errors.append("月度通报取值无效")
        if f.values["callback_by"] in CALLBACK_BY_CHOICES:
            patch["callback_by"] = f.values["callback_by"]
        elif f.values["callback_by"]:
            f.errors.append("回访由谁开展取值无效")
        effective_from = None
        if f.values["effective_from"]:
            effective_from = _day(f.values["effective_from"])
            if effective_from is None:
                f.errors.append("生效日期格式应为 年-月-日")
        if not f.values["region_code"]:
            f.errors.append("请选择行政区划")
        if not patch and not f.errors:
            f.errors.append("请至少填写一项本级设定的参数（留空的参数沿用上级）")
        f.body = {
            "region_code": f.values["region_code"],
            "values": patch,
            "effective_from": effective_from,
            "note": f.values["note"] or None,
        }
        return f


@dataclass
class HeldFilters:
    """What the queue of held ratings is filtered by (the unit, with its subtree)."""

    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> HeldFilters:
        return cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {"org_code": self.org_code, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.org_code)


@dataclass
class HeldReviewForm:
    """A reviewer's decision on a held rating: it counts (valid) or not (invalid), with a
    note either way."""

    values: dict[str, Any]

    @classmethod
    def from_form(cls, form: FormData) -> HeldReviewForm:
        return cls(
            values={"standing": _one(form, "standing", 20).strip(), "note": _one(form, "note")}
        )

    def missing(self) -> str | None:
        """What a person must still give, said as they would read it (None: all given)."""
        if not self.values["standing"]:
            return "请选择复核决定"
        if not self.values["note"].strip():
            return "请填写复核意见（核实经过和依据）"
        return None

    def body(self) -> dict[str, Any]:
        return {"standing": self.values["standing"], "note": self.values["note"]}


# --- the audit trail -------------------------------------------------------------------------


@dataclass
class AuditFilters(DateRange):
    """What the audit trail is filtered by: the act, who did it, and the days (a refused
    value is reported and the page shows no rows)."""

    action: str = ""
    actor: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> AuditFilters:
        f = cls(actor=_text(params, "actor"), cursor=params.get("cursor") or None)
        action = (params.get("action") or "").strip()
        if action:
            if action in AuditAction.values():
                f.action = action
            else:
                f.errors.append("操作类型取值无效")
        f.parse_dates(params, f.errors)
        return f

    @property
    def action_value(self) -> AuditAction | None:
        return AuditAction(self.action) if self.action else None

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "action": self.action,
            "actor": self.actor,
            **self.date_query(),
            **changes,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.query())


# --- spot-check callbacks (抽查回访) -------------------------------------------------------------


@dataclass
class SpotCheckForm:
    """A spot-check call posted from the queue: kept for a re-render, turned into the JSON
    route's `SpotCheckCallbackIn`."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: FormData) -> SpotCheckForm:
        return cls(
            values={
                "method": _one(form, "method", 20).strip(),
                "reached": _one(form, "reached", 5).strip(),
                "verdict": _one(form, "verdict", 20).strip(),
                "note": _one(form, "note", 2000),
            }
        )

    def missing(self) -> str | None:
        """What a person must still give, said as they would read it (None: all given)."""
        if not self.values["method"]:
            return "请选择回访方式"
        if self.values["reached"] not in ("yes", "no"):
            return "请选择是否联系上评价人"
        if self.values["reached"] == "yes" and not self.values["verdict"]:
            return "联系上评价人时，请选择评价人的意见"
        if self.values["reached"] == "no" and self.values["verdict"]:
            return "未联系上评价人时不能选择评价人的意见"
        return None

    def body(self) -> dict[str, Any]:
        note = self.values["note"].strip()
        return {
            "method": self.values["method"],
            "reached": self.values["reached"] == "yes",
            "verdict": self.values["verdict"] or None,
            "note": note or None,
        }


@dataclass
class SpotCheckFilters:
    """The spot-check queue's tab (pending or done), unit (with its subtree) and page."""

    state: str = "pending"
    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> SpotCheckFilters:
        f = cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)
        state = (params.get("state") or "pending").strip()
        if state in ("pending", "done"):
            f.state = state
        else:
            f.errors.append("回访状态取值无效")
        return f

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {"state": self.state, "org_code": self.org_code, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return self.state != "pending" or bool(self.org_code)


# --- the register of malicious raters -------------------------------------------------------

REGISTER_STATE_LABELS = {"active": "有效", "ended": "已移出或到期", "all": "全部"}
REGISTER_KIND_LABELS = {k.value: k.label for k in (IdentityKind.PHONE, IdentityKind.CERT)}
REGISTER_LABELS = {
    "kind": "号码类型",
    "identifier": "号码",
    "evidence": "列入依据",
    "days": "期限（天）",
    "org_code": "涉及单位编码",
    "note": "移出理由",
}


@dataclass
class RegisterFilters:
    """What the register is filtered by: in force or ended, the unit (with its subtree)."""

    state: str = "active"
    org_code: str = ""
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> RegisterFilters:
        f = cls(org_code=_text(params, "org_code"), cursor=params.get("cursor") or None)
        state = (params.get("state") or "active").strip()
        if state in REGISTER_STATE_LABELS:
            f.state = state
        else:
            f.errors.append("状态取值无效")
        return f

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {"state": self.state, "org_code": self.org_code, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.org_code) or self.state != "active"


@dataclass
class RegisterForm:
    """A form of the register page (search, a new entry, a revocation) as typed; the number
    typed is kept only to re-show it to the person who typed it, never stored."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: FormData, names: tuple[str, ...]) -> RegisterForm:
        return cls(
            values={
                n: (_one(form, n) if n in ("evidence", "note") else _one(form, n, 60).strip())
                for n in names
            }
        )

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.values.items() if v != ""}
        if "days" in out:
            out["days"] = _int_or_raw(out["days"])
        return out
