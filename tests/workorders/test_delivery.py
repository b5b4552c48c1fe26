"""A bad rating's e-mail really arrives, right after the commit that enqueued it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
from sqlalchemy import update

from haochaping import scheduler
from haochaping.accounts.models import User
from haochaping.app import create_app, shutdown, startup
from haochaping.db.session import make_sessionmaker
from tests import factories
from tests.integrations.servers import SmtpSink


async def test_work_order_mail_is_delivered_after_commit(settings, engine):
    suffix = f"-{uuid.uuid4().hex[:6]}"
    handler = f"handler{suffix}@hall.example"
    async with make_sessionmaker(engine)() as db:
        world = await factories.build_world(db, suffix=suffix)
        await db.execute(
            update(User).where(User.username == world.users["unit_a"]).values(email=handler)
        )
        await db.commit()
        case = await factories.make_case(db, world)
    with SmtpSink() as smtp:
        # One delivery takes up to a batch, oldest first: messages other tests committed and
        # left pending (the live server runs no job) must not push the handler's mail out of
        # the batch the wake-up delivers.
        app_settings = settings.model_copy(
            update={"smtp_port": smtp.port, "job_interval_seconds": 3600, "outbox_batch_size": 1000}
        )
        app = create_app(app_settings)
        await startup(app, engine=engine)
        job = asyncio.create_task(scheduler.run_forever(app.state, 3600))
        try:
            await asyncio.sleep(0.5)  # the first pass (sweep) runs at start
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                r = await http.post(
                    "/api/v1/evaluations",
                    headers={"X-Api-Key": world.keys["hall_a_pad"]},
                    json=factories.EvaluationPayloadFactory(
                        case_no=case["case_no"], level=1, reasons=[], comment="排队两小时"
                    ),
                )
                assert r.status_code == 201, r.text
            for _ in range(300):  # no periodic pass is due for an hour: only the wake-up
                if smtp.to(handler):
                    break
                await asyncio.sleep(0.1)
            mails = smtp.to(handler)
            assert len(mails) == 1
            assert "差评工单" in mails[0].message["Subject"]
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            await shutdown(app)
