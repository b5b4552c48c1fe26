"""The deadline job while the database is down: passes back off exponentially (capped) and
the log says it once when passes start failing and once when they work again."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from haochaping import scheduler
from haochaping.app import create_app, shutdown, startup
from haochaping.db import migrate
from haochaping.db.session import make_sessionmaker
from tests.core.test_db_unavailable import dead_url


def test_backoff_doubles_up_to_its_cap():
    delays = [scheduler.backoff_delay(n, base=1.0, cap=60.0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert scheduler.backoff_delay(10_000, base=1.0, cap=60.0) == 60


async def test_deadline_job_backs_off_and_logs_once_per_state_change(settings, tmp_path, caplog):
    # The job's own database: a fresh SQLite file, so its passes touch no other test's rows;
    # the outage is on the backend under test (a closed PostgreSQL port, an unopenable file).
    own = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/job.db",
            "sms_log_path": str(tmp_path / "sms.jsonl"),
        }
    )
    await asyncio.to_thread(migrate.upgrade, own)
    app = create_app(own)
    await startup(app)
    live = app.state.sessionmaker
    dead = create_async_engine(dead_url(settings, tmp_path))
    attempts = 0

    @event.listens_for(dead.sync_engine, "do_connect")
    def _count(*_args):
        nonlocal attempts
        attempts += 1

    app.state.sessionmaker = make_sessionmaker(dead)
    caplog.set_level(logging.INFO, logger="haochaping.jobs")
    job = asyncio.create_task(
        scheduler.run_forever(app.state, 0.05, backoff_base=0.02, backoff_max=0.16)
    )
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(1.2)
        while attempts < 4 and loop.time() - start < 10:  # a loaded machine: give it time
            await asyncio.sleep(0.1)
        elapsed = loop.time() - start
        # Waits of 0.02, 0.04, 0.08, then 0.16 s: about ten passes in 1.2 s, never more than
        # ~7 a second after the first few. Retrying at once (the defect) made thousands a
        # second, each with a traceback.
        assert 4 <= attempts <= 8 + 7 * elapsed, (attempts, elapsed)
        records = [r for r in caplog.records if r.name == "haochaping.jobs"]
        assert [(r.levelno, r.exc_info is not None) for r in records] == [(logging.ERROR, True)]

        app.state.sessionmaker = live  # the database is back
        for _ in range(100):
            if any("recovered" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        records = [r for r in caplog.records if r.name == "haochaping.jobs"]
        assert len(records) == 2
        assert records[1].getMessage() == f"deadline job recovered after {attempts} failed passes"
        settled = attempts
        await asyncio.sleep(0.3)
        assert attempts == settled  # passes now run on the live database
        assert len([r for r in caplog.records if r.name == "haochaping.jobs"]) == 2
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        await dead.dispose()
        await shutdown(app)
