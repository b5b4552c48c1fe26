"""POST /api/v1/evaluations/batch: one result per item, in order; items are independent."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from haochaping.accounts.models import User
from haochaping.cases.models import Case
from haochaping.core.outbox_models import OutboxMessage
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Item, Org, Staff
from haochaping.workorders.models import WorkOrder, WorkOrderEvent, WorkOrderUnit
from tests.factories import (
    STAGES_ACCEPT_COMPLETE,
    EvaluationPayloadFactory,
    assert_error,
    key_headers,
    make_case,
    now,
    publish_policy,
    table_counts,
)


def batch(client, headers, items):
    return client.post("/api/v1/evaluations/batch", json={"items": items}, headers=headers)


async def ratings_of(db, case_no: str) -> list[Evaluation]:
    return list(
        (
            await db.execute(
                select(Evaluation)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case_no)
            )
        ).scalars()
    )


def item_error(result: dict, status: int, code: str) -> dict:
    assert result["status"] == status, result
    err = result["error"]
    assert err["code"] == code and err["message"] and isinstance(err["details"], list), err
    return err


async def test_each_item_gets_its_own_answer_in_order(client, db, world):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    a, b, c = [await make_case(db, world) for _ in range(3)]
    stored_before = await make_case(db, world)
    first = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json=EvaluationPayloadFactory(case_no=stored_before["case_no"]),
    )
    items = [
        EvaluationPayloadFactory(case_no=a["case_no"]),  # 0 stored
        EvaluationPayloadFactory(case_no=a["case_no"], level=4, reasons=[]),  # 1 dup in batch
        EvaluationPayloadFactory(case_no=stored_before["case_no"]),  # 2 dup of stored
        {**EvaluationPayloadFactory(case_no=b["case_no"]), "level": 6},  # 3 invalid
        "not an object",  # 4
        EvaluationPayloadFactory(case_no="HZ-NOPE"),  # 5 unknown case
        EvaluationPayloadFactory(
            case_no=b["case_no"], level=1, reasons=[], comment=None
        ),  # 6 no reason
        EvaluationPayloadFactory(
            case_no=c["case_no"], level=2, reasons=["213"], comment="材料要求不清楚"
        ),  # 7 stored
        {"channel": "review", "org_code": "W-A2", "level": 4},  # 8 stored
        EvaluationPayloadFactory(case_no=b["case_no"], stage="accept"),  # 9 stored
    ]
    r = await batch(client, key_headers(world), items)
    assert r.status_code == 200, r.text
    results = r.json()["items"]
    assert [x["status"] for x in results] == [201, 409, 409, 422, 422, 404, 422, 201, 201, 201]
    assert item_error(results[1], 409, "duplicate_evaluation")["details"] == [
        {"id": results[0]["id"]}
    ]
    assert item_error(results[2], 409, "duplicate_evaluation")["details"] == [
        {"id": first.json()["id"]}
    ]
    assert item_error(results[3], 422, "invalid_input")["details"][0]["field"] == "level"
    item_error(results[4], 422, "invalid_input")
    item_error(results[5], 404, "case_not_found")
    item_error(results[6], 422, "reason_required")
    for i in (0, 7, 8, 9):
        row = await db.get(Evaluation, results[i]["id"])
        assert row is not None and row.id == results[i]["id"]
        assert results[i]["evaluation"]["id"] == results[i]["id"]
    assert [e.level for e in await ratings_of(db, a["case_no"])] == [5]
    assert [e.stage for e in await ratings_of(db, b["case_no"])] == ["accept"]
    assert [e.level for e in await ratings_of(db, c["case_no"])] == [2]


async def test_a_duplicate_pair_of_an_already_rated_case_names_the_stored_rating(client, db, world):
    case = await make_case(db, world)
    body = EvaluationPayloadFactory(case_no=case["case_no"])
    stored = (
        await client.post("/api/v1/evaluations", json=body, headers=key_headers(world))
    ).json()["id"]
    r = await batch(client, key_headers(world), [body, body, body])
    for result in r.json()["items"]:
        assert item_error(result, 409, "duplicate_evaluation")["details"] == [{"id": stored}]


async def test_refusals_inside_a_batch_store_nothing(client, db, world):
    case = await make_case(db, world)
    before = await table_counts(db)
    items = [
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "comment": "a\x00b"},
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "org_code": "HALL-A"},
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "reasons": ["113"]},
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "channel": "sms"},
        {**EvaluationPayloadFactory(case_no=case["case_no"]), "extra": True},
        [1, 2],
        None,
        5,
    ]
    r = await batch(client, key_headers(world, "hall_a_pad"), items)
    results = r.json()["items"]
    assert [x["status"] for x in results] == [422, 422, 422, 403, 422, 422, 422, 422]
    item_error(results[1], 422, "target_conflict")
    item_error(results[2], 422, "reason_level_mismatch")
    item_error(results[3], 403, "channel_out_of_scope")
    assert await table_counts(db) == before


async def test_items_outside_the_keys_scope_fail_alone(client, db, world):
    mine = await make_case(db, world)
    theirs = await make_case(
        db, world, org_code="HALL-B", window_code="W-B1", staff_no="S-B1", item_code="ITEM-B1"
    )
    r = await batch(
        client,
        key_headers(world, "hall_a_pad"),
        [
            EvaluationPayloadFactory(case_no=theirs["case_no"]),
            EvaluationPayloadFactory(case_no=mine["case_no"]),
        ],
    )
    results = r.json()["items"]
    item_error(results[0], 403, "out_of_scope")
    assert results[1]["status"] == 201
    assert await ratings_of(db, theirs["case_no"]) == []


async def test_batch_answers_mask_personal_data(client, db, world):
    case = await make_case(db, world)
    r = await batch(client, key_headers(world), [EvaluationPayloadFactory(case_no=case["case_no"])])
    assert r.json()["items"][0]["evaluation"]["rater"]["name"] == "张*"
    assert case["applicant"]["cert_no"] not in r.text
    assert case["applicant"]["phone"] not in r.text


async def test_a_thousand_buffered_pad_ratings_are_accepted(client, db, world):
    """A window pad that was offline for a day sends its 1,000 ratings at once."""
    org, window, item, staff = [
        (await db.execute(select(model.id).where(column == code))).scalar_one()
        for model, column, code in (
            (Org, Org.code, "HALL-A"),
            (Org, Org.code, "W-A1"),
            (Item, Item.code, "ITEM-A1"),
            (Staff, Staff.staff_no, "S-A1"),
        )
    ]
    stamp = now() - timedelta(hours=3)
    case_nos = [f"PAD-{uuid.uuid4().hex[:12]}-{i}" for i in range(1000)]
    db.add_all(
        [
            Case(
                case_no=no,
                item_id=item,
                org_id=org,
                window_id=window,
                staff_id=staff,
                mode="offline",
                status="completed",
                applicant_type="person",
                applicant_name="张三",
                received_at=stamp,
                accepted_at=stamp,
                completed_at=stamp,
            )
            for no in case_nos
        ]
    )
    await db.commit()
    items = [
        {"case_no": no, "channel": "pad", "level": 5 - i % 3, "reasons": [], "comment": f"第{i}条"}
        for i, no in enumerate(case_nos)
    ]
    r = await batch(client, key_headers(world, "hall_a_pad"), items)
    assert r.status_code == 200
    results = r.json()["items"]
    assert len(results) == 1000 and {x["status"] for x in results} == {201}
    assert [x["evaluation"]["case_no"] for x in results] == case_nos  # in order
    ids = [x["id"] for x in results]
    assert len(set(ids)) == 1000
    assert (
        await db.execute(select(func.count()).select_from(Evaluation).where(Evaluation.id.in_(ids)))
    ).scalar_one() == 1000


async def test_more_than_a_thousand_items_are_refused_whole(client, db, world):
    before = await table_counts(db)
    items = [{"channel": "review", "org_code": "HALL-A", "level": 5}] * 1001
    err = assert_error(await batch(client, key_headers(world), items), 422, "invalid_input")
    assert err["details"][0]["field"] == "items" and err["details"][0]["type"] == "too_long"
    assert await table_counts(db) == before


async def test_malformed_batches_are_refused(client, db, world):
    headers = key_headers(world)
    before = await table_counts(db)
    for body in (
        {"items": []},
        {"items": "x"},
        {},
        {"items": [{}], "source": "pad"},
        [],
        {"items": None},
    ):
        r = await client.post("/api/v1/evaluations/batch", json=body, headers=headers)
        assert_error(r, 422, "invalid_input")
    r = await client.post(
        "/api/v1/evaluations/batch",
        content=b'{"items": [',
        headers={**headers, "content-type": "application/json"},
    )
    assert_error(r, 400, "malformed_json")
    assert_error(
        await client.post("/api/v1/evaluations/batch", json={"items": [{}]}), 401, "unauthenticated"
    )
    assert await table_counts(db) == before


async def test_bad_ratings_in_a_batch_notify_as_single_ones_do(client, db, world):
    """The work orders a batch opens write the same outbox messages as one rating at a time
    (one statement for all of them): the unit's handler by e-mail, each rater by SMS."""
    await db.execute(
        update(User)
        .where(User.username == world.users["unit_a"])
        .values(email="unit-a@hall.example")
    )
    await db.commit()
    single, *many = [await make_case(db, world) for _ in range(3)]

    def bad(case):
        return EvaluationPayloadFactory(case_no=case["case_no"], level=2, reasons=["213"])

    r = await client.post("/api/v1/evaluations", json=bad(single), headers=key_headers(world))
    assert r.status_code == 201, r.text
    r = await batch(client, key_headers(world), [bad(c) for c in many])
    assert [x["status"] for x in r.json()["items"]] == [201, 201]

    async def messages(case):
        order = (
            await db.execute(
                select(WorkOrder)
                .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case["case_no"])
            )
        ).scalar_one()
        rows = (
            (
                await db.execute(
                    select(OutboxMessage).where(
                        OutboxMessage.payload["work_order_id"].as_integer() == order.id
                    )
                )
            )
            .scalars()
            .all()
        )
        shape = sorted(
            (m.kind, m.channel, m.recipient, m.status, m.dedupe_key.replace(str(order.id), "#"))
            for m in rows
        )
        return shape, {m.channel: m.body.replace(str(order.id), "#") for m in rows}

    one = await messages(single)
    assert [(ch, rcpt) for _, ch, rcpt, _, _ in one[0]] == [
        ("email", "unit-a@hall.example"),
        ("sms", single["applicant"]["phone"]),
    ]
    for case in many:
        shape, bodies = await messages(case)
        assert shape == [
            (k, ch, case["applicant"]["phone"] if ch == "sms" else rcpt, st, key)
            for k, ch, rcpt, st, key in one[0]
        ]
        assert bodies["email"] == one[1]["email"]
        assert "/p/" in bodies["sms"]

    # The orders a batch opens together are the rows one rating opens
    # (workorders.service.open_for_evaluations, for one order or many).
    async def opened_rows(case):
        order = (
            await db.execute(
                select(WorkOrder)
                .join(Evaluation, Evaluation.id == WorkOrder.evaluation_id)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case["case_no"])
            )
        ).scalar_one()
        units = (
            (await db.execute(select(WorkOrderUnit).where(WorkOrderUnit.work_order_id == order.id)))
            .scalars()
            .all()
        )
        events = (
            (
                await db.execute(
                    select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id)
                )
            )
            .scalars()
            .all()
        )
        skip = {"id", "work_order_id", "evaluation_id", "case_id", "created_at"}

        def columns(obj):
            return {
                c.key: getattr(obj, c.key)
                for c in obj.__table__.columns
                if c.key not in skip and not c.key.endswith("_at")
            }

        due = [
            getattr(order, c.key)
            for c in WorkOrder.__table__.columns
            if c.key.endswith(("due_at", "warn_at"))
        ]
        return columns(order), [columns(u) for u in units], [columns(e) for e in events], due

    first = await opened_rows(single)
    assert first[0]["state"] == "verifying" and first[1] and first[2]
    for case in many:
        rows = await opened_rows(case)
        assert rows[:3] == first[:3]
        # Deadlines are reckoned from the moment of opening, a few milliseconds apart here.
        assert [d is None for d in rows[3]] == [d is None for d in first[3]]
        assert all(
            abs(a - b) < timedelta(seconds=5)
            for a, b in zip(rows[3], first[3], strict=True)
            if a is not None
        )


async def test_prefer_return_minimal_answers_status_and_id_only(client, db, world):
    """`Prefer: return=minimal`: stored items answer {status, id} as the contract states,
    refused ones keep their error; what is stored does not change."""
    a, b = [await make_case(db, world) for _ in range(2)]
    items = [
        EvaluationPayloadFactory(case_no=a["case_no"]),
        EvaluationPayloadFactory(case_no=a["case_no"]),  # dup in batch
        EvaluationPayloadFactory(case_no="HZ-NOPE"),
        EvaluationPayloadFactory(case_no=b["case_no"], level=2, reasons=["213"]),
    ]
    r = await client.post(
        "/api/v1/evaluations/batch",
        json={"items": items},
        headers={**key_headers(world), "Prefer": "return=minimal"},
    )
    assert r.status_code == 200 and r.headers["preference-applied"] == "return=minimal"
    results = r.json()["items"]
    assert [set(x) for x in results] == [
        {"status", "id"},
        {"status", "error"},
        {"status", "error"},
        {"status", "id"},
    ]
    item_error(results[1], 409, "duplicate_evaluation")
    item_error(results[2], 404, "case_not_found")
    stored = {e.id: e.level for c in (a, b) for e in await ratings_of(db, c["case_no"])}
    assert stored == {results[0]["id"]: items[0]["level"], results[3]["id"]: 2}
    # Without the preference the stored rating is echoed, as before.
    c = await make_case(db, world)
    r = await batch(client, key_headers(world), [EvaluationPayloadFactory(case_no=c["case_no"])])
    assert "preference-applied" not in r.headers
    assert r.json()["items"][0]["evaluation"]["case_no"] == c["case_no"]


async def test_a_retried_batch_with_its_idempotency_key_stores_nothing_twice(client, db, world):
    """General comments have no natural key: the batch's Idempotency-Key keeps them single."""
    case = await make_case(db, world)
    items = [
        EvaluationPayloadFactory(case_no=case["case_no"], channel="pad"),
        {
            "channel": "review",
            "org_code": world.code("HALL-A"),
            "level": 4,
            "reasons": [],
            "comment": f"大厅环境整洁 {uuid.uuid4().hex[:6]}",
        },
    ]
    headers = {**key_headers(world, "all"), "Idempotency-Key": "batch-retry-1"}
    first = await batch(client, headers, items)
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["items"]] == [201, 201]
    before = await table_counts(db)
    again = await batch(client, headers, items)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await table_counts(db) == before
    # The same key for other items is refused, and stores nothing either.
    other = [EvaluationPayloadFactory(case_no=(await make_case(db, world))["case_no"])]
    before = await table_counts(db)
    assert_error(await batch(client, headers, other), 422, "idempotency_key_reused")
    assert await table_counts(db) == before
    # Without a key the retry answers per item: the case-bound one 409, the comment again.
    r = await batch(client, key_headers(world, "all"), items)
    assert [x["status"] for x in r.json()["items"]] == [409, 201]
