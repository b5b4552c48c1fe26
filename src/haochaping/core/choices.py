"""Stored values with their Chinese labels, defined once (NetBox's `ChoiceSet`).

A choice set is a `StrEnum` whose members are declared as `(value, label)`: the value is
what is stored and sent, the label what people read. Forms take `choices()`, CHECK
constraints `check_in()`, templates `.label`. `IntChoiceSet` is the same for stored integers
(a rating's level, a region's tier), with `check_between()` for its CHECK constraint.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum
from typing import Any, Self


class _Labelled:
    """What both kinds of choice set share: each member's label and the lookups."""

    _label_: str

    @property
    def label(self) -> str:
        """What people read for this value."""
        return self._label_

    @classmethod
    def values(cls) -> list[Any]:
        """The stored values, in declaration order."""
        return [m.value for m in cls]  # type: ignore[attr-defined]

    @classmethod
    def labels(cls) -> dict[Any, str]:
        """Value -> label, for templates and lookups by a stored value."""
        return {m.value: m.label for m in cls}  # type: ignore[attr-defined]

    @classmethod
    def choices(cls) -> list[tuple[Any, str]]:
        """(value, label) pairs for a form's select, in declaration order."""
        return [(m.value, m.label) for m in cls]  # type: ignore[attr-defined]

    @classmethod
    def label_of(cls, value: Any, default: str = "") -> str:
        """The label of a stored value; `default` for None or an unknown value."""
        try:
            return cls(value).label if value is not None else default  # type: ignore[call-arg]
        except ValueError:
            return default


class ChoiceSet(_Labelled, StrEnum):
    """A `StrEnum` whose members carry a Chinese label: `Member = "value", "标签"`."""

    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member._label_ = label or value
        return member


class IntChoiceSet(_Labelled, IntEnum):
    """An `IntEnum` whose members carry a Chinese label: `Member = 1, "标签"`."""

    def __new__(cls, value: int, label: str = "") -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member._label_ = label or str(value)
        return member


def check_in(column: str, values: Iterable[str]) -> str:
    """SQL text for a CHECK constraint: `column IN ('a', 'b')`, from the given values."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def check_between(column: str, values: Iterable[int]) -> str:
    """SQL text for a CHECK constraint: `column BETWEEN low AND high` over the given values
    (which must be consecutive)."""
    ordered = sorted(values)
    assert ordered == list(range(ordered[0], ordered[-1] + 1)), "values must be consecutive"
    return f"{column} BETWEEN {ordered[0]} AND {ordered[-1]}"
