"""Group commit for single ratings: requests that arrive together share one transaction.

A request hands its rating to the `GroupWriter` and waits. The writer takes what has queued
(up to `max_size`, waiting at most `wait_seconds` for more), checks and stores the group
through `service.store_group` — the cases in one query, the rows in one multi-row INSERT, the
hooks once — commits, and only then answers each request: its 201 is as durable as before.

Each rating keeps its own answer. A refusal that the checks or the INSERT find (404, 409,
422, ...) fails only that rating. Anything else that breaks the group's transaction (a hook's
error, a constraint the checks did not foresee) rolls the group back and each rating is then
stored alone, in its own transaction, as without the writer; a failure at COMMIT itself fails
the whole group (the outcome is unknown, so nothing is retried).

The writer is the unit of work of these requests (STYLE rule 1: it commits at the edge, in
place of the handler). Requests with an `Idempotency-Key` do not come here: their claim row
must be committed with the rating or not at all, which a shared transaction would blur.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haochaping.core.errors import DomainError
from haochaping.evaluations import service

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    submission: service.Submission
    future: asyncio.Future[dict[str, Any]] = field(repr=False)


class _CommitFailed(Exception):
    """COMMIT itself failed: whether the group was stored is unknown."""


class GroupWriter:
    """Collects single ratings and stores each group in one transaction (one per process)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        rules: Callable[[], service.IntakeRules],
        max_size: int = 64,
        wait_seconds: float = 0.002,
        writers: int = 1,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.rules = rules  # read per group: the app replaces its rules after startup
        self.max_size = max_size
        self.wait_seconds = wait_seconds
        self.writers = writers
        self._queue: deque[_Waiting] = deque()
        # The writer tasks run while ratings wait and end when none do: no task outlives the
        # requests that started it (nor an event loop).
        self._tasks: set[asyncio.Task[None]] = set()
        # Figures for the benchmark and the tests: groups written and ratings in them.
        self.groups = 0
        self.ratings = 0

    async def submit(self, submission: service.Submission) -> dict[str, Any]:
        """Store one rating with whatever else is waiting; its answer body after COMMIT, or
        its refusal raised."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(submission, future))
        if len(self._tasks) < self.writers:
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        """Let the writers finish what waits (the server stops taking requests first)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        queue = self._queue
        while queue:
            group = self._take()
            if len(group) < self.max_size and self.wait_seconds > 0:
                await asyncio.sleep(self.wait_seconds)
                group += self._take(self.max_size - len(group))
            try:
                await self._write(group)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any group
                log.exception("rating group of %d could not be written", len(group))
                for waiting in group:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)
        # Leave the set now, with no await since the queue was seen empty: a rating queued
        # from here on starts a writer of its own.
        self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _take(self, most: int | None = None) -> list[_Waiting]:
        queue = self._queue
        n = min(len(queue), self.max_size if most is None else most)
        return [queue.popleft() for _ in range(n)]

    async def _write(self, group: list[_Waiting]) -> None:
        group = [w for w in group if not w.future.done()]  # a request cancelled while waiting
        if not group:
            return
        rules = self.rules()
        try:
            outcomes = await self._store(group, rules)
        except _CommitFailed as exc:
            raise exc.__cause__ or exc from None
        except Exception:  # noqa: BLE001 - one rating broke the transaction: each alone
            log.info("rating group of %d rolled back; storing each alone", len(group))
            for waiting in group:
                await self._alone(waiting, rules)
            return
        self.groups += 1
        self.ratings += len(group)
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, DomainError):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome["evaluation"])

    async def _store(
        self, group: list[_Waiting], rules: service.IntakeRules
    ) -> list[dict[str, Any] | DomainError]:
        async with self.sessionmaker() as db:
            outcomes = await service.store_group(
                db=db, submissions=[w.submission for w in group], rules=rules
            )
            try:
                await db.commit()
            except Exception as exc:
                raise _CommitFailed from exc
        return outcomes

    async def _alone(self, waiting: _Waiting, rules: service.IntakeRules) -> None:
        sub = waiting.submission
        try:
            async with self.sessionmaker() as db:
                body = await service.submit(
                    db=db, actor=sub.actor, data=sub.data, rules=rules, source=sub.source
                )
                await db.commit()
        except Exception as exc:  # noqa: BLE001 - handed to the request, which answers it
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            return
        if not waiting.future.done():
            waiting.future.set_result(body)
