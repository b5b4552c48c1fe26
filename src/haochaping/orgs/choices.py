"""Stable values of the organisation domain, with the Chinese labels shown to people."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet, IntChoiceSet


class OrgKind(ChoiceSet):
    DEPARTMENT = "department", "部门"
    HALL = "hall", "大厅"
    WINDOW = "window", "窗口"


ORG_KIND_LABELS = OrgKind.labels()


class RegionTier(IntChoiceSet):
    PROVINCE = 1, "省"
    CITY = 2, "市"
    COUNTY = 3, "县（区）"
    TOWN = 4, "乡镇（街道）"
    VILLAGE = 5, "村（社区）"
