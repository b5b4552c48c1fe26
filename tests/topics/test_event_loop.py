"""The topics job's CPU work (building the jieba lexicon) runs in a thread: the server's event
loop, which the periodic job shares with the requests, goes on answering meanwhile."""

from __future__ import annotations

import asyncio
import time

from haochaping.topics import jobs, segment


async def test_building_the_lexicon_leaves_the_event_loop_free(db):
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    segment.forget_base_dictionary()  # the first build of a process: the whole dictionary
    ticks = asyncio.create_task(ticker())
    started = time.perf_counter()
    await jobs.Lexicons().current(db)  # a new jieba dictionary: a second or more of CPU
    took = time.perf_counter() - started
    done.set()
    await ticks
    # On the loop, the build would be one gap as long as the build itself; jieba's marshal
    # cache, even in a thread, one gap of a quarter of a second (the GIL held throughout).
    assert took > 0.2 and max(gaps) < min(took / 2, 0.15), (took, max(gaps))
