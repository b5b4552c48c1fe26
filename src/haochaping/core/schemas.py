"""Shared schema pieces: strict input models and the list envelope."""

from __future__ import annotations

import base64
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from haochaping.core.errors import Malformed

T = TypeVar("T")

Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50,
                           pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]*$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """Every list answers `{"items": [...], "next_cursor": ...}`."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last: int | str) -> str:
    """An opaque cursor for keyset pagination (the last key of the page)."""
    return base64.urlsafe_b64encode(f"k:{last}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key behind a cursor; 400 when it was not made by us."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "k" or not value:
            raise ValueError(kind)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("分页游标无效", code="invalid_cursor",
                        details=[{"field": "cursor"}]) from exc


def decode_int_cursor(cursor: str | None) -> int | None:
    """An integer key behind a cursor; 400 when it is not one."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not value.isdigit():
        raise Malformed("分页游标无效", code="invalid_cursor", details=[{"field": "cursor"}])
    return int(value)


Limit = Annotated[int, Field(ge=1, le=500)]
