"""Request and response bodies of the window evaluator's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints

from haochaping.cases.schemas import CaseNo
from haochaping.core.schemas import BodyId, Code, InputModel, ReadModel, Timestamp
from haochaping.evaluations.schemas import ReasonCode

FlowNo = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^\S+$")
]
PadName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ServingCreate(InputModel):
    """What the window serves now: the case, the queue's flow number (流水号), the item and
    the staff member at the counter (the item and staff default to the case's own)."""

    case_no: CaseNo
    flow_no: FlowNo
    item_code: Code | None = None
    staff_no: Code | None = None


class ServingRead(ReadModel):
    id: int
    window_code: str
    case_no: str
    flow_no: str
    item_code: str
    item_name: str
    staff_no: str | None
    staff_name: str | None
    started_at: datetime


class PadRating(InputModel):
    """A rating pressed on a pad, sent at once or later from its offline queue: the service
    it was given for, the level and reasons, when the screen showed the faces and when the
    face was pressed (both the pad's clock, bounded by the server)."""

    service_id: BodyId
    level: Annotated[StrictInt, Field(ge=1, le=5)]
    reasons: Annotated[list[ReasonCode], Field(max_length=20)] = []
    displayed_at: Timestamp
    evaluated_at: Timestamp


class PadRatingRead(ReadModel):
    id: int
    level: int
    is_bad: bool
    display_ms: int


class PairingRead(ReadModel):
    """A new pairing code (shown once) for a pad of a window."""

    device_id: int
    window_code: str
    name: str
    code: str
    expires_at: datetime
