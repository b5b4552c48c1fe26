"""Shared schema pieces: strict input models and the list envelope."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from haochaping.core.errors import Malformed

T = TypeVar("T")

Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]*$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# The largest id a BIGINT column holds: bigger numbers in a path or cursor name nothing.
MAX_ID = 2**63 - 1
# An integer id in a path: 0, negatives and numbers past BIGINT answer 422, never a 500.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
# An id inside a JSON body, bounded the same way (a float or a string is not an id).
BodyId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
MIN_YEAR, MAX_YEAR = 1900, 2999


def _storable_time(value: datetime) -> datetime:
    """An aware time that both databases can hold once converted to UTC."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"时间须在 {MIN_YEAR}–{MAX_YEAR} 年之间") from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"时间须在 {MIN_YEAR}–{MAX_YEAR} 年之间")
    return value


# Date and time of day at the start: what every ISO 8601 timestamp begins with.
_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_8601(value: Any) -> Any:
    """Refuse what pydantic would read as a Unix time (`until=0.5`, `1700000000`, a number)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_8601.match(value)):
        return value
    raise ValueError("时间格式不正确，应为带时区的 ISO 8601，例如 2026-01-01T09:00:00+08:00")


# A timestamp with an offset (ISO 8601), within years that UTC conversion and storage survive;
# in a query string as in a body (a number is not a time).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_storable_time)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(isinstance(v, str) and "\x00" in v for v in value)
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text; refuse it on every backend alike.
        if _has_nul(value):
            raise ValueError("不能包含空字符（U+0000）")
        return value


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
        raise Malformed(
            "分页游标无效", code="invalid_cursor", details=[{"field": "cursor"}]
        ) from exc


def decode_int_cursor(cursor: str | None) -> int | None:
    """An integer key behind a cursor; 400 when it is not one."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_ID:
        raise Malformed("分页游标无效", code="invalid_cursor", details=[{"field": "cursor"}])
    return int(value)


Limit = Annotated[int, Field(ge=1, le=500)]
