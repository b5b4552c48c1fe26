"""The filters of the dashboard (数据看板) and the rankings (榜单): query strings parsed into
what the statistics take, with Chinese messages.

A value the form could not have sent is refused (the page answers 422 and says why), not
silently dropped: a figure computed over other filters than the ones asked for would mislead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from haochaping.console.forms import day_start
from haochaping.core.choices import ChoiceSet
from haochaping.core.exports import ExportFormat
from haochaping.core.timeutil import SHANGHAI

CODE_MAX = 64
LONGEST_RANGE_DAYS = 3 * 366  # the longest period a dashboard covers
MAX_DAYS_BY_GRANULARITY = {"day": 400, "week": 3 * 366, "month": 3 * 366}
_CODE = re.compile(r"[0-9A-Za-z_.\-]{1,64}")


class Preset(ChoiceSet):
    LAST_7 = "7d", "近7天"
    LAST_30 = "30d", "近30天"
    THIS_MONTH = "month", "本月"
    LAST_MONTH = "last_month", "上月"
    THIS_QUARTER = "quarter", "本季度"
    THIS_YEAR = "year", "本年"
    CUSTOM = "custom", "自定义"


class Granularity(ChoiceSet):
    DAY = "day", "按日"
    WEEK = "week", "按周"
    MONTH = "month", "按月"


class NodeKind(ChoiceSet):
    REGION = "region", "地区"
    ORG = "org", "单位"


DEFAULT_PRESET = Preset.LAST_30


def local_today() -> date:
    return datetime.now(SHANGHAI).date()


def preset_range(preset: Preset, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a preset period, as of `today` in Shanghai."""
    if preset is Preset.LAST_7:
        return today - timedelta(days=6), today
    if preset is Preset.THIS_MONTH:
        return today.replace(day=1), today
    if preset is Preset.LAST_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset is Preset.THIS_QUARTER:
        return date(today.year, (today.month - 1) // 3 * 3 + 1, 1), today
    if preset is Preset.THIS_YEAR:
        return date(today.year, 1, 1), today
    return today - timedelta(days=29), today


def default_granularity(since: date, until: date) -> Granularity:
    days = (until - since).days + 1
    if days <= 62:
        return Granularity.DAY
    if days <= 190:
        return Granularity.WEEK
    return Granularity.MONTH


@dataclass
class Node:
    """Where the figures are taken: a region (with everything in it) or an organisation (with
    its subtree); None is the person's whole area."""

    kind: NodeKind
    code: str

    @property
    def value(self) -> str:
        return f"{self.kind.value}:{self.code}"

    @classmethod
    def parse(cls, raw: str) -> Node | None:
        kind, sep, code = raw.partition(":")
        if not sep or kind not in NodeKind.values() or not _CODE.fullmatch(code):
            return None
        return cls(NodeKind(kind), code)


@dataclass
class DashboardFilters:
    """What the dashboard shows: a period (a preset or two dates), a node, an item, the
    granularity of the trend."""

    preset: Preset = DEFAULT_PRESET
    since: date = field(default_factory=lambda: preset_range(DEFAULT_PRESET, local_today())[0])
    until: date = field(default_factory=local_today)
    node: Node | None = None
    item_code: str = ""
    granularity: Granularity = Granularity.DAY
    granularity_given: bool = False
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams, today: date | None = None) -> DashboardFilters:
        """Parse the query string; never fails, collects messages instead."""
        today = today or local_today()
        f = cls()
        raw_preset = (params.get("preset") or "").strip()
        raw_since = (params.get("since") or "").strip()
        raw_until = (params.get("until") or "").strip()
        if raw_preset and raw_preset not in Preset.values():
            f.errors.append("统计时段取值无效")
        preset = Preset(raw_preset) if raw_preset in Preset.values() else None
        if preset is None and (raw_since or raw_until):
            preset = Preset.CUSTOM
        f.preset = preset or DEFAULT_PRESET
        if f.preset is Preset.CUSTOM:
            since = _day(raw_since) if raw_since else None
            until = _day(raw_until) if raw_until else today
            if since is None:
                f.errors.append("请填写开始日期，格式为 年-月-日")
            if until is None:
                f.errors.append("结束日期格式应为 年-月-日")
            if since and until:
                if until < since:
                    f.errors.append("结束日期早于开始日期")
                elif (until - since).days + 1 > LONGEST_RANGE_DAYS:
                    f.errors.append("统计时段最长三年，请缩短时段")
                else:
                    f.since, f.until = since, until
        else:
            f.since, f.until = preset_range(f.preset, today)
        raw_node = (params.get("node") or "").strip()
        if raw_node:
            f.node = Node.parse(raw_node)
            if f.node is None:
                f.errors.append("统计范围取值无效")
        item = (params.get("item_code") or "").strip()
        if item:
            if _CODE.fullmatch(item):
                f.item_code = item
            else:
                f.errors.append("事项编码取值无效")
        raw_gran = (params.get("granularity") or "").strip()
        if raw_gran:
            if raw_gran in Granularity.values():
                f.granularity = Granularity(raw_gran)
                f.granularity_given = True
            else:
                f.errors.append("趋势粒度取值无效")
        if not f.granularity_given:
            f.granularity = default_granularity(f.since, f.until)
        days = (f.until - f.since).days + 1
        if days > MAX_DAYS_BY_GRANULARITY[f.granularity.value]:
            f.errors.append("按日查看趋势时，统计时段最长400天，请改为按周或按月")
        return f

    @property
    def since_at(self) -> datetime:
        return day_start(self.since)

    @property
    def until_at(self) -> datetime:
        # The end date is inclusive: up to the next midnight in Shanghai.
        return day_start(self.until + timedelta(days=1))

    @property
    def region_code(self) -> str | None:
        return self.node.code if self.node and self.node.kind is NodeKind.REGION else None

    @property
    def org_code(self) -> str | None:
        return self.node.code if self.node and self.node.kind is NodeKind.ORG else None

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (defaults left out), with changes applied."""
        custom = self.preset is Preset.CUSTOM
        values: dict[str, Any] = {
            "preset": None if self.preset is DEFAULT_PRESET else self.preset.value,
            "since": self.since.isoformat() if custom else None,
            "until": self.until.isoformat() if custom else None,
            "node": self.node.value if self.node else None,
            "item_code": self.item_code,
            "granularity": self.granularity.value if self.granularity_given else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --- the rankings --------------------------------------------------------------------------


class Tier(ChoiceSet):
    REGION = "region", "地区"
    DEPARTMENT = "department", "部门"
    HALL = "hall", "大厅"
    WINDOW = "window", "窗口"
    STAFF = "staff", "工作人员"
    ITEM = "item", "事项"


class PeriodKind(ChoiceSet):
    MONTH = "month", "月度"
    QUARTER = "quarter", "季度"
    YEAR = "year", "年度"


_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_YEAR = re.compile(r"(\d{4})")
BOTTOM_PERIODS = 3  # consecutive periods at the bottom that make a unit a candidate
BOTTOM_COUNT = 3  # how many at the bottom of each period


def period_kind(period: str) -> PeriodKind | None:
    """Which kind of period a label is (2026-11, 2026-Q4, 2026), or None."""
    if m := _MONTH.fullmatch(period):
        return PeriodKind.MONTH if 1 <= int(m.group(2)) <= 12 else None
    if _QUARTER.fullmatch(period):
        return PeriodKind.QUARTER
    if _YEAR.fullmatch(period):
        return PeriodKind.YEAR
    return None


def current_period(kind: PeriodKind, today: date) -> str:
    if kind is PeriodKind.MONTH:
        return f"{today.year}-{today.month:02d}"
    if kind is PeriodKind.QUARTER:
        return f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    return str(today.year)


def recent_periods(kind: PeriodKind, today: date, count: int) -> list[tuple[str, str]]:
    """(value, label) of the latest periods of a kind, the current one first."""
    out: list[tuple[str, str]] = []
    if kind is PeriodKind.MONTH:
        y, m = today.year, today.month
        for _ in range(count):
            out.append((f"{y}-{m:02d}", f"{y}年{m}月"))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    elif kind is PeriodKind.QUARTER:
        y, q = today.year, (today.month - 1) // 3 + 1
        for _ in range(count):
            out.append((f"{y}-Q{q}", f"{y}年第{q}季度"))
            y, q = (y, q - 1) if q > 1 else (y - 1, 4)
    else:
        out = [(str(today.year - i), f"{today.year - i}年") for i in range(count)]
    return out


def period_label(period: str) -> str:
    if m := _MONTH.fullmatch(period):
        return f"{m.group(1)}年{int(m.group(2))}月"
    if m := _QUARTER.fullmatch(period):
        return f"{m.group(1)}年第{m.group(2)}季度"
    return f"{period}年"


@dataclass
class RankingFilters:
    """Which ranking: the tier (tab) and the period (a month, quarter or year)."""

    tier: Tier = Tier.HALL
    period: str = ""
    kind: PeriodKind = PeriodKind.MONTH
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: QueryParams, today: date | None = None) -> RankingFilters:
        today = today or local_today()
        f = cls()
        tier = (params.get("tier") or "").strip()
        if tier:
            if tier in Tier.values():
                f.tier = Tier(tier)
            else:
                f.errors.append("排名对象取值无效")
        period = (params.get("period") or "").strip()
        if period:
            kind = period_kind(period)
            if kind is None or not 2000 <= int(period[:4]) <= today.year:
                f.errors.append("排名周期取值无效，应为 2026-11、2026-Q4 或 2026 这样的形式")
            else:
                f.period, f.kind = period, kind
        if not f.period:
            f.period = current_period(f.kind, today)
        return f

    @property
    def label(self) -> str:
        return period_label(self.period)

    def query(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {"tier": self.tier.value, "period": self.period, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def export_format(params: QueryParams) -> tuple[ExportFormat | None, str | None]:
    """The download format asked for, or a message."""
    raw = (params.get("format") or "csv").strip()
    if raw in ExportFormat.values():
        return ExportFormat(raw), None
    return None, "下载格式应为 csv 或 xlsx"
