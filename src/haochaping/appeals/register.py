"""At intake: a rating by a registered malicious rater is accepted but held out of the
statistics until reviewed. The register is small; it is cached per process for 30 s."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appeals.models import MaliciousRater
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, set_standing

CACHE_SECONDS = 30.0


class RegisterCache:
    """The active register's identity hashes."""

    def __init__(self) -> None:
        self._hashes: frozenset[str] = frozenset()
        self._until = 0.0

    def clear(self) -> None:
        self._until = 0.0

    async def get(self, db: AsyncSession) -> frozenset[str]:
        now = time.monotonic()
        if now > self._until:
            rows = (await db.execute(select(MaliciousRater.identity_hash).where(
                MaliciousRater.active.is_(True), MaliciousRater.expires_at > utcnow()))).scalars()
            self._hashes, self._until = frozenset(rows), now + CACHE_SECONDS
        return self._hashes


def make_register_hook(state: Any) -> Callable[[AsyncSession, list[dict[str, Any]]],
                                               Awaitable[None]]:
    """The intake hook that holds ratings of registered raters."""

    async def on_stored(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        hashes = await state.register_cache.get(db)
        if not hashes:
            return
        identity_hash = state.keys.identity_hash
        for row in rows:
            # Rows from intake carry the keyed hashes already (evaluations.service.build_row).
            mine = {row.get("rater_cert_hash") or identity_hash(row.get("rater_cert_no")),
                    row.get("rater_phone_hash") or identity_hash(row.get("rater_phone"))
                    } - {None}
            if mine & hashes:
                await set_standing(db=db, evaluation_id=row["id"], standing=Standing.HELD,
                                   reason="malicious_rater", actor="系统",
                                   note="评价人在恶意评价人员信息库中，待复核")

    return on_stored
