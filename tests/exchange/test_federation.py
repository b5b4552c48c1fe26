"""Reporting up, the parent's side (issue 14): a child's batches of ratings and work-order
outcomes at `POST /api/v1/exchange/...`, and the per-day reconciliation figures."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from haochaping.accounts import service as account_service
from haochaping.core.timeutil import SHANGHAI
from haochaping.evaluations.models import Evaluation
from haochaping.exchange import federation, records
from haochaping.exchange.models import ExchangeWorkOrder
from haochaping.exchange.national import Dialect
from haochaping.orgs.models import Org, Staff
from haochaping.workorders.models import WorkOrder
from tests.factories import table_counts

EVALS = "/api/v1/exchange/evaluations"
ORDERS = "/api/v1/exchange/work-orders"


@pytest.fixture
async def child(db, world):
    """A child instance's key: the `exchange` channel, placed at hall B."""
    tag = uuid.uuid4().hex[:8]
    _, key = await account_service.create_client(
        db=db, name=f"city-{tag}", org_code=world.code("HALL-B"), channels=["exchange"]
    )
    await db.commit()
    return {"X-Api-Key": key}, tag


def rating(tag: str, ref: int, **fields) -> dict:
    """A record as the child's sender encodes it (records.encode_rating)."""
    when = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(hours=1)
    row = records.RatingRow(
        id=ref,
        case_no=f"C-{tag}-{ref}",
        stage="whole",
        eval_count=1,
        channel="pad",
        level=5,
        reasons=["517"],
        comment="很好",
        tagset_version="national-2020",
        region_code="330100",
        rater_type="person",
        rater_name="张三",
        rater_cert_no="330102199001011234",
        rater_phone="13800001111",
        anonymous=False,
        is_public=True,
        is_default=False,
        evaluated_at=when,
        org_code=f"CD-{tag}",
        org_name="市行政服务中心",
        item_code=f"CI-{tag}",
        item_name="身份证办理",
        window_code=f"CW-{tag}",
        window_name="1号窗口",
        staff_no=f"CS-{tag}",
        staff_name="赵敏",
    )
    record = records.encode_rating(row, Dialect())
    record.update(fields)
    return record


def batch(*items) -> dict:
    return {"formatVersion": records.FORMAT_VERSION, "records": list(items)}


async def test_a_batch_is_stored_under_the_childs_organisation_marked_with_its_origin(
    client, db, world, child
):
    headers, tag = child
    r = await client.post(
        EVALS, json=batch(rating(tag, 1), rating(tag, 2, satisfaction=1)), headers=headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["refused"]) == (2, 0)
    assert [x["duplicate"] for x in body["results"]] == [False, False]
    dept = (await db.execute(select(Org).where(Org.code == f"CD-{tag}"))).scalar_one()
    hall = (await db.execute(select(Org).where(Org.code == world.code("HALL-B")))).scalar_one()
    window = (await db.execute(select(Org).where(Org.code == f"CW-{tag}"))).scalar_one()
    assert dept.parent_id == hall.id and dept.path == f"{hall.path}CD-{tag}/"
    assert (window.kind, window.parent_id) == ("window", dept.id)
    staff = (await db.execute(select(Staff).where(Staff.staff_no == f"CS-{tag}"))).scalar_one()
    assert (staff.name, staff.org_id) == ("赵敏", window.id)
    stored = (
        await db.execute(select(Evaluation).where(Evaluation.id == body["results"][1]["id"]))
    ).scalar_one()
    assert stored.origin_ref == 2 and stored.origin_client_id is not None
    assert stored.level == 1 and stored.rater_phone == "13800001111"
    assert stored.rater_phone_hash is not None and stored.rater_cert_hash is not None
    # The child runs the closed loop: no work order is opened here for its bad rating.
    orders = await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == stored.id))
    assert orders.first() is None
    # It counts in the parent's figures of the hall's subtree.
    r = await client.get(
        "/api/v1/evaluations",
        params={"org_code": world.code("HALL-B")},
        headers={"X-Api-Key": world.keys["all"]},
    )
    assert r.status_code == 200


async def test_a_repeated_report_answers_the_stored_id_and_stores_nothing(client, db, world, child):
    headers, tag = child
    first = (await client.post(EVALS, json=batch(rating(tag, 7)), headers=headers)).json()
    before = await table_counts(db)
    again = (await client.post(EVALS, json=batch(rating(tag, 7)), headers=headers)).json()
    assert again["results"][0]["id"] == first["results"][0]["id"]
    assert again["results"][0]["duplicate"] is True
    # Same case number, stage and count under another child id: the same rating.
    twin = (
        await client.post(
            EVALS, json=batch(rating(tag, 8, projectNo=f"C-{tag}-7")), headers=headers
        )
    ).json()
    assert twin["results"][0] == {
        **twin["results"][0],
        "code": "1",
        "id": first["results"][0]["id"],
    }
    assert await table_counts(db) == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"satisfaction": 9}, "invalid_field"),
        ({"assessTime": "2026/12/01"}, "invalid_time"),
        ({"deptCode": None}, "missing_field"),
        ({"channel": "fax"}, "unknown_channel"),
        ({"sourceId": "x"}, "invalid_field"),
    ],
)
async def test_a_malformed_record_is_refused_with_a_stable_code_and_nothing_of_it_stored(
    client, db, world, child, change, code
):
    headers, tag = child
    bad = {k: v for k, v in rating(tag, 11, **change).items() if v is not None}
    before = await table_counts(db)
    r = await client.post(EVALS, json=batch(bad), headers=headers)
    assert r.status_code == 200
    result = r.json()["results"][0]
    assert (result["code"], result["error"]) == ("0", code)
    assert await table_counts(db) == before


async def test_a_body_that_is_no_batch_and_a_client_without_the_channel(client, world, child):
    headers, tag = child
    r = await client.post(EVALS, content=b"{", headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_batch")
    r = await client.post(EVALS, json={"formatVersion": "9", "records": []}, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unsupported_format_version")
    r = await client.post(
        EVALS, json=batch(rating(tag, 1)), headers={"X-Api-Key": world.keys["all"]}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "exchange_forbidden")


async def test_reconciliation_gives_the_childs_count_and_digest(client, db, world, child):
    headers, tag = child
    items = [rating(tag, ref, assessTime="2026-11-30 10:00:00") for ref in (3, 1, 2)]
    await client.post(EVALS, json=batch(*items), headers=headers)
    day = datetime(2026, 11, 30, 10, tzinfo=SHANGHAI)
    r = await client.get(
        "/api/v1/exchange/reconciliation", params={"day": day.date().isoformat()}, headers=headers
    )
    assert r.status_code == 200
    got = r.json()
    assert got["count"] == 3
    lines = [
        records.digest_line(
            ref=ref,
            case_no=f"C-{tag}-{ref}",
            stage="whole",
            eval_count=1,
            level=5,
            channel="pad",
            evaluated_at=day,
        )
        for ref in (1, 2, 3)
    ]
    assert got["digest"] == records.digest(lines)
    r = await client.get(
        "/api/v1/exchange/reconciliation", params={"day": "yesterday"}, headers=headers
    )
    assert r.status_code == 422


async def test_work_order_outcomes_keep_the_newest_state(client, db, world, child):
    headers, tag = child
    stored = (
        await client.post(EVALS, json=batch(rating(tag, 5, satisfaction=1)), headers=headers)
    ).json()
    order = {
        "sourceId": 90,
        "eventId": 2,
        "evalSourceId": 5,
        "projectNo": f"C-{tag}-5",
        "state": "rectifying",
        "openTime": "2026-12-01 09:00:00",
    }
    r = await client.post(ORDERS, json=batch(order), headers=headers)
    assert r.json()["accepted"] == 1
    closed = {**order, "eventId": 5, "state": "closed", "closeTime": "2026-12-02 10:00:00"}
    await client.post(ORDERS, json=batch(closed), headers=headers)
    await client.post(ORDERS, json=batch(order), headers=headers)  # late, older: ignored
    row = (
        await db.execute(select(ExchangeWorkOrder).where(ExchangeWorkOrder.origin_ref == 90))
    ).scalar_one()
    assert (row.state, row.evaluation_id) == ("closed", stored["results"][0]["id"])
    r = await client.post(ORDERS, json=batch({**order, "state": "nonsense"}), headers=headers)
    assert r.json()["results"][0]["error"] == "invalid_field"
    assert (await db.execute(select(func.count()).select_from(ExchangeWorkOrder))).scalar_one() >= 1
    assert federation.EXCHANGE_CHANNEL == "exchange"


async def test_a_childs_work_order_outcomes_count_in_the_parents_bad_review_funnel(
    client, db, world, child
):
    headers, tag = child
    # Three bad ratings of the child's new department, each with its order's outcome.
    stored = (
        await client.post(
            EVALS,
            json=batch(*(rating(tag, ref, satisfaction=1) for ref in (21, 22, 23))),
            headers=headers,
        )
    ).json()
    assert stored["accepted"] == 3
    when = datetime.now(SHANGHAI).replace(microsecond=0)

    def at(hours: float) -> str:
        return (when + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")

    def order(ref: int, rating_ref: int, **fields) -> dict:
        return {
            "sourceId": ref,
            "eventId": 1,
            "evalSourceId": rating_ref,
            "projectNo": f"C-{tag}-{rating_ref}",
            "openTime": at(-1),
            **fields,
        }

    orders = [
        # Verified and rectified on time, called back, satisfied, closed.
        order(
            31,
            21,
            state="closed",
            closeTime=at(-0.1),
            verifyDue=at(1),
            verifyTime=at(-0.9),
            rectifyDue=at(2),
            rectifyTime=at(-0.5),
            calledBack=True,
            callbackSatisfied=True,
        ),
        # Verification overdue and escalated: still open.
        order(32, 22, state="verifying", verifyDue=at(-0.5), rectifyDue=at(5), supervised=True),
        # Called back, not satisfied.
        order(33, 23, state="callback", rectifyTime=at(-0.5), calledBack=True),
    ]
    r = await client.post(ORDERS, json=batch(*orders), headers=headers)
    assert r.json()["accepted"] == 3, r.text
    row = (
        await db.execute(
            select(ExchangeWorkOrder).where(
                ExchangeWorkOrder.origin_ref == 31,
                ExchangeWorkOrder.evaluation_id == stored["results"][0]["id"],
            )
        )
    ).scalar_one()
    assert (row.called_back, row.callback_satisfied, row.supervised) == (True, True, False)
    assert row.client_id is not None  # marked with its origin: the child's client
    summary = (
        await client.get(
            "/api/v1/stats/summary",
            params={"org_code": f"CD-{tag}"},
            headers={"X-Api-Key": world.keys["all"]},
        )
    ).json()
    funnel = {
        k: summary[k]
        for k in (
            "bad",
            "opened",
            "verified_on_time",
            "rectified_on_time",
            "called_back",
            "callback_satisfied",
            "supervised",
            "overdue_open",
        )
    }
    assert funnel == {
        "bad": 3,
        "opened": 3,
        "verified_on_time": 1,
        "rectified_on_time": 2,
        "called_back": 2,
        "callback_satisfied": 1,
        "supervised": 1,
        "overdue_open": 1,
    }, summary
    assert summary["callback_satisfied_rate"] == 0.5


def test_a_work_order_record_carries_the_funnel_both_ways():
    when = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI)
    row = records.WorkOrderRow(
        id=4,
        event_id=9,
        evaluation_id=3,
        case_no="C-1",
        stage="whole",
        eval_count=1,
        state="closed",
        opened_at=when,
        closed_at=when + timedelta(days=3),
        close_reason=None,
        verify_due_at=when + timedelta(days=1),
        verified_at=when + timedelta(hours=5),
        rectify_due_at=when + timedelta(days=5),
        rectified_at=when + timedelta(days=2),
        callback_due_at=when + timedelta(days=7),
        overdue_at=None,
        supervised=True,
        called_back=True,
        callback_satisfied=False,
    )
    encoded = records.encode_work_order(row)
    assert encoded["verifyTime"] == "2026-12-01 14:00:00" and encoded["calledBack"] is True
    assert records.read_work_order(encoded, ["closed"]) == row
