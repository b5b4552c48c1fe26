"""Request and response bodies of the evaluation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from haochaping.cases.choices import ApplicantType, CertType
from haochaping.cases.schemas import CaseNo, CertNo, PersonName, Phone
from haochaping.core.errors import ErrorDetail
from haochaping.core.schemas import Code, InputModel, ReadModel, Timestamp
from haochaping.evaluations.choices import STAGE_LABELS, STAGE_REACHED, Channel, Reached

Stage = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_]{1,30}$")]
ReasonCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z_]{1,16}$")
]
COMMENT_MAX = 2000
CALL_ID_MAX = 64
# A hotline call's id as the 12345 system names it: letters, digits and - _ . : only.
CallId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=rf"^[0-9A-Za-z_.:\-]{{1,{CALL_ID_MAX}}}$"),
]


class Rater(InputModel):
    type: ApplicantType = ApplicantType.PERSON
    name: PersonName | None = None
    cert_type: CertType | None = None
    cert_no: CertNo | None = None
    phone: Phone | None = None
    is_agent: StrictBool = False


class EvaluationCreate(InputModel):
    case_no: CaseNo | None = None
    org_code: Code | None = None
    item_code: Code | None = None
    stage: Stage = "whole"
    channel: Channel
    level: Annotated[StrictInt, Field(ge=1, le=5)]
    reasons: Annotated[list[ReasonCode], Field(max_length=20)] = []
    comment: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX)] | None
    ) = None
    rater: Rater | None = None
    anonymous: StrictBool = False
    public: StrictBool = True
    evaluated_at: Timestamp | None = None
    # When the rater was shown the rating screen (a pad or terminal), for the instant-press
    # check; never later than evaluated_at (clamped).
    displayed_at: Timestamp | None = None
    device_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    # The 12345 call the rating was recorded in (channel `phone` only).
    call_id: CallId | None = None


class EvaluationBatch(InputModel):
    items: Annotated[list[Any], Field(min_length=1, max_length=1000)]


class RaterRead(ReadModel):
    type: str
    name: str | None
    cert_no: str | None
    phone: str | None


class EvaluationRead(ReadModel):
    id: int
    case_no: str | None
    stage: str
    eval_count: int
    channel: str
    level: int
    level_label: str
    is_bad: bool
    reasons: list[str]
    comment: str | None
    tagset_version: str
    org_code: str
    item_code: str | None
    window_code: str | None
    staff_no: str | None
    region_code: str
    rater: RaterRead | None
    anonymous: bool
    public: bool
    call_id: str | None
    evaluated_at: datetime
    received_at: datetime


class BatchItemResult(ReadModel):
    """One item of a batch: `{"status": 201, "id"}` when stored (with the stored rating as
    `evaluation` unless `Prefer: return=minimal`), `{"status", "error"}` when refused."""

    status: int
    id: int | None = None
    evaluation: EvaluationRead | None = None
    error: ErrorDetail | None = None


class BatchResult(ReadModel):
    """One result per submitted item, in order."""

    items: list[BatchItemResult]


class CommentReveal(ReadModel):
    id: int
    comment: str


StageCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_]{1,30}$")]


class StageRule(BaseModel):
    """One stage a case may be rated at: its code, the label people see, and how far the case
    must have come (`whole`, `accept` and `complete` have fixed labels; a step of a bundled
    "一件事" is labelled freely and may be rated from acceptance unless said otherwise)."""

    model_config = ConfigDict(extra="forbid")
    code: StageCode
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""
    reached: Reached | None = None

    @model_validator(mode="after")
    def _label_and_reached(self) -> StageRule:
        known = STAGE_LABELS.get(self.code)
        if known is not None:
            self.label = known
        elif not self.label:
            raise ValueError(f"评价环节 {self.code} 须填写名称")
        if self.reached is None:
            self.reached = STAGE_REACHED.get(self.code, Reached.ACCEPTED)
        return self
