"""Stable values of the case domain, with the Chinese labels shown to people."""

from __future__ import annotations

from enum import StrEnum

from haochaping.core.choices import ChoiceSet


class CaseStatus(ChoiceSet):
    RECEIVED = "received", "已收件"
    ACCEPTED = "accepted", "已受理"
    COMPLETED = "completed", "已办结"
    REJECTED = "rejected", "不予受理"


# A status only moves forward; the number is its rank.
STATUS_RANK = {
    CaseStatus.RECEIVED: 0,
    CaseStatus.ACCEPTED: 1,
    CaseStatus.COMPLETED: 2,
    CaseStatus.REJECTED: 2,
}

STATUS_LABELS = CaseStatus.labels()


class ServiceMode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class CaseType(StrEnum):
    IMMEDIATE = "immediate"  # 即办件
    PROMISED = "promised"  # 承诺件


class ApplicantType(ChoiceSet):
    PERSON = "person", "自然人"
    ENTERPRISE = "enterprise", "企业法人"
    INSTITUTION = "institution", "事业单位"
    SOCIAL_ORG = "social_org", "社会组织"
    GOVERNMENT = "government", "机关"
    OTHER = "other", "其他"


APPLICANT_TYPE_LABELS = ApplicantType.labels()


class CertType(StrEnum):
    ID_CARD = "id_card"
    PASSPORT = "passport"
    HK_MACAO_PASS = "hk_macao_pass"
    TAIWAN_PASS = "taiwan_pass"
    CREDIT_CODE = "credit_code"
    OTHER = "other"
