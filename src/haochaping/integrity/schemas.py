"""Request and answer bodies of the review queue and the staff identity register."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from haochaping.cases.schemas import CertNo, Phone
from haochaping.core.schemas import Code, InputModel
from haochaping.evaluations.schemas import EvaluationRead
from haochaping.integrity.service import Decision


class FlagRead(BaseModel):
    id: int
    evaluation_id: int
    check: str
    check_label: str
    stage: str
    subject: str
    reason: str
    evidence: dict[str, Any]
    state: str
    state_label: str
    org_code: str
    org_name: str
    case_no: str | None
    level: int
    level_label: str
    channel: str
    channel_label: str
    standing: str
    standing_label: str
    created_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None


class StandingChange(BaseModel):
    from_: str = Field(alias="from")
    to: str
    reason: str
    note: str | None
    actor: str
    at: datetime


class FlagDetail(FlagRead):
    evaluation: EvaluationRead
    other_flags: list[FlagRead]
    standing_history: list[StandingChange]


class ReviewIn(InputModel):
    decision: Decision
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


class StaffIdentityIn(InputModel):
    staff_no: Code
    cert_no: CertNo | None = None
    phone: Phone | None = None


class StaffIdentityRead(BaseModel):
    staff_no: str
    recorded: list[str]
    flagged: int


class CheckRead(BaseModel):
    name: str
    label: str
    intake: bool
    batch: bool
