"""Roles and channels: stable values with their Chinese labels."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OFFICE = "office"  # 政务服务管理机构
    UNIT = "unit"  # 责任单位 handler
    STAFF = "staff"  # 窗口人员
    ASSESSOR = "assessor"  # 监督查评 / 第三方评估


ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: "系统管理员",
    Role.OFFICE: "政务服务管理机构",
    Role.UNIT: "责任单位",
    Role.STAFF: "窗口人员",
    Role.ASSESSOR: "监督查评人员",
}
