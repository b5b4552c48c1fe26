"""Independent callbacks (issue 11): the policy's `callback_by` decides who records the
callback. With "office" (Zhejiang's 12345 platform calls the citizen, not the unit) the unit
rated may not record a callback or close its order as unreachable, on the API and in the
console; the office still does. The default, "unit", leaves the unit its callback."""

from __future__ import annotations

from haochaping.workorders.models import WorkOrder
from tests.factories import assert_error, publish_policy
from tests.pages.helpers import csrf_of, sign_in
from tests.workorders.conftest import rate_badly

WO = "/api/v1/work-orders"
CALLBACK = {"action": "callback", "method": "phone", "reached": True, "verdict": "satisfied"}


async def act(client, headers, order_id, expect=200, **body):
    r = await client.post(f"{WO}/{order_id}/actions", json=body, headers=headers)
    assert r.status_code == expect, r.text
    return r


async def awaiting_callback(client, db, world, handlers) -> WorkOrder:
    """A bad rating's order, verified and reported rectified by the unit."""
    _ev, order = await rate_badly(client, db, world)
    await act(client, handlers["unit_a"], order.id, action="verify", note="属实")
    await act(client, handlers["unit_a"], order.id, action="report_rectified", note="已整改")
    await db.refresh(order)
    assert order.state == "callback"
    return order


async def test_office_callbacks_refuse_the_unit_and_let_the_office_record(
    client, db, world, handlers
):
    await publish_policy(client, world, {"callback_by": "office", "max_contact_attempts": 1})
    order = await awaiting_callback(client, db, world, handlers)
    assert order.policy["callback_by"] == "office"

    seen = (await client.get(f"{WO}/{order.id}", headers=handlers["unit_a"])).json()
    assert "callback" not in seen["allowed_actions"]
    assert "close_unreachable" not in seen["allowed_actions"]
    office_seen = (await client.get(f"{WO}/{order.id}", headers=handlers["office"])).json()
    assert "callback" in office_seen["allowed_actions"]

    r = await act(client, handlers["unit_a"], order.id, 403, version=order.version, **CALLBACK)
    body = assert_error(r, 403, "callback_by_office")
    assert "政务服务管理机构独立开展" in body["message"]
    unreached = {"action": "callback", "method": "phone", "reached": False}
    r = await act(client, handlers["unit_a"], order.id, 403, **unreached)
    assert_error(r, 403, "callback_by_office")
    await db.refresh(order)
    assert (order.state, order.callback_attempts) == ("callback", 0)

    # The office records a failed call; the unit still may not close it as unreachable.
    await act(client, handlers["office"], order.id, **unreached)
    r = await act(client, handlers["unit_a"], order.id, 403, action="close_unreachable", note="x")
    assert_error(r, 403, "callback_by_office")
    await act(client, handlers["office"], order.id, **CALLBACK)
    await db.refresh(order)
    assert order.state == "closed"


async def test_by_default_the_unit_records_its_callback(client, db, world, handlers):
    order = await awaiting_callback(client, db, world, handlers)
    assert order.policy.get("callback_by", "unit") == "unit"
    await act(client, handlers["unit_a"], order.id, **CALLBACK)
    await db.refresh(order)
    assert order.state == "closed"


async def test_console_refuses_the_units_callback_and_hides_its_form(client, db, world, handlers):
    await publish_policy(client, world, {"callback_by": "office"})
    order = await awaiting_callback(client, db, world, handlers)
    await sign_in(client, world.users["unit_a"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert page.status_code == 200
    assert 'id="action-callback"' not in page.text
    assert 'id="action-close_unreachable"' not in page.text
    r = await client.post(
        f"/console/work-orders/{order.id}/actions",
        data={
            "csrf_token": csrf_of(page.text),
            "action": "callback",
            "version": str(order.version),
            "method": "phone",
            "reached": "yes",
            "verdict": "satisfied",
        },
    )
    assert r.status_code == 403
    assert "责任单位不能记录本单位工单的回访" in r.text
    await db.refresh(order)
    assert order.state == "callback"

    await sign_in(client, world.users["office"])
    page = await client.get(f"/console/work-orders/{order.id}")
    assert 'id="action-callback"' in page.text


async def test_console_policy_form_sets_who_calls_back(client, db, world):
    await sign_in(client, world.users["office"])
    form = await client.get("/console/policies?region=330102")
    assert form.status_code == 200
    assert 'name="callback_by"' in form.text
    r = await client.post(
        "/console/policies",
        data={"csrf_token": csrf_of(form.text), "region_code": "330102", "callback_by": "office"},
    )
    assert r.status_code == 303, r.text[-2000:]
    shown = await client.get("/console/policies?region=330102")
    row = shown.text.split('data-key="callback_by"')[1].split("</tr>")[0]
    assert "政务服务管理机构（独立回访）" in row
    bad = await client.post(
        "/console/policies",
        data={"csrf_token": csrf_of(form.text), "region_code": "330102", "callback_by": "12345"},
    )
    assert bad.status_code == 422
    assert "回访由谁开展取值无效" in bad.text
