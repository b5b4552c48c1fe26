"""At intake: a rating by a registered malicious rater is accepted but held out of the
statistics until reviewed. The register is small; each process caches it for 30 s, and a
change to it (after its commit) bumps a version shared through Redis when configured, so
every process reads the new register at its next rating. Only an entry's expiry is seen up
to 30 s late."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.appeals.models import MaliciousRater
from haochaping.core.ratelimit import Counter, CounterUnavailable
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.standing import Standing, StandingReason, set_standing

CACHE_SECONDS = 30.0
REGISTER_VERSION_KEY = "malicious-register-version"


class RegisterCache:
    """The active register's identity hashes, read again after `CACHE_SECONDS` or as soon as
    the shared version moves (the rate-limit counter: Redis when configured, else memory)."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._hashes: frozenset[str] = frozenset()
        self._until = 0.0
        self._version = 0

    async def clear(self) -> None:
        """The register changed (call after the commit): no process keeps its copy."""
        self._until = 0.0
        with contextlib.suppress(CounterUnavailable):  # then the others' copies age out
            await self.counter.bump(REGISTER_VERSION_KEY)

    async def get(self, db: AsyncSession) -> frozenset[str]:
        try:
            version = await self.counter.value(REGISTER_VERSION_KEY)
        except CounterUnavailable:
            version = -1  # a change elsewhere could go unseen: read the register every time
        now = time.monotonic()
        if now > self._until or version != self._version or version < 0:
            rows = (
                await db.execute(
                    select(MaliciousRater.identity_hash).where(
                        MaliciousRater.active.is_(True), MaliciousRater.expires_at > utcnow()
                    )
                )
            ).scalars()
            self._hashes, self._until = frozenset(rows), now + CACHE_SECONDS
            self._version = version
        return self._hashes


def make_register_hook(
    state: Any,
) -> Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]:
    """The intake hook that holds ratings of registered raters."""

    async def on_stored(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        hashes = await state.register_cache.get(db)
        if not hashes:
            return
        identity_hash = state.keys.identity_hash
        for row in rows:
            # Rows from intake carry the keyed hashes already (evaluations.service.build_row).
            mine = {
                row.get("rater_cert_hash") or identity_hash(row.get("rater_cert_no"), "cert"),
                row.get("rater_phone_hash") or identity_hash(row.get("rater_phone"), "phone"),
            } - {None}
            if mine & hashes:
                await set_standing(
                    db=db,
                    evaluation_id=row["id"],
                    standing=Standing.HELD,
                    reason=StandingReason.MALICIOUS_RATER.value,
                    actor="系统",
                    note="评价人在恶意评价人员信息库中，待复核",
                )

    return on_stored
