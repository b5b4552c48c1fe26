"""Policy values: every number of the closed loop, with the national-practice defaults."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from haochaping.core.schemas import InputModel
from haochaping.evaluations.schemas import StageRule

Days = Annotated[StrictInt, Field(ge=0, le=365)]
MAX_STAGES = 20
Level = Annotated[StrictInt, Field(ge=1, le=5)]
# Points of levels 5, 4, 3, 2, 1 (非常满意 … 非常不满意): the score is their average.
Point = Annotated[StrictInt, Field(ge=0, le=100)]
Points = Annotated[list[Point], Field(min_length=5, max_length=5)]
RectifiedOnTime = Literal["reported", "closed"]
RankingMetric = Literal["score", "good_rate"]
MinSample = Annotated[StrictInt, Field(ge=1, le=100_000)]
BottomN = Annotated[StrictInt, Field(ge=1, le=100)]
BottomK = Annotated[StrictInt, Field(ge=1, le=24)]
MinCell = Annotated[StrictInt, Field(ge=1, le=1000)]
# Who records the callback (回访): the unit that was rated, or the office (an independent
# callback, e.g. Zhejiang's 12345 platform calls the citizen, not the unit).
CallbackBy = Literal["unit", "office"]
RegisterNotice = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)
]


def _unique_stages(stages: list[StageRule]) -> list[StageRule]:
    codes = [s.code for s in stages]
    if len(set(codes)) != len(codes):
        raise ValueError("评价环节代码有重复")
    return stages


Stages = Annotated[list[StageRule], Field(min_length=1, max_length=MAX_STAGES)]


class DefaultRatingRule(BaseModel):
    """A system default rating for a completed case not rated within N days (off by default)."""

    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = False
    after_days: Annotated[StrictInt, Field(ge=1, le=365)] = 7
    level: Annotated[StrictInt, Field(ge=3, le=5)] = 3


SmsInviteHours = Annotated[StrictInt, Field(ge=0, le=24 * 365)]
# How long ratings stay in the live database, in months (`haochaping archive export` without
# --before archives what is older than the longest retention in force). At least a year: the
# figures compare a month with the same month a year before.
RetentionMonths = Annotated[StrictInt, Field(ge=12, le=1200)]


class PolicyValues(BaseModel):
    """The effective numbers for a jurisdiction (defaults from DOMAIN.md section 5)."""

    model_config = ConfigDict(extra="forbid")
    bad_levels: list[Annotated[StrictInt, Field(ge=1, le=5)]] = [1, 2]
    verify_days: Days = 1  # contact and verify, working days from the bad rating's arrival
    rectify_days: Days = 15  # rectification, working days from arrival
    callback_days: Days = 3  # callback, working days from the reported rectification
    warn_days: Days = 1  # warn this many working days before a deadline
    max_contact_attempts: Annotated[StrictInt, Field(ge=1, le=20)] = 3
    spot_check_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    evaluation_window_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 30
    default_rating: DefaultRatingRule = DefaultRatingRule()
    followup_allowance: Annotated[StrictInt, Field(ge=0, le=3)] = 1
    appeal_days: Days = 3  # a unit appeals within N working days of the bad rating
    appeal_decision_days: Days = 5  # the office decides within N working days
    held_ratings_count: StrictBool = False  # ratings held for review (待复核) count meanwhile
    # The closed list of stages a case may be rated at (the national default: the whole case).
    stages: Stages = [StageRule(code="whole")]
    # The figures (docs/metrics.md). Good levels: None means every level that is not bad.
    good_levels: list[Level] | None = None
    level_points: Points = [10, 8, 6, 3, 0]
    # 按时整改: `reported` — rectification reported by its deadline; `closed` — closed by it.
    rectified_on_time: RectifiedOnTime = "reported"
    ranking_metric: RankingMetric = "score"  # the other figure breaks ties
    min_sample: MinSample = 30  # ratings a unit needs in a period to be ranked
    bottom_n: BottomN = 3  # the bottom N of a ranking ...
    bottom_k: BottomK = 3  # ... for K periods running: the consecutive-bottom list
    public_min_cell: MinCell = 5  # k-anonymity of staff-level figures on public pages
    callback_by: CallbackBy = "unit"  # "office": units may not record their orders' callbacks
    # What a rater on the malicious-rater register is told when their rating is held for it:
    # how to object (where, by when); None: a general sentence.
    register_notice: RegisterNotice | None = None
    # The monthly report (月度通报): written for this region on the first working day of each
    # month when on; the window service stars (窗口服务之星) need this many ratings in a month.
    monthly_report: StrictBool = False
    star_min_ratings: MinSample = 30
    # Invitation by SMS: a completed case still unrated this many hours after completion is
    # sent its rating link by SMS, once (Bozhou: 72). None or 0: off.
    sms_invite_after_hours: SmsInviteHours | None = None
    # Months of ratings kept in the live database (保留期限); None: all of them.
    retention_months: RetentionMonths | None = None

    _stages_unique = field_validator("stages")(_unique_stages)

    def stage_map(self) -> dict[str, StageRule]:
        """Stage code -> its rule (label, how far a case must have come to be rated at it)."""
        return {s.code: s for s in self.stages}

    @model_validator(mode="after")
    def _bad_levels_low(self) -> PolicyValues:
        if not self.bad_levels or max(self.bad_levels) > 3 or 1 not in self.bad_levels:
            raise ValueError("差评等级须包含 1，且不能高于 3")
        if self.good_levels is not None:
            if not self.good_levels or set(self.good_levels) & set(self.bad_levels):
                raise ValueError("好评等级不能为空，且不能与差评等级重叠")
            if 5 not in self.good_levels:
                raise ValueError("好评等级须包含 5")
        return self

    def good_level_set(self) -> frozenset[int]:
        """The levels that count as good: as set, else every level that is not bad."""
        if self.good_levels is not None:
            return frozenset(self.good_levels)
        return frozenset(range(1, 6)) - frozenset(self.bad_levels)


class PolicyValuesPatch(InputModel):
    """The values one region sets (all optional: unset ones are inherited)."""

    bad_levels: list[Annotated[StrictInt, Field(ge=1, le=5)]] | None = None
    verify_days: Days | None = None
    rectify_days: Days | None = None
    callback_days: Days | None = None
    warn_days: Days | None = None
    max_contact_attempts: Annotated[StrictInt, Field(ge=1, le=20)] | None = None
    spot_check_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    evaluation_window_days: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None
    default_rating: DefaultRatingRule | None = None
    followup_allowance: Annotated[StrictInt, Field(ge=0, le=3)] | None = None
    appeal_days: Days | None = None
    appeal_decision_days: Days | None = None
    held_ratings_count: StrictBool | None = None
    stages: Stages | None = None
    good_levels: list[Level] | None = None
    level_points: Points | None = None
    rectified_on_time: RectifiedOnTime | None = None
    ranking_metric: RankingMetric | None = None
    min_sample: MinSample | None = None
    bottom_n: BottomN | None = None
    bottom_k: BottomK | None = None
    public_min_cell: MinCell | None = None
    callback_by: CallbackBy | None = None
    register_notice: RegisterNotice | None = None
    monthly_report: StrictBool | None = None
    star_min_ratings: MinSample | None = None
    sms_invite_after_hours: SmsInviteHours | None = None
    retention_months: RetentionMonths | None = None

    _stages_unique = field_validator("stages")(_unique_stages)


class PolicyCreate(InputModel):
    region_code: str
    effective_from: date | None = None
    values: PolicyValuesPatch
    note: Annotated[str, Field(max_length=500)] | None = None


class PolicyRead(BaseModel):
    id: int
    region_code: str
    version: int
    effective_from: date
    values: dict
    effective: PolicyValues
    note: str | None = None


class PolicyVersionRead(BaseModel):
    """One published version of a region's policy, as listed."""

    id: int
    region_code: str
    version: int
    effective_from: date
    values: dict
    note: str | None = None
    created_by: str | None
    created_at: datetime


class CalendarYearStatus(BaseModel):
    """Whether the working-day calendar knows a year, and from which source."""

    year: int
    known: bool
    source: str | None


class CalendarStatusRead(BaseModel):
    """The years around today, and the warning for those the calendar does not know."""

    years: list[CalendarYearStatus]
    warning: str | None
