"""The reason-tag sets: the national core shipped in the package, versioned, seeded in the DB."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.evaluations.models import ReasonTag

NATIONAL_VERSION = "national-2020"


@dataclass(frozen=True, slots=True)
class Tag:
    code: str
    level: int
    text: str


def national_tags() -> list[Tag]:
    """The national tag set as shipped (copied from spec/reason-codes.csv at build time)."""
    text = (
        resources.files("haochaping.evaluations")
        .joinpath("data/reason-codes.csv")
        .read_text(encoding="utf-8")
    )
    return [Tag(r["code"], int(r["level"]), r["text"]) for r in csv.DictReader(text.splitlines())]


async def seed(db: AsyncSession) -> int:
    """Insert the national set's tags that are missing; returns how many were added."""
    have = set(
        (
            await db.execute(select(ReasonTag.code).where(ReasonTag.version == NATIONAL_VERSION))
        ).scalars()
    )
    added = 0
    for tag in national_tags():
        if tag.code not in have:
            db.add(
                ReasonTag(version=NATIONAL_VERSION, code=tag.code, level=tag.level, text=tag.text)
            )
            added += 1
    await db.flush()
    return added


async def load(db: AsyncSession) -> dict[str, dict[str, Tag]]:
    """Every tag set in the database: {version: {code: Tag}}."""
    sets: dict[str, dict[str, Tag]] = {}
    for row in (await db.execute(select(ReasonTag))).scalars():
        sets.setdefault(row.version, {})[row.code] = Tag(row.code, row.level, row.text)
    return sets
