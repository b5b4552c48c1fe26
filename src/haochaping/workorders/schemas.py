"""Request and response bodies of the work-order routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from haochaping.core.schemas import BodyId, Code, InputModel, ReadModel
from haochaping.evaluations.choices import Channel
from haochaping.evaluations.schemas import COMMENT_MAX, ReasonCode

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
AttachmentIds = Annotated[list[BodyId], Field(max_length=20)]


class _Action(InputModel):
    version: StrictInt | None = None  # the version the person saw; stale → 409
    attachment_ids: AttachmentIds = []


class VerifyIn(_Action):
    action: Literal["verify"]
    note: Note


class TransferIn(_Action):
    action: Literal["transfer"]
    lead_org_code: Code
    co_org_codes: Annotated[list[Code], Field(max_length=10)] = []
    note: Note


class ExplainIn(_Action):
    action: Literal["explain"]
    note: Note


class ReportRectifiedIn(_Action):
    action: Literal["report_rectified"]
    note: Note


class CallbackIn(_Action):
    action: Literal["callback"]
    method: Literal["phone", "sms", "wechat", "visit"]
    reached: StrictBool
    verdict: Literal["satisfied", "basic", "dissatisfied"] | None = None
    note: Note | None = None


class CloseUnreachableIn(_Action):
    action: Literal["close_unreachable"]
    note: Note


class EscalateIn(_Action):
    action: Literal["escalate"]
    note: Note


class RedispatchIn(_Action):
    action: Literal["redispatch"]
    note: Note
    lead_org_code: Code | None = None
    rectify_days: Annotated[StrictInt, Field(ge=1, le=60)] | None = None


class HoldAccountableIn(_Action):
    action: Literal["hold_accountable"]
    note: Note


class CloseIn(_Action):
    action: Literal["close"]
    note: Note


ActionIn = Annotated[
    VerifyIn
    | TransferIn
    | ExplainIn
    | ReportRectifiedIn
    | CallbackIn
    | CloseUnreachableIn
    | EscalateIn
    | RedispatchIn
    | HoldAccountableIn
    | CloseIn,
    Field(discriminator="action"),
]


class FollowUpIn(InputModel):
    """The rater's follow-up rating, validated like any rating (level, reason codes, comment)."""

    level: Annotated[StrictInt, Field(ge=1, le=5)]
    reasons: Annotated[list[ReasonCode], Field(max_length=20)] = []
    comment: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX)] | None
    ) = None


class FollowUpCreate(FollowUpIn):
    """A follow-up posted by a channel client for the rater: the channel it came through
    (default: the channel of the first rating)."""

    channel: Channel | None = None


class CitizenVerdictIn(InputModel):
    verdict: Literal["satisfied", "basic", "dissatisfied"]
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class EventRead(ReadModel):
    id: int
    action: str
    from_state: str | None
    to_state: str
    actor_kind: str
    actor_name: str
    note: str | None
    data: dict[str, Any]
    created_at: datetime


class DeadlineRead(ReadModel):
    kind: str
    due_at: datetime
    due_date: date
    remaining_workdays: int
    overdue: bool
    verified: bool


class WorkOrderRead(ReadModel):
    id: int
    state: str
    state_label: str
    version: int
    origin: str
    org_code: str
    co_org_codes: list[str]
    evaluation: dict[str, Any]
    case_no: str | None
    opened_at: datetime
    deadlines: list[DeadlineRead]
    deadlines_verified: bool
    overdue: bool
    callback_attempts: int
    followups: int
    close_reason: str | None
    policy_id: int | None
    allowed_actions: list[str]
    events: list[EventRead] = []


class SpotCheckCallbackIn(InputModel):
    method: Literal["phone", "sms", "wechat", "visit"]
    reached: StrictBool
    verdict: Literal["satisfied", "basic", "dissatisfied"] | None = None
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class AttachmentRead(ReadModel):
    """A stored evidence file (its content is downloaded separately)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class PhoneRead(ReadModel):
    """The rater's phone number for a callback (the reveal is on record); no name when the
    rating was anonymous."""

    phone: str
    name: str | None


class FollowUpRead(ReadModel):
    """A stored follow-up rating and the state of its work order afterwards."""

    id: int
    eval_count: int
    level: int
    work_order_state: str


class SpotCheckRead(ReadModel):
    """A callback task on a sampled good rating."""

    id: int
    evaluation_id: int
    org_code: str
    state: str
    verdict: str | None
    work_order_id: int | None
    created_at: datetime


class SpotCheckResult(ReadModel):
    """A spot check after a callback attempt: still pending when the rater was not reached
    (no verdict then), done with the verdict and any work order it opened otherwise."""

    id: int
    state: str
    verdict: str | None = None
    work_order_id: int | None
