"""The national exchange interface's record, read into this system's terms (pure: no I/O).

Business systems push ratings to their provincial platform as `{"params": {...}}` with the
interface's own field names (`projectNo`, `taskCode`, `satisfaction`, `pf`, ...), spelt in
any case by different integrators. `read_record` turns one such record into the native case
(when the record brings its case) and rating; every refusal is a `RecordRefused` with a
stable code and a Chinese reason, answered in the interface's terms by the route.

Two things differ between interfaces and are set per installation (`Settings`): the
direction of `satisfaction` (the national and most provincial interfaces: 1 = 非常不满意 …
5 = 非常满意; GB/T 39046 the other way round) and the `pf` channel codes (national: 1 PC …
7 SMS; one province uses 6 = SMS and 7 = the system's default rating).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from haochaping.cases.choices import ApplicantType, CaseStatus, ServiceMode
from haochaping.cases.schemas import Applicant, CaseUpsert
from haochaping.core.choices import ChoiceSet
from haochaping.core.timeutil import SHANGHAI
from haochaping.evaluations.choices import CHANNEL_PF, Channel
from haochaping.evaluations.schemas import EvaluationCreate, Rater

# The interface's name of each field, lower-cased (integrators write `projectNo`,
# `projectno`, `PROJECTNO`): the record's keys are matched without regard to case.
FIELDS = (
    "projectNo",  # 办件编号
    "taskCode",  # 实施编码（事项）
    "taskName",  # 事项名称
    "areaCode",  # 行政区划
    "deptCode",  # 部门编码
    "proStatus",  # 1 待受理 2 办理中 3 已办结
    "pf",  # 评价渠道 1–7
    "satisfaction",  # 评价等级
    "evalDetail",  # 评价原因代码，逗号分隔
    "writingEvaluation",  # 文字评价
    "assessNumber",  # 评价次数：1 首评，2 追评
    "serviceNumber",  # 服务次数
    "assessTime",  # 评价时间 yyyy-MM-dd HH:mm:ss（北京时间）
    "userProp",  # 1 自然人 2 法人 …
    "userName",
    "certKey",  # 证件号码
    "mobile",
    "winName",  # 窗口名称
    "winUserName",  # 窗口人员姓名
    "acceptTime",  # 受理时间（办件随评价带来时）
    "finishTime",  # 办结时间
)
_BY_LOWER = {name.lower(): name for name in FIELDS}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_REASON_SPLIT = re.compile(r"[,，;；、\s]+")

PRO_STATUS = {1: CaseStatus.RECEIVED, 2: CaseStatus.ACCEPTED, 3: CaseStatus.COMPLETED}
# `userProp`: 1 自然人, 2 法人; other codes of the interface are kept as 其他.
USER_PROP = {1: ApplicantType.PERSON, 2: ApplicantType.ENTERPRISE}
# Channels served at a counter (a QR code at the window, the pad, a hall terminal).
OFFLINE_CHANNELS = frozenset({Channel.QRCODE, Channel.PAD, Channel.TERMINAL})


class SatisfactionOrder(ChoiceSet):
    """Which end of the interface's 1–5 `satisfaction` is 非常满意."""

    ASCENDING = "ascending", "1 非常不满意 … 5 非常满意（全国及多数省级接口）"
    DESCENDING = "descending", "1 非常满意 … 5 非常不满意（GB/T 39046）"


NATIONAL_PF: dict[int, str] = {code: channel.value for channel, code in CHANNEL_PF.items()}


@dataclass(frozen=True)
class Dialect:
    """What an interface sets its own way: the direction of `satisfaction` and `pf` codes
    (a code missing from `pf` is refused: e.g. 7 where it means the system's default)."""

    satisfaction: SatisfactionOrder = SatisfactionOrder.ASCENDING
    pf: Mapping[int, str] = field(default_factory=lambda: dict(NATIONAL_PF))

    def level(self, satisfaction: int) -> int:
        """This system's level (5 = 非常满意) of the interface's `satisfaction`."""
        return (
            satisfaction if self.satisfaction == SatisfactionOrder.ASCENDING else 6 - satisfaction
        )

    def satisfaction_of(self, level: int) -> int:
        """The interface's `satisfaction` of this system's level (the inverse of `level`)."""
        return self.level(level)

    def pf_of(self, channel: str) -> int | None:
        """The interface's `pf` code of a channel (None: the interface has none for it)."""
        return next((code for code, ch in self.pf.items() if ch == channel), None)


class RecordRefused(Exception):
    """A record the interface refuses: `custom.code` "0" with the reason as `text`."""

    def __init__(self, text: str, code: str, field: str | None = None) -> None:
        super().__init__(text)
        self.text, self.code, self.field = text, code, field


@dataclass(frozen=True)
class NationalRecord:
    """One record read into native terms: the rating, the case it brings (when it names the
    unit and item), the evaluation count and the names of the window and its staff member."""

    case_no: str
    count: int
    evaluation: EvaluationCreate
    case: CaseUpsert | None
    window_name: str | None
    staff_name: str | None
    area_code: str | None


def fields_of(body: Any) -> dict[str, Any]:
    """The record's fields under the interface's spelling, from `{"params": {...}}` (the
    `params` key in any case too); unknown keys are ignored, as the interface does."""
    if not isinstance(body, dict):
        raise RecordRefused('请求体须为 JSON 对象 {"params": {...}}', "malformed_record")
    params = next(
        (v for k, v in body.items() if isinstance(k, str) and k.lower() == "params"), None
    )
    if not isinstance(params, dict):
        raise RecordRefused("请求体缺少 params 对象", "malformed_record", "params")
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = _BY_LOWER.get(key.lower()) if isinstance(key, str) else None
        if name is not None and value not in (None, ""):
            out[name] = value
    return out


def _text(fields: Mapping[str, Any], name: str, max_length: int = 200) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordRefused(f"{name} 须为文本", "invalid_field", name)
    text = str(value).strip()
    if len(text) > max_length:
        raise RecordRefused(f"{name} 超过 {max_length} 个字符", "invalid_field", name)
    return text or None


def _required(fields: Mapping[str, Any], name: str, label: str) -> str:
    text = _text(fields, name)
    if text is None:
        raise RecordRefused(f"缺少{label}（{name}）", "missing_field", name)
    return text


def _int(fields: Mapping[str, Any], name: str, label: str, allowed: range) -> int | None:
    """An integer field, given as a number or as digits in a string (integrators do both)."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise RecordRefused(
            f"{label}（{name}）须为 {allowed.start}–{allowed.stop - 1} 的整数",
            "invalid_field",
            name,
        )
    return value


def _time(fields: Mapping[str, Any], name: str, label: str) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, as the interface writes it."""
    text = _text(fields, name, 40)
    if text is None:
        return None
    try:
        if not _TIME.match(text):
            raise ValueError(text)
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:
        raise RecordRefused(
            f"{label}（{name}）须为“yyyy-MM-dd HH:mm:ss”格式的北京时间", "invalid_time", name
        ) from None


def _refusal(exc: ValidationError, prefix: str = "") -> RecordRefused:
    """A native model's refusal, in the interface's terms (the first problem, named)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    return RecordRefused(f"{prefix}{where}：{message}" if where else message, "invalid_field")


def read_record(body: Any, dialect: Dialect, now: datetime) -> NationalRecord:
    """One record of the national interface as this system's case and rating (`now`: the
    time of receipt, for a completed case that brings neither its times nor the rating's)."""
    fields = fields_of(body)
    case_no = _required(fields, "projectNo", "办件编号")
    satisfaction = _int(fields, "satisfaction", "评价等级", range(1, 6))
    if satisfaction is None:
        raise RecordRefused("缺少评价等级（satisfaction）", "missing_field", "satisfaction")
    pf = _int(fields, "pf", "评价渠道", range(0, 100))
    if pf is None:
        raise RecordRefused("缺少评价渠道（pf）", "missing_field", "pf")
    channel = dialect.pf.get(pf)
    if channel is None:
        raise RecordRefused(
            f"评价渠道代码 pf={pf} 不受理（本接口受理：{', '.join(map(str, sorted(dialect.pf)))}）",
            "unknown_channel",
            "pf",
        )
    count = _int(fields, "assessNumber", "评价次数", range(1, 3)) or 1
    given = _time(fields, "assessTime", "评价时间")
    reasons_text = _text(fields, "evalDetail", 400)
    reasons = [r for r in _REASON_SPLIT.split(reasons_text or "") if r]
    prop = _int(fields, "userProp", "评价人类型", range(0, 100))
    rater_type = USER_PROP.get(prop, ApplicantType.OTHER) if prop is not None else None
    try:
        person: dict[str, Any] = {
            "type": rater_type or ApplicantType.PERSON,
            "name": _text(fields, "userName", 100),
            "cert_no": _text(fields, "certKey", 40),
            "phone": _text(fields, "mobile", 20),
        }
        rater = Rater(**person) if any(person[k] for k in ("name", "cert_no", "phone")) else None
        evaluation = EvaluationCreate(
            case_no=case_no,
            channel=Channel(channel),
            level=dialect.level(satisfaction),
            reasons=reasons,
            comment=_text(fields, "writingEvaluation", 4000),
            rater=rater,
            evaluated_at=given,
        )
        case = _case_of(fields, case_no, Channel(channel), given or now, person)
    except ValidationError as exc:
        raise _refusal(exc) from None
    return NationalRecord(
        case_no=case_no,
        count=count,
        evaluation=evaluation,
        case=case,
        window_name=_text(fields, "winName", 200),
        staff_name=_text(fields, "winUserName", 100),
        area_code=_text(fields, "areaCode", 20),
    )


def _case_of(
    fields: Mapping[str, Any],
    case_no: str,
    channel: Channel,
    given: datetime,
    person: dict[str, Any],
) -> CaseUpsert | None:
    """The case a record brings: when it names the unit (`deptCode`) and the item
    (`taskCode`). A completed case without its times is taken as accepted and completed at
    the rating's time (the interface need not send them)."""
    dept, task = _text(fields, "deptCode", 50), _text(fields, "taskCode", 50)
    if dept is None or task is None:
        return None
    status = PRO_STATUS.get(_int(fields, "proStatus", "办件状态", range(1, 4)) or 3)
    accepted = _time(fields, "acceptTime", "受理时间")
    completed = _time(fields, "finishTime", "办结时间")
    if status in (CaseStatus.ACCEPTED, CaseStatus.COMPLETED):
        accepted = accepted or completed or given
    if status == CaseStatus.COMPLETED:
        completed = completed or given
    return CaseUpsert(
        case_no=case_no,
        item_code=task,
        org_code=dept,
        mode=ServiceMode.OFFLINE if channel in OFFLINE_CHANNELS else ServiceMode.ONLINE,
        applicant=Applicant(**person),
        status=status,  # type: ignore[arg-type]
        accepted_at=accepted,
        completed_at=completed,
    )


def answer(*, ok: bool, text: str, **extra: Any) -> dict[str, Any]:
    """The interface's answer: transport status "200", `custom.code` "1" stored, "0" refused
    (with the reason as `text`); this system adds the stable `error` code and the ids."""
    return {
        "status": {"code": "200"},
        "custom": {"code": "1" if ok else "0", "text": text, **extra},
    }
