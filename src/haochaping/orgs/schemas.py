"""Request and response bodies of the reference-data routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints

from haochaping.core.schemas import Code, InputModel, Name, ReadModel
from haochaping.orgs.choices import OrgKind

RegionCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}(\d{3}(\d{3})?)?$")
]


class RegionCreate(InputModel):
    code: RegionCode
    name: Name
    parent_code: RegionCode | None = None


class RegionRead(ReadModel):
    code: str
    name: str
    parent_code: str | None
    tier: int


class OrgCreate(InputModel):
    code: Code
    name: Name
    kind: OrgKind
    parent_code: Code | None = None
    region_code: RegionCode


class OrgRead(ReadModel):
    code: str
    name: str
    kind: str
    parent_code: str | None = None
    region_code: str
    created_at: datetime


class StaffCreate(InputModel):
    staff_no: Code
    name: Name
    org_code: Code


class StaffRead(ReadModel):
    staff_no: str
    name: str
    org_code: str


class ItemCreate(InputModel):
    code: Code
    name: Name
    org_code: Code
    basic_code: Code | None = None


class ItemRead(ReadModel):
    code: str
    name: str
    org_code: str
    basic_code: str | None = None


class OrgRename(InputModel):
    name: Name


class OrgMove(InputModel):
    parent_code: Code
