"""The reason-tag sets: the national core shipped in the package, versioned, seeded in the DB."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
    """Insert the national set's tags that are missing; returns how many were missing."""
    have = set(
        (
            await db.execute(select(ReasonTag.code).where(ReasonTag.version == NATIONAL_VERSION))
        ).scalars()
    )
    missing = [
        {"version": NATIONAL_VERSION, "code": t.code, "level": t.level, "text": t.text}
        for t in national_tags()
        if t.code not in have
    ]
    if missing:
        # Every worker of `serve --workers N` seeds at startup on a fresh database: the
        # workers race, and a plain INSERT made the loser fail to start (and the server with
        # it). What another process inserted first is skipped.
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        await db.execute(
            insert(ReasonTag).on_conflict_do_nothing(index_elements=["version", "code"]),
            missing,
        )
    return len(missing)


async def load(db: AsyncSession) -> dict[str, dict[str, Tag]]:
    """Every tag set in the database: {version: {code: Tag}}."""
    sets: dict[str, dict[str, Tag]] = {}
    for row in (await db.execute(select(ReasonTag))).scalars():
        sets.setdefault(row.version, {})[row.code] = Tag(row.code, row.level, row.text)
    return sets
