"""Read models of the text-analysis routes (`/api/v1/stats/topics`, `/api/v1/stats/emerging`)."""

from __future__ import annotations

from datetime import date, datetime

from haochaping.core.schemas import ReadModel


class TermCountRead(ReadModel):
    term: str
    count: int
    bad: int
    basic: int


class ReasonCountRead(ReadModel):
    code: str
    text: str
    count: int
    bad: int
    basic: int


class TopTermsRead(ReadModel):
    """The most frequent terms and phrases (two neighbouring terms, joined by a space) of the
    bad and 基本满意 comments over the local days [first, last], and the reason codes beside
    them; each counted once per rating."""

    first: date
    last: date
    ratings: int
    comments: int
    terms: list[TermCountRead]
    phrases: list[TermCountRead]
    reasons: list[ReasonCountRead]


class ExampleRead(ReadModel):
    received_at: datetime
    level: int
    text: str


class TopicRead(ReadModel):
    item_code: str
    item_name: str
    term: str
    recent: int
    before: int
    recent_ratings: int
    before_ratings: int
    p_value: float
    score: float
    weekly: list[int]
    examples: list[ExampleRead]


class EmergingRead(ReadModel):
    """Emerging topics, highest score first: terms whose count per rating of an item rose in
    the recent weeks (one-sided conditional binomial test, Bonferroni over the `tested` pairs,
    at least `min_count` recent comments); `weekly` counts per week from `week_starts`."""

    weeks: int
    baseline_weeks: int
    recent_since: date
    baseline_since: date
    last: date
    tested: int
    min_count: int
    alpha: float
    week_starts: list[date]
    items: list[TopicRead]
