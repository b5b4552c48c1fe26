"""Stable values of the organisation domain, with the Chinese labels shown to people."""

from __future__ import annotations

from enum import StrEnum


class OrgKind(StrEnum):
    DEPARTMENT = "department"
    HALL = "hall"
    WINDOW = "window"


ORG_KIND_LABELS = {OrgKind.DEPARTMENT: "部门", OrgKind.HALL: "大厅", OrgKind.WINDOW: "窗口"}

REGION_TIER_LABELS = {1: "省", 2: "市", 3: "县（区）", 4: "乡镇（街道）", 5: "村（社区）"}
