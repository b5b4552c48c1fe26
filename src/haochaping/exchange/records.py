"""The exchange format of reporting up (上报, issue 14): a child's ratings and work-order
outcomes as records with the national interface's field names and codes (`national.py`),
plus the few fields a federation needs that the interface has no name for (pure: no I/O).

A batch is `{"formatVersion": "hcp-exchange/1", "records": [...]}`. An evaluation record
carries the national data items (`projectNo`, `taskCode`, `taskName`, `areaCode`,
`deptCode`, `pf`, `satisfaction` in the parent's direction, `evalDetail`,
`writingEvaluation`, `assessNumber`, `assessTime`, `userProp`, `userName`, `certKey`,
`mobile`, `winName`, `winUserName`) and: `sourceId` (the rating's id at the child: the
idempotency key with the child's API client), `stage`, `channel` (this system's channel
value: the free channels and the default rating have no `pf`), `deptName`, `winCode`,
`winUserCode` (the staff number), `tagsetVersion`, `anonymous`, `isPublic`, `isDefault`.

The reconciliation digest is SM3 over the day's records in `sourceId` order, one line each
of the fields both sides hold unchanged (`digest_line`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from haochaping.core.timeutil import SHANGHAI
from haochaping.evaluations.choices import DEFAULT_STAGE, STORED_CHANNELS
from haochaping.exchange.national import TIME_FORMAT, Dialect, RecordRefused

FORMAT_VERSION = "hcp-exchange/1"
MAX_BATCH = 5000


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a local (Beijing) day starts and ends at."""
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def assess_time(value: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, as the interface writes it."""
    return value.astimezone(SHANGHAI).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class RatingRow:
    """One rating in this system's terms, both ways: what the child reads to report it
    (decrypted personal data included), and a record read and checked on the parent (`id`
    is then the child's id, the idempotency key; `region_code` may be missing)."""

    id: int
    case_no: str | None
    stage: str
    eval_count: int
    channel: str
    level: int
    reasons: list[str]
    comment: str | None
    tagset_version: str
    region_code: str | None
    rater_type: str
    rater_name: str | None
    rater_cert_no: str | None
    rater_phone: str | None
    anonymous: bool
    is_public: bool
    is_default: bool
    evaluated_at: datetime
    org_code: str
    org_name: str
    item_code: str | None
    item_name: str | None
    window_code: str | None
    window_name: str | None
    staff_no: str | None
    staff_name: str | None


USER_PROP_OF = {"person": 1, "enterprise": 2}
RATER_TYPE_OF = {1: "person", 2: "enterprise"}


def encode_rating(row: RatingRow, dialect: Dialect) -> dict[str, Any]:
    """One rating as an exchange record (fields without a value are left out)."""
    record: dict[str, Any] = {
        "sourceId": row.id,
        "projectNo": row.case_no,
        "stage": row.stage,
        "assessNumber": row.eval_count,
        "channel": row.channel,
        "pf": dialect.pf_of(row.channel),
        "satisfaction": dialect.satisfaction_of(row.level),
        "evalDetail": ",".join(row.reasons) or None,
        "writingEvaluation": row.comment,
        "assessTime": assess_time(row.evaluated_at),
        "areaCode": row.region_code,
        "deptCode": row.org_code,
        "deptName": row.org_name,
        "taskCode": row.item_code,
        "taskName": row.item_name,
        "winCode": row.window_code,
        "winName": row.window_name,
        "winUserCode": row.staff_no,
        "winUserName": row.staff_name,
        "userProp": USER_PROP_OF.get(row.rater_type, 9),
        "userName": row.rater_name,
        "certKey": row.rater_cert_no,
        "mobile": row.rater_phone,
        "tagsetVersion": row.tagset_version,
        "anonymous": row.anonymous,
        "isPublic": row.is_public,
        "isDefault": row.is_default,
    }
    return {k: v for k, v in record.items() if v is not None}


def _text(r: Mapping[str, Any], name: str, max_length: int, *, required: bool = False) -> Any:
    value = r.get(name)
    if value is None or value == "":
        if required:
            raise RecordRefused(f"缺少字段 {name}", "missing_field", name)
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise RecordRefused(f"{name} 须为不超过 {max_length} 个字符的文本", "invalid_field", name)
    return value


def _int(r: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = r.get(name, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is None:
        raise RecordRefused(f"缺少字段 {name}", "missing_field", name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RecordRefused(f"{name} 须为 {low}–{high} 的整数", "invalid_field", name)
    return value


def _flag(r: Mapping[str, Any], name: str, default: bool) -> bool:
    value = r.get(name, default)
    if not isinstance(value, bool):
        raise RecordRefused(f"{name} 须为 true 或 false", "invalid_field", name)
    return value


_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})")


def _beijing(text: str, name: str) -> datetime:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, as UTC (strptime costs five times as much)."""
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        local = datetime(y, mo, d, h, mi, sec, tzinfo=SHANGHAI)
    except ValueError:
        raise RecordRefused(
            f"{name} 须为“yyyy-MM-dd HH:mm:ss”格式的北京时间", "invalid_time", name
        ) from None
    return local.astimezone(UTC)


def read_rating(record: Any, dialect: Dialect) -> RatingRow:
    """An exchange record as a rating, or `RecordRefused` with a stable code."""
    if not isinstance(record, dict):
        raise RecordRefused("记录须为 JSON 对象", "malformed_record")
    ref = _int(record, "sourceId", 1, 2**62)
    channel = _text(record, "channel", 20)
    if channel is None:
        pf = _int(record, "pf", 0, 99)
        channel = dialect.pf.get(pf)
        if channel is None:
            raise RecordRefused(f"评价渠道代码 pf={pf} 不受理", "unknown_channel", "pf")
    if channel not in STORED_CHANNELS:
        raise RecordRefused(f"未知评价渠道 {channel}", "unknown_channel", "channel")
    level = dialect.level(_int(record, "satisfaction", 1, 5))
    evaluated_at = _beijing(_text(record, "assessTime", 19, required=True), "assessTime")
    case_no = _text(record, "projectNo", 50)
    item_code = _text(record, "taskCode", 64)
    if case_no is not None and item_code is None:
        raise RecordRefused("带办件编号的评价须有事项编码（taskCode）", "missing_field", "taskCode")
    detail = _text(record, "evalDetail", 400)
    reasons = [r for r in (detail or "").split(",") if r]
    win_code = _text(record, "winCode", 50)
    staff_no = _text(record, "winUserCode", 50)
    return RatingRow(
        id=ref,
        case_no=case_no,
        stage=_text(record, "stage", 30) or DEFAULT_STAGE,
        eval_count=_int(record, "assessNumber", 1, 2, default=1),
        channel=channel,
        level=level,
        reasons=reasons,
        comment=_text(record, "writingEvaluation", 4000),
        tagset_version=_text(record, "tagsetVersion", 32) or "national",
        region_code=_text(record, "areaCode", 12),
        rater_type=RATER_TYPE_OF.get(_int(record, "userProp", 0, 99, default=1), "other"),
        rater_name=_text(record, "userName", 200),
        rater_cert_no=_text(record, "certKey", 40),
        rater_phone=_text(record, "mobile", 20),
        anonymous=_flag(record, "anonymous", False),
        is_public=_flag(record, "isPublic", True),
        is_default=_flag(record, "isDefault", False),
        evaluated_at=evaluated_at,
        org_code=_text(record, "deptCode", 50, required=True),
        org_name=_text(record, "deptName", 200) or _text(record, "deptCode", 50),
        item_code=item_code,
        item_name=_text(record, "taskName", 200) or item_code,
        window_code=win_code,
        window_name=(_text(record, "winName", 200) or win_code) if win_code else None,
        staff_no=staff_no,
        staff_name=(_text(record, "winUserName", 100) or staff_no) if staff_no else None,
    )


@dataclass(frozen=True)
class WorkOrderRow:
    """What the child reports of a work order: its current state and outcome."""

    id: int
    event_id: int
    evaluation_id: int
    case_no: str | None
    stage: str
    eval_count: int
    state: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    # What the bad-review funnel counts (absent in an older child's records: the order then
    # counts as opened only).
    verify_due_at: datetime | None = None
    verified_at: datetime | None = None
    rectify_due_at: datetime | None = None
    rectified_at: datetime | None = None
    callback_due_at: datetime | None = None
    overdue_at: datetime | None = None
    supervised: bool = False
    called_back: bool = False
    callback_satisfied: bool = False


# The funnel's times: exchange field -> WorkOrderRow attribute (`exchange_work_order` column).
FUNNEL_TIMES = {
    "verifyDue": "verify_due_at",
    "verifyTime": "verified_at",
    "rectifyDue": "rectify_due_at",
    "rectifyTime": "rectified_at",
    "callbackDue": "callback_due_at",
    "overdueTime": "overdue_at",
}
FUNNEL_FLAGS = {
    "supervised": "supervised",
    "calledBack": "called_back",
    "callbackSatisfied": "callback_satisfied",
}


def encode_work_order(row: WorkOrderRow) -> dict[str, Any]:
    """A work order's outcome as an exchange record."""
    record: dict[str, Any] = {
        "sourceId": row.id,
        "eventId": row.event_id,
        "evalSourceId": row.evaluation_id,
        "projectNo": row.case_no,
        "stage": row.stage,
        "assessNumber": row.eval_count,
        "state": row.state,
        "openTime": assess_time(row.opened_at),
        "closeTime": assess_time(row.closed_at) if row.closed_at else None,
        "closeReason": row.close_reason,
    }
    for name, attr in FUNNEL_TIMES.items():
        value = getattr(row, attr)
        record[name] = assess_time(value) if value is not None else None
    for name, attr in FUNNEL_FLAGS.items():
        record[name] = getattr(row, attr)
    return {k: v for k, v in record.items() if v is not None}


def read_work_order(record: Any, states: Iterable[str]) -> WorkOrderRow:
    """An exchange record of a work order's outcome, checked."""
    if not isinstance(record, dict):
        raise RecordRefused("记录须为 JSON 对象", "malformed_record")
    state = _text(record, "state", 20, required=True)
    if state not in set(states):
        raise RecordRefused(f"未知工单状态 {state}", "invalid_field", "state")

    def _time(name: str, required: bool) -> datetime | None:
        text = _text(record, name, 19, required=required)
        return None if text is None else _beijing(text, name)

    opened = _time("openTime", True)
    assert opened is not None
    funnel: dict[str, Any] = {attr: _time(name, False) for name, attr in FUNNEL_TIMES.items()}
    funnel.update({attr: _flag(record, name, False) for name, attr in FUNNEL_FLAGS.items()})
    return WorkOrderRow(
        id=_int(record, "sourceId", 1, 2**62),
        event_id=_int(record, "eventId", 0, 2**62, default=0),
        evaluation_id=_int(record, "evalSourceId", 1, 2**62),
        case_no=_text(record, "projectNo", 50),
        stage=_text(record, "stage", 30) or DEFAULT_STAGE,
        eval_count=_int(record, "assessNumber", 1, 2, default=1),
        state=state,
        opened_at=opened,
        closed_at=_time("closeTime", False),
        close_reason=_text(record, "closeReason", 200),
        **funnel,
    )


def digest_line(
    *,
    ref: int,
    case_no: str | None,
    stage: str,
    eval_count: int,
    level: int,
    channel: str,
    evaluated_at: datetime,
) -> str:
    """One record's line of the day's digest: what both sides hold unchanged (the time to
    the second, as the exchange format carries it)."""
    return "\t".join(
        (
            str(ref),
            case_no or "",
            stage,
            str(eval_count),
            str(level),
            channel,
            str(int(evaluated_at.timestamp())),
        )
    )


def digest(lines_in_ref_order: Iterable[str]) -> str:
    """The SM3 digest (hex) of a day's lines, in `sourceId` order."""
    h = hashlib.new("sm3")
    for line in lines_in_ref_order:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()
