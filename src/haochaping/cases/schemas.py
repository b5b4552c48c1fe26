"""Request and response bodies of the case routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints, model_validator

from haochaping.cases.choices import ApplicantType, CaseStatus, CaseType, CertType, ServiceMode
from haochaping.core.schemas import Code, InputModel, ReadModel, Timestamp

CaseNo = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^\s/?#%\\]+$"
    ),
]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CertNo = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=4, max_length=40, pattern=r"^[0-9A-Za-z\-()（）]+$"
    ),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=5, max_length=20, pattern=r"^\+?[0-9\-]+$"),
]


class Applicant(InputModel):
    type: ApplicantType = ApplicantType.PERSON
    name: PersonName | None = None
    cert_type: CertType | None = None
    cert_no: CertNo | None = None
    phone: Phone | None = None


class CaseUpsert(InputModel):
    case_no: CaseNo
    item_code: Code
    org_code: Code
    window_code: Code | None = None
    staff_no: Code | None = None
    mode: ServiceMode
    case_type: CaseType = CaseType.IMMEDIATE
    applicant: Applicant
    status: CaseStatus
    received_at: Timestamp | None = None
    accepted_at: Timestamp | None = None
    completed_at: Timestamp | None = None

    @model_validator(mode="after")
    def _timestamps_fit_status(self) -> CaseUpsert:
        if self.status == CaseStatus.ACCEPTED and self.accepted_at is None:
            raise ValueError("已受理的办件须提供 accepted_at")
        if self.status == CaseStatus.COMPLETED and (
            self.accepted_at is None or self.completed_at is None
        ):
            raise ValueError("已办结的办件须提供 accepted_at 与 completed_at")
        if self.accepted_at and self.completed_at and self.completed_at < self.accepted_at:
            raise ValueError("completed_at 不能早于 accepted_at")
        if self.received_at and self.accepted_at and self.accepted_at < self.received_at:
            raise ValueError("accepted_at 不能早于 received_at")
        return self


class ApplicantRead(ReadModel):
    type: str
    name: str | None
    cert_type: str | None
    cert_no: str | None
    phone: str | None


class CaseRead(ReadModel):
    case_no: str
    item_code: str
    item_name: str
    org_code: str
    window_code: str | None
    staff_no: str | None
    mode: str
    case_type: str
    status: str
    applicant: ApplicantRead
    received_at: datetime | None
    accepted_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InvitationCreate(InputModel):
    stage: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,30}$")] = "whole"
    channel: Annotated[str, StringConstraints(pattern=r"^(qrcode|sms|pc|mobile|phone)$")] = "qrcode"


class InvitationRead(ReadModel):
    url: str
    qr_url: str
    expires_at: datetime
