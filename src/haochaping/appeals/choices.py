"""Stable values of the appeal domain, with the Chinese labels shown to people."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class AppealCategory(ChoiceSet):
    MISTAKEN = "mistaken", "误评"
    MALICIOUS = "malicious", "恶意差评"
    OUTSIDE_REMIT = "outside_remit", "非本单位职责"
    OTHER = "other", "其他"


class AppealState(ChoiceSet):
    PENDING = "pending", "待复核"
    UPHELD = "upheld", "申诉成立"
    REJECTED = "rejected", "申诉驳回"


CATEGORY_LABELS = AppealCategory.labels()
STATE_LABELS = AppealState.labels()
