"""Request and answer bodies of the appraisal API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from haochaping.appraisal.choices import Direction
from haochaping.core.schemas import Code, InputModel, ReadModel

RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=12)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
MetricCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
# A judgement: a number (3, 0.2) or a fraction as text ("1/3").
Judgement = float | Annotated[str, StringConstraints(strip_whitespace=True, max_length=8)]


class IndicatorCreate(InputModel):
    """One indicator: its code in the scheme, the figure it draws on, the label shown beside
    its weight, and optionally its direction and description (default: the figure's)."""

    code: Code
    metric: MetricCode
    weight_label: Label
    direction: Direction | None = None
    description: Description | None = None


class SchemeCreate(InputModel):
    """A new version of a region's indicator scheme for a year."""

    region_code: RegionCode
    year: int = Field(ge=1900, le=2999)
    indicators: list[IndicatorCreate] = Field(min_length=1, max_length=15)
    judgements: list[list[Judgement]] = Field(min_length=1, max_length=15)
    note: Description | None = None


class IndicatorRead(ReadModel):
    code: str
    metric: str
    metric_label: str
    weight_label: str
    direction: Direction
    description: str
    weight: float


class SchemeRead(ReadModel):
    id: int
    region_code: str
    year: int
    version: int
    indicators: list[IndicatorRead]
    weights: list[float]
    judgements: list[list[str]]
    lambda_max: float
    ci: float
    cr: float
    note: str | None
    created_by: str
    created_at: datetime


class MetricRead(ReadModel):
    code: str
    label: str
    direction: Direction
    description: str


class AdjustmentRead(ReadModel):
    id: int
    org_code: str
    org_name: str
    month: str
    points: float
    note: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_by: str
    created_at: datetime


class Contribution(ReadModel):
    """One indicator of one unit: its value, normalised value (0–1), weight and points
    (100 × weight × normalised)."""

    code: str
    value: float | None
    normalised: float
    weight: float
    contribution: float


class ScoreRow(ReadModel):
    rank: int | None
    code: str
    name: str
    ratings: int
    indicator_score: float | None
    adjustment: float
    score: float | None
    contributions: list[Contribution]


class SchemeRef(ReadModel):
    id: int
    year: int
    version: int
    cr: float
    indicators: list[IndicatorRead]


class ScoresRead(ReadModel):
    region_code: str
    period: str
    tier: str
    since: datetime
    until: datetime
    scheme: SchemeRef
    normalisation: str
    min_sample: int
    items: list[ScoreRow]
    unscored: list[ScoreRow]
