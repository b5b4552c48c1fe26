"""Stable values of the case domain, with the Chinese labels shown to people."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    REJECTED = "rejected"


# A status only moves forward; the number is its rank.
STATUS_RANK = {
    CaseStatus.RECEIVED: 0,
    CaseStatus.ACCEPTED: 1,
    CaseStatus.COMPLETED: 2,
    CaseStatus.REJECTED: 2,
}

STATUS_LABELS = {
    CaseStatus.RECEIVED: "已收件",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.REJECTED: "不予受理",
}


class ServiceMode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class CaseType(StrEnum):
    IMMEDIATE = "immediate"  # 即办件
    PROMISED = "promised"  # 承诺件


class ApplicantType(StrEnum):
    PERSON = "person"
    ENTERPRISE = "enterprise"
    INSTITUTION = "institution"
    SOCIAL_ORG = "social_org"
    GOVERNMENT = "government"
    OTHER = "other"


APPLICANT_TYPE_LABELS = {
    ApplicantType.PERSON: "自然人",
    ApplicantType.ENTERPRISE: "企业法人",
    ApplicantType.INSTITUTION: "事业单位",
    ApplicantType.SOCIAL_ORG: "社会组织",
    ApplicantType.GOVERNMENT: "机关",
    ApplicantType.OTHER: "其他",
}


class CertType(StrEnum):
    ID_CARD = "id_card"
    PASSPORT = "passport"
    HK_MACAO_PASS = "hk_macao_pass"
    TAIWAN_PASS = "taiwan_pass"
    CREDIT_CODE = "credit_code"
    OTHER = "other"
