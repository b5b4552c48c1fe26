"""Read models of the statistics routes."""

from __future__ import annotations

from haochaping.core.schemas import ReadModel


class SummaryRead(ReadModel):
    """Counts and rates of the ratings in scope that count (rates and score are null when
    there are none; default, invalid and held ratings are reported apart)."""

    total: int
    good: int
    bad: int
    good_rate: float | None
    bad_rate: float | None
    score: float | None
    default_ratings: int
    invalid: int
    held: int
