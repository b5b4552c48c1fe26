"""The console's filter forms: query strings parsed leniently, with Chinese messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from haochaping.core.timeutil import SHANGHAI
from haochaping.evaluations.choices import Channel

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
class EvaluationFilters:
    """What the evaluation list is filtered by; bad values are dropped and reported."""

    level: int | None = None
    channel: str | None = None
    org_code: str = ""
    item_code: str = ""
    case_no: str = ""
    since: date | None = None
    until: date | None = None
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams) -> EvaluationFilters:
        """Parse the list's query string; never fails, collects messages instead."""
        f = cls(org_code=_text(params, "org_code"), item_code=_text(params, "item_code"),
                case_no=_text(params, "case_no"), cursor=params.get("cursor") or None)
        level = (params.get("level") or "").strip()
        if level:
            if level in {"1", "2", "3", "4", "5"}:
                f.level = int(level)
            else:
                f.errors.append("评价等级取值无效，已忽略")
        channel = (params.get("channel") or "").strip()
        if channel:
            if channel in {c.value for c in Channel}:
                f.channel = channel
            else:
                f.errors.append("评价渠道取值无效，已忽略")
        for name, label in (("since", "开始日期"), ("until", "结束日期")):
            raw = (params.get(name) or "").strip()
            if raw:
                day = _day(raw)
                if day is None:
                    f.errors.append(f"{label}格式应为 年-月-日，已忽略")
                setattr(f, name, day)
        if f.since and f.until and f.until < f.since:
            f.errors.append("结束日期早于开始日期，已忽略日期条件")
            f.since = f.until = None
        return f

    @property
    def since_at(self) -> datetime | None:
        return day_start(self.since) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        # The end date is inclusive: up to the next midnight in Shanghai.
        return day_start(self.until + timedelta(days=1)) if self.until else None

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out), with changes applied."""
        values: dict[str, Any] = {
            "level": self.level, "channel": self.channel, "org_code": self.org_code,
            "item_code": self.item_code, "case_no": self.case_no,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.query())
