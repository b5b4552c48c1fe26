"""`POST /api/v1/compat/evaluations` (issue 13 §4): records in the national interface's shape,
exactly as published integration code sends them, stored as through the native route and
answered in the interface's own terms; a refused record stores nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from haochaping.cases.models import Case
from haochaping.core.timeutil import SHANGHAI
from haochaping.exchange.national import (
    Dialect,
    RecordRefused,
    SatisfactionOrder,
    read_record,
)
from haochaping.orgs.models import Org, Staff
from haochaping.workorders.models import WorkOrder
from tests.factories import bearer_headers, make_case, table_counts

URL = "/api/v1/compat/evaluations"


def beijing(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def record(world, **fields) -> dict:
    """A record as a business system's published client builds it (camelCase names, numbers
    as strings where the clients send strings)."""
    given = datetime.now(SHANGHAI) - timedelta(minutes=5)
    params = {
        "projectNo": f"330102-{uuid.uuid4().hex[:12]}",
        "taskCode": world.code("ITEM-A1"),
        "taskName": "营业执照核发",
        "areaCode": "330102",
        "deptCode": world.code("HALL-A"),
        "proStatus": "3",
        "pf": "4",
        "satisfaction": "5",
        "evalDetail": "510,517",
        "writingEvaluation": "办事很快，一次办好",
        "assessNumber": "1",
        "serviceNumber": "1",
        "assessTime": beijing(given),
        "userProp": "1",
        "userName": "张三",
        "certKey": "330102199001011234",
        "mobile": "13800001111",
        "winName": "综合受理1号窗口",
        "winUserName": "李娜",
    }
    params.update(fields)
    return {"params": params}


def key(world, name: str = "all") -> dict[str, str]:
    return {"X-Api-Key": world.keys[name]}


async def refused(
    client, db, world, body, code: str, *, raw: bytes | None = None, name="all", status=200
):
    """Post, expect the interface's refusal with `code`, and check that no row changed."""
    before = await table_counts(db)
    if raw is not None:
        r = await client.post(
            URL, content=raw, headers={**key(world, name), "Content-Type": "application/json"}
        )
    else:
        r = await client.post(URL, json=body, headers=key(world, name))
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["status"] == {"code": "200"}
    assert answer["custom"]["code"] == "0" and answer["custom"]["error"] == code, answer
    assert answer["custom"]["text"]  # a reason a person reads
    if status == 400:  # no record at all: the API's error body beside the interface's
        assert answer["error"]["code"] == code
    assert await table_counts(db) == before
    return answer["custom"]


async def test_a_published_clients_record_brings_its_case_and_is_stored(client, db, world):
    body = record(world)
    r = await client.post(URL, json=body, headers=key(world))
    assert r.status_code == 200, r.text
    custom = r.json()["custom"]
    assert r.json()["status"] == {"code": "200"}
    assert custom["code"] == "1" and custom["is_bad"] is False and custom["id"] > 0

    # The stored rating reads as any other through the native API.
    ev = (await client.get(f"/api/v1/evaluations/{custom['id']}", headers=key(world))).json()
    p = body["params"]
    assert ev["case_no"] == p["projectNo"] and ev["channel"] == "pad" and ev["level"] == 5
    assert ev["reasons"] == ["510", "517"] and ev["comment"] == "办事很快，一次办好"
    assert ev["org_code"] == world.code("HALL-A") and ev["item_code"] == world.code("ITEM-A1")
    # winName / winUserName are names: matched to the unit's window and staff member.
    assert ev["window_code"] == world.code("W-A1") and ev["staff_no"] == world.code("S-A1")
    given = datetime.strptime(p["assessTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert datetime.fromisoformat(ev["evaluated_at"]) == given  # Beijing time, as sent
    assert ev["rater"]["phone"] != p["mobile"]  # masked like every read
    case = (await db.execute(select(Case).where(Case.case_no == p["projectNo"]))).scalar_one()
    assert case.status == "completed" and case.mode == "offline"
    assert case.completed_at is not None


async def test_a_time_given_in_the_future_is_bounded_by_receipt(client, db, world):
    body = record(world, assessTime=beijing(datetime.now(SHANGHAI) + timedelta(days=3)))
    custom = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    ev = (await client.get(f"/api/v1/evaluations/{custom['id']}", headers=key(world))).json()
    assert ev["evaluated_at"] <= ev["received_at"]


async def test_field_names_in_any_case_and_numbers_as_numbers(client, db, world):
    body = record(world)
    params = {k.lower(): v for k, v in body["params"].items()}
    params.update(satisfaction=4, pf=2, assessnumber=1, evaldetail="")
    params["ProStatus".upper()] = params.pop("prostatus")
    r = await client.post(URL, json={"PARAMS": params}, headers=key(world))
    custom = r.json()["custom"]
    assert custom["code"] == "1", custom
    ev = (await client.get(f"/api/v1/evaluations/{custom['id']}", headers=key(world))).json()
    assert ev["level"] == 4 and ev["channel"] == "mobile" and ev["reasons"] == []


async def test_a_bad_rating_opens_its_work_order(client, db, world):
    body = record(world, satisfaction="1", evalDetail="108", writingEvaluation="让我跑了三趟")
    custom = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    assert custom["code"] == "1" and custom["is_bad"] is True
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == custom["id"]))
    ).scalar_one()
    assert order.state == "verifying"


async def test_a_second_rating_of_the_case_is_refused_in_the_interfaces_terms(client, db, world):
    body = record(world)
    first = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    assert first["code"] == "1"
    again = await refused(client, db, world, body, "duplicate_evaluation")
    assert "已" in again["text"]


async def test_a_case_known_already_is_rated_without_moving_it_back(client, db, world):
    case = await make_case(db, world)  # completed yesterday at W-A1
    a = case["applicant"]
    body = record(
        world, projectNo=case["case_no"], proStatus="2", certKey=a["cert_no"], mobile=a["phone"]
    )
    custom = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    assert custom["code"] == "1", custom
    row = (await db.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
    await db.refresh(row)
    assert row.status == "completed"  # an older status resent with the rating changes nothing


async def test_only_the_case_number_rates_a_known_case(client, db, world):
    case = await make_case(db, world)
    params = {"projectNo": case["case_no"], "pf": 4, "satisfaction": 5}
    custom = (await client.post(URL, json={"params": params}, headers=key(world))).json()["custom"]
    assert custom["code"] == "1", custom
    await refused(
        client, db, world, {"params": {**params, "projectNo": "NO-SUCH"}}, "case_not_found"
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"satisfaction": "9"}, "invalid_field"),
        ({"satisfaction": None}, "missing_field"),
        ({"projectNo": ""}, "missing_field"),
        ({"pf": "8"}, "unknown_channel"),
        ({"pf": "abc"}, "invalid_field"),
        ({"assessTime": "2026/11/03 10:00"}, "invalid_time"),
        ({"assessTime": "2026-13-40 25:61:61"}, "invalid_time"),
        ({"assessNumber": "3"}, "invalid_field"),
        ({"evalDetail": "999"}, "unknown_reason"),
        ({"evalDetail": "108"}, "reason_level_mismatch"),  # a level-1 reason on 非常满意
        ({"satisfaction": "1", "evalDetail": "", "writingEvaluation": ""}, "reason_required"),
        ({"taskCode": "NO-SUCH-ITEM"}, "item_not_found"),
        ({"deptCode": "NO-SUCH-DEPT"}, "org_not_found"),
        ({"mobile": "not a phone"}, "invalid_field"),
        ({"writingEvaluation": ["a list"]}, "invalid_field"),
    ],
)
async def test_a_malformed_record_is_refused_with_a_stable_code(client, db, world, fields, code):
    body = record(world, **fields)
    body["params"] = {k: v for k, v in body["params"].items() if v is not None}
    await refused(client, db, world, body, code)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"param": {}}', b'{"params": "x"}', b"\xff\xfe", b"{}"],
)
async def test_a_body_that_is_no_record_is_refused(client, db, world, raw):
    await refused(client, db, world, None, "malformed_record", raw=raw, status=400)


async def test_the_keys_scope_holds_for_the_case_it_brings(client, db, world):
    # hall_b's key may not file a case under HALL-A, nor rate at the pad of a key without it.
    await refused(client, db, world, record(world), "out_of_scope", name="hall_b")
    await refused(
        client, db, world, record(world, pf="1"), "channel_out_of_scope", name="hall_a_pad"
    )


async def test_people_and_anonymous_callers_are_refused(client, db, world):
    r = await client.post(URL, json=record(world))
    assert r.status_code == 401
    office = await bearer_headers(client, world.users["office"])
    r = await client.post(URL, json=record(world), headers=office)
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_forbidden"


async def test_the_follow_up_rating_goes_to_the_cases_work_order(client, db, world):
    body = record(world, satisfaction="2", evalDetail="213", writingEvaluation="材料反复退回")
    first = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    follow = record(world, projectNo=body["params"]["projectNo"], assessNumber="2")
    follow["params"]["evalDetail"] = "510"
    # Before the unit has answered, a follow-up is not open yet.
    await refused(client, db, world, follow, "followup_not_open")
    unit = await bearer_headers(client, world.users["unit_a"])
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == first["id"]))
    ).scalar_one()
    for action in ("verify", "report_rectified"):
        r = await client.post(
            f"/api/v1/work-orders/{order.id}/actions",
            json={"action": action, "note": "已处理"},
            headers=unit,
        )
        assert r.status_code == 200, r.text
    custom = (await client.post(URL, json=follow, headers=key(world))).json()["custom"]
    assert custom["code"] == "1" and custom["work_order_state"], custom
    ev = (await client.get(f"/api/v1/evaluations/{custom['id']}", headers=key(world))).json()
    assert ev["level"] == 5 and ev["case_no"] == body["params"]["projectNo"]
    await refused(client, db, world, follow, "followup_used")


async def test_a_case_without_a_work_order_has_no_follow_up(client, db, world):
    body = record(world)
    assert (await client.post(URL, json=body, headers=key(world))).json()["custom"]["code"] == "1"
    follow = record(world, projectNo=body["params"]["projectNo"], assessNumber="2")
    await refused(client, db, world, follow, "followup_not_open")


async def test_window_and_staff_names_that_do_not_answer_uniquely_are_left_out(client, db, world):
    # A second 李娜 in HALL-A: the name no longer says which staff member served.
    hall = (await db.execute(select(Org).where(Org.code == world.code("W-A2")))).scalar_one()
    db.add(Staff(staff_no=f"S-A9-{uuid.uuid4().hex[:6]}", name="李娜", org_id=hall.id))
    await db.commit()
    body = record(world, winName="没有这个窗口")
    custom = (await client.post(URL, json=body, headers=key(world))).json()["custom"]
    ev = (await client.get(f"/api/v1/evaluations/{custom['id']}", headers=key(world))).json()
    assert ev["window_code"] is None and ev["staff_no"] is None


def test_the_dialects_satisfaction_order_and_channel_codes():
    now = datetime.now(SHANGHAI)
    body = {"params": {"projectNo": "X1", "pf": "6", "satisfaction": "1"}}
    national = read_record(body, Dialect(), now)
    assert national.evaluation.level == 1 and national.evaluation.channel == "phone"
    gbt = Dialect(satisfaction=SatisfactionOrder.DESCENDING, pf={6: "sms"})
    swapped = read_record(body, gbt, now)
    assert swapped.evaluation.level == 5 and swapped.evaluation.channel == "sms"
    assert gbt.satisfaction_of(5) == 1 and Dialect().satisfaction_of(5) == 5
    assert gbt.pf_of("sms") == 6 and gbt.pf_of("pc") is None
    with pytest.raises(RecordRefused) as refused_7:  # 7 = the system's default rating there
        read_record({"params": {**body["params"], "pf": 7}}, gbt, now)
    assert refused_7.value.code == "unknown_channel"
