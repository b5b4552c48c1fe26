"""Read models of the statistics routes (the figures are defined in analytics/metrics.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from haochaping.core.schemas import ReadModel


class SummaryRead(ReadModel):
    """Counts and rates of the ratings in scope that count (rates and score are null when
    there are none; default, invalid and held ratings are reported apart), and the
    bad-review funnel of their work orders."""

    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    default_ratings: int
    invalid: int
    held: int
    opened: int
    verified_on_time: int
    rectified_on_time: int
    called_back: int
    callback_satisfied: int
    supervised: int
    overdue_open: int
    rectified_on_time_rate: float | None
    callback_rate: float | None
    callback_satisfied_rate: float | None
    verified_on_time_rate: float | None


class SeriesPointRead(ReadModel):
    period: str
    total: int
    good_rate: float | None
    bad: int
    score: float | None


class SeriesRead(ReadModel):
    """One point per local day, ISO week or month of the range, empty ones included."""

    granularity: str
    items: list[SeriesPointRead]


class BreakdownRowRead(ReadModel):
    code: str
    name: str
    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    kind: str | None = None  # `child` rows: region, org or staff (what the code names)


class BreakdownRead(ReadModel):
    """Rows of one breakdown; for `child`, `child_kind` names what the codes are."""

    by: str
    child_kind: str | None
    rows: list[BreakdownRowRead]


class RankRowRead(ReadModel):
    rank: int | None
    code: str
    name: str
    total: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    rank_change: int | None


class RankingsRead(ReadModel):
    """A tier's ranking for one period; units under `min_sample` listed apart."""

    tier: str
    period: str
    live: bool
    since: datetime
    until: datetime
    items: list[RankRowRead]
    unranked: list[RankRowRead]
    formula: dict[str, Any]
    min_sample: int


class PeriodRankRead(ReadModel):
    period: str
    rank: int
    of: int


class BottomUnitRead(ReadModel):
    code: str
    name: str
    ranks: list[PeriodRankRead]


class BottomRead(ReadModel):
    """Units in the bottom N for every one of K periods running (约谈、通报 candidates)."""

    tier: str
    periods: list[str]
    bottom: int
    items: list[BottomUnitRead]
    formula: dict[str, Any]
