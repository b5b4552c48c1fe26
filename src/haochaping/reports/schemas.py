"""What the reports' routes answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ReportRead(BaseModel):
    """One archived monthly report: its region and month, when it was written, and the SM3
    digest (hex) of its workbook."""

    id: int
    region_code: str
    month: str
    created_at: datetime
    sm3: str


class ReportList(BaseModel):
    items: list[ReportRead]
