"""Request and response bodies of the appeal routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from haochaping.core.schemas import BodyId, InputModel, ReadModel

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=5000)]
# A BIGINT id in a body: a number past it names nothing (422, not an overflow in the driver).


class AppealCreate(InputModel):
    evaluation_id: BodyId
    category: Literal["mistaken", "malicious", "outside_remit", "other"]
    reasons: Text
    attachment_ids: Annotated[list[BodyId], Field(max_length=20)] = []


class AppealDecision(InputModel):
    decision: Literal["uphold", "reject"]
    note: Text
    register_rater: StrictBool = False  # only for an upheld "malicious" appeal
    register_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 365


class AppealRead(ReadModel):
    id: int
    work_order_id: int
    evaluation_id: int
    org_code: str
    category: str
    category_label: str
    reasons: str
    state: str
    filed_by: str
    filed_at: datetime
    decide_due_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    register_rater: bool


class StandingDecision(InputModel):
    """A reviewer's decision on a held rating (JSON route and console form alike)."""

    standing: Literal["valid", "invalid"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]


class StandingRead(ReadModel):
    """A held rating after a reviewer's decision."""

    evaluation_id: int
    standing: Literal["valid", "invalid"]


# --- the register of malicious raters, kept by an office ------------------------------------

Evidence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=5000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class RegisterEntryCreate(InputModel):
    """An entry made by an office outside an appeal: the identifier as typed (normalised and
    hashed at once, never stored), the evidence, the term, and the unit it concerns."""

    kind: Literal["phone", "cert"]
    identifier: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
    ]
    evidence: Evidence
    days: Annotated[StrictInt, Field(ge=1, le=3650)] = 365
    org_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None


class RegisterRevoke(InputModel):
    """Ending an entry before its expiry, with the reason."""

    note: Note
