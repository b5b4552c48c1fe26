"""Who may act on a work order's rating (issue 8): the follow-up rating belongs to the rater
(their link, or a channel client posting for them), a callback verdict stays the caller's on
record, the follow-up body is validated like a rating, and every id in a path is bounded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from haochaping.accounts import service as account_service
from haochaping.evaluations.models import Evaluation
from haochaping.workorders.loop import context_for
from haochaping.workorders.models import CallbackAttempt, WorkOrder, WorkOrderEvent
from tests.factories import assert_error, bearer_headers

WO = "/api/v1/work-orders"


async def act(client, headers, order_id, **body):
    r = await client.post(f"{WO}/{order_id}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def answered(client, db, world, bad, handlers):
    """The bad rating's order after the unit reported rectification: a follow-up is open."""
    ev, order = bad
    await act(client, handlers["unit_a"], order.id, action="verify", note="属实")
    await act(client, handlers["unit_a"], order.id, action="report_rectified", note="已整改")
    await db.refresh(order)
    assert order.state == "callback"
    return ev, order


async def followups_of(db, ev) -> list[Evaluation]:
    first = await db.get(Evaluation, ev["id"])
    return list(
        (
            await db.execute(
                select(Evaluation).where(
                    Evaluation.case_id == first.case_id, Evaluation.eval_count == 2
                )
            )
        ).scalars()
    )


async def client_key(db, name: str, org: str, channels: list[str]) -> dict[str, str]:
    _, key = await account_service.create_client(db=db, name=name, org_code=org, channels=channels)
    await db.commit()
    return {"X-Api-Key": key}


async def test_no_person_may_give_the_raters_follow_up(client, db, world, answered, handlers):
    ev, order = answered
    await account_service.create_user(
        db=db, username="staff_a", password="pw-staff-a-123456", role="staff", org_code="W-A1"
    )
    await db.commit()
    people = {**handlers, "staff": await bearer_headers(client, "staff_a", "pw-staff-a-123456")}
    # unit_b lies outside the order's units: it does not even see the order. The staff of
    # the window rated see it (issue 11), and may not rate for the rater either.
    expected = {
        "admin": "followup_rater_only",
        "office": "followup_rater_only",
        "unit_a": "followup_rater_only",
        "assessor": "followup_rater_only",
        "unit_b": "out_of_scope",
        "staff": "followup_rater_only",
    }
    for name, code in expected.items():
        for body in ({"level": 5}, {"level": 5, "channel": "pad"}):
            r = await client.post(f"{WO}/{order.id}/follow-up", json=body, headers=people[name])
            assert_error(r, 403, code)
    assert await followups_of(db, ev) == []
    await db.refresh(order)
    assert (order.state, order.followups, order.closed_at) == ("callback", 0, None)


async def test_a_channel_client_posts_for_the_rater_and_is_named(client, db, world, answered):
    ev, order = answered
    key = {"X-Api-Key": world.keys["all"]}  # OFFICE, every channel
    r = await client.post(
        f"{WO}/{order.id}/follow-up",
        json={"level": 5, "reasons": ["517"], "channel": "sms"},
        headers=key,
    )
    assert r.status_code == 201, r.text
    assert r.json()["work_order_state"] == "closed"
    [stored] = await followups_of(db, ev)
    first = await db.get(Evaluation, ev["id"])
    assert (stored.channel, stored.level, stored.user_id) == ("sms", 5, None)
    assert stored.client_id is not None and stored.client_id != first.client_id
    event = (
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id.desc())
            )
        )
        .scalars()
        .first()
    )
    assert (event.actor_kind, event.actor_id, event.actor_name) == (
        "client",
        stored.client_id,
        "all",
    )
    assert event.data["channel"] == "sms" and event.data["client_id"] == stored.client_id
    assert event.data["followup_evaluation_id"] == stored.id


async def test_clients_out_of_scope_or_without_the_channel_are_refused(client, db, world, answered):
    ev, order = answered
    pad = {"X-Api-Key": world.keys["hall_a_pad"]}  # HALL-A: pad and qrcode only
    cases = [
        ({"X-Api-Key": world.keys["hall_b"]}, {"level": 5}, 403, "out_of_scope"),
        (pad, {"level": 5, "channel": "sms"}, 403, "channel_out_of_scope"),
        (pad, {"level": 5, "channel": "review"}, 422, "channel_not_case_bound"),
        (
            await client_key(db, "hall_a_review", "HALL-A", ["review"]),
            {"level": 5},
            403,
            "channel_out_of_scope",
        ),  # the first rating's channel (pad) is not its own
        (
            await client_key(db, "hall_a_review2", "HALL-A", ["review"]),
            {"level": 5, "channel": "review"},
            422,
            "channel_not_case_bound",
        ),
    ]
    for headers, body, status, code in cases:
        r = await client.post(f"{WO}/{order.id}/follow-up", json=body, headers=headers)
        assert_error(r, status, code)
    assert await followups_of(db, ev) == []
    r = await client.post(
        f"{WO}/{order.id}/follow-up", json={"level": 5, "reasons": ["517"]}, headers=pad
    )  # its own channel, the one of the first rating
    assert r.status_code == 201, r.text
    [stored] = await followups_of(db, ev)
    assert stored.channel == "pad"


async def test_the_raters_link_stores_the_follow_up_as_theirs(app, client, db, world, answered):
    ev, order = answered
    ctx = await context_for(app.state, db)
    token = ctx.progress_token(ev["id"])
    r = await client.post(f"/p/{token}/follow-up", data={"level": "1", "comment": "还是没改好"})
    assert r.status_code == 303, r.text
    [stored] = await followups_of(db, ev)
    assert (stored.client_id, stored.user_id, stored.user_agent) == (None, None, "link")
    event = (
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id.desc())
            )
        )
        .scalars()
        .first()
    )
    assert (event.actor_kind, event.actor_name, event.to_state) == (
        "citizen",
        "评价人",
        "supervising",
    )


async def test_a_staff_callback_is_the_callers_record_not_a_rating(
    client, db, world, answered, handlers
):
    ev, order = answered
    body = await act(
        client,
        handlers["unit_a"],
        order.id,
        action="callback",
        method="phone",
        reached=True,
        verdict="satisfied",
        note="电话回访，评价人表示满意",
    )
    assert body["state"] == "closed"
    assert await followups_of(db, ev) == []
    first = await db.get(Evaluation, ev["id"])
    assert (
        await db.execute(
            select(func.count()).select_from(Evaluation).where(Evaluation.case_id == first.case_id)
        )
    ).scalar_one() == 1
    event = (
        (
            await db.execute(
                select(WorkOrderEvent)
                .where(WorkOrderEvent.work_order_id == order.id)
                .order_by(WorkOrderEvent.id.desc())
            )
        )
        .scalars()
        .first()
    )
    assert (event.actor_kind, event.actor_name) == ("user", world.users["unit_a"])
    assert event.data == {"method": "phone", "reached": True, "verdict": "satisfied"}
    attempt = (
        await db.execute(select(CallbackAttempt).where(CallbackAttempt.work_order_id == order.id))
    ).scalar_one()
    assert (attempt.actor_name, attempt.method) == (world.users["unit_a"], "phone")
    await db.refresh(order)
    assert order.followups == 0  # the rater's own follow-up is still theirs to give


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"level": 2, "reasons": ["a b"]}, "invalid_input"),
        ({"level": 2, "reasons": ["x" * 17]}, "invalid_input"),
        ({"level": 2, "reasons": ["999"]}, "unknown_reason"),
        ({"level": 2, "reasons": ["517"]}, "reason_level_mismatch"),
        ({"level": 2}, "reason_required"),
        ({"level": 2, "comment": "x" * 2001}, "invalid_input"),
        ({"level": 6}, "invalid_input"),
        ({"level": "5"}, "invalid_input"),
        ({"level": 5, "channel": "fax"}, "invalid_input"),
    ],
)
async def test_a_malformed_follow_up_is_422_and_stores_nothing(
    client, db, world, answered, body, code
):
    ev, order = answered
    r = await client.post(
        f"{WO}/{order.id}/follow-up", json=body, headers={"X-Api-Key": world.keys["hall_a_pad"]}
    )
    assert_error(r, 422, code)
    assert await followups_of(db, ev) == []
    await db.refresh(order)
    assert (order.state, order.followups) == ("callback", 0)


BAD_IDS = [0, -1, 2**63]


async def test_ids_in_paths_are_bounded(client, db, world, bad, handlers):
    _ev, order = bad
    unit = handlers["unit_a"]
    key = {"X-Api-Key": world.keys["hall_a_pad"]}
    for bad_id in BAD_IDS:
        routes = [
            ("get", f"{WO}/{bad_id}", unit, {}),
            (
                "post",
                f"{WO}/{bad_id}/actions",
                unit,
                {"json": {"action": "verify", "note": "属实"}},
            ),
            (
                "post",
                f"{WO}/{bad_id}/attachments",
                unit,
                {"files": {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")}},
            ),
            ("get", f"{WO}/{bad_id}/attachments/1", unit, {}),
            ("get", f"{WO}/{order.id}/attachments/{bad_id}", unit, {}),
            ("post", f"{WO}/{bad_id}/reveal-phone", unit, {}),
            ("post", f"{WO}/{bad_id}/follow-up", key, {"json": {"level": 5}}),
            (
                "post",
                f"/api/v1/spot-checks/{bad_id}/callback",
                handlers["office"],
                {"json": {"method": "phone", "reached": False}},
            ),
        ]
        for method, path, headers, extra in routes:
            r = await client.request(method.upper(), path, headers=headers, **extra)
            err = assert_error(r, 422, "invalid_input")
            assert err["details"], (path, err)
    for bad_id in BAD_IDS:
        r = await client.post(
            f"{WO}/{order.id}/actions",
            headers=unit,
            json={"action": "verify", "note": "属实", "attachment_ids": [bad_id]},
        )
        assert_error(r, 422, "invalid_input")
    await db.refresh(order)
    assert order.state == "verifying"
    assert (await db.get(WorkOrder, order.id)).version == order.version
