"""What an inspection visit and a region's checklist are made of (validated input)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints, field_validator

from haochaping.core.schemas import Code, InputModel, Timestamp
from haochaping.evaluations.schemas import ReasonCode

ITEM_MAX = 60  # characters of one inspection item
ITEMS_MAX = 15  # items of a region's checklist
NOTES_MAX = 800  # the failed items and the notes together stay within a rating's comment
PHOTOS_MAX = 6
PHOTO_MAX_BYTES = 5 * 1024 * 1024

ChecklistItem = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=ITEM_MAX)
]


ItemIndex = Annotated[StrictInt, Field(ge=0, lt=ITEMS_MAX)]


class ChecklistUpdate(InputModel):
    """A region's new list of inspection items, in the order inspectors see them."""

    items: Annotated[list[ChecklistItem], Field(min_length=1, max_length=ITEMS_MAX)]

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[str]) -> list[str]:
        if len(set(items)) != len(items):
            raise ValueError("检查项目有重复")
        return items


class VisitCreate(InputModel):
    """One visit as the inspector records it: the unit, which items passed, the level."""

    org_code: Code
    visited_at: Timestamp | None = None
    # Indexes (from 0) of the region's checklist items the unit passed; the others failed.
    passed: Annotated[list[ItemIndex], Field(max_length=ITEMS_MAX)] = []
    level: Annotated[StrictInt, Field(ge=1, le=5)]
    reasons: Annotated[list[ReasonCode], Field(max_length=20)] = []
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=NOTES_MAX)] | None = (
        None
    )
