"""Fixtures of the closed-loop tests: a bad rating with its work order, signed-in handlers."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from haochaping.accounts.models import User
from haochaping.workorders.models import WorkOrder
from tests.factories import EvaluationPayloadFactory, bearer_headers, make_case

EMAILS = {
    "unit_a": "unit-a@hall.example",
    "unit_b": "unit-b@hall.example",
    "office": "office@province.example",
}


@pytest.fixture
async def handlers(db, world, client):
    """Bearer headers per username; the handlers get e-mail addresses for notifications."""
    for name, email in EMAILS.items():
        await db.execute(update(User).where(User.username == world.users[name]).values(email=email))
    await db.commit()
    return {
        name: await bearer_headers(client, world.users[name])
        for name in ("admin", "office", "unit_a", "unit_b", "assessor")
    }


async def rate_badly(client, db, world, **overrides):
    """A 不满意 at HALL-A's pad; returns (evaluation, work order)."""
    case = await make_case(db, world, **overrides)
    body = EvaluationPayloadFactory(
        case_no=case["case_no"],
        level=2,
        reasons=["213"],
        comment="窗口人员不熟悉业务，让我跑了三趟，电话13812345678",
    )
    r = await client.post(
        "/api/v1/evaluations", json=body, headers={"X-Api-Key": world.keys["hall_a_pad"]}
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == ev["id"]))
    ).scalar_one()
    return ev, order


@pytest.fixture
async def bad(client, db, world, handlers):
    return await rate_badly(client, db, world)
