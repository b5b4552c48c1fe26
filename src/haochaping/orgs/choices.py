"""Stable values of the organisation domain, with the Chinese labels shown to people."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class OrgKind(ChoiceSet):
    DEPARTMENT = "department", "部门"
    HALL = "hall", "大厅"
    WINDOW = "window", "窗口"


ORG_KIND_LABELS = OrgKind.labels()

REGION_TIER_LABELS = {1: "省", 2: "市", 3: "县（区）", 4: "乡镇（街道）", 5: "村（社区）"}
