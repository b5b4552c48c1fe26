"""Window staff see the work orders of the window they serve (issue 11): a bad rating at
window W-A1 opens an order assigned to the hall (HALL-A), above the window; the staff of W-A1
see it in their queue and on its page, on the API and in the console, and may not act on it;
the staff of another window see neither."""

from __future__ import annotations

from haochaping.accounts import service as account_service
from tests.factories import assert_error, bearer_headers
from tests.pages.helpers import sign_in
from tests.workorders.conftest import rate_badly

WO = "/api/v1/work-orders"
STAFF_PASSWORD = "pw-staff-123456"


async def staff_user(db, world, name: str, window: str) -> str:
    username = f"{name}{world.suffix}"
    await account_service.create_user(
        db=db,
        username=username,
        password=STAFF_PASSWORD,
        role="staff",
        org_code=world.code(window),
    )
    await db.commit()
    return username


async def staff_headers(client, db, world, name: str, window: str) -> dict[str, str]:
    return await bearer_headers(client, await staff_user(db, world, name, window), STAFF_PASSWORD)


async def test_window_staff_see_their_windows_orders_and_not_others(client, db, world, handlers):
    _ev, mine = await rate_badly(client, db, world)  # served at W-A1
    _ev2, other = await rate_badly(client, db, world, window_code="W-A2", staff_no=None)
    assert mine.org_id == other.org_id  # both assigned to the hall
    a1 = await bearer_headers(
        client, await staff_user(db, world, "staff_a1", "W-A1"), STAFF_PASSWORD
    )
    a2 = await bearer_headers(
        client, await staff_user(db, world, "staff_a2", "W-A2"), STAFF_PASSWORD
    )
    b1 = await bearer_headers(
        client, await staff_user(db, world, "staff_b1", "W-B1"), STAFF_PASSWORD
    )

    def ids(r):
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert ids(await client.get(WO, headers=a1)) == {mine.id}
    assert ids(await client.get(WO, headers=a2)) == {other.id}
    assert ids(await client.get(WO, headers=b1)) == set()

    assert (await client.get(f"{WO}/{mine.id}", headers=a1)).status_code == 200
    assert_error(await client.get(f"{WO}/{other.id}", headers=a1), 403, "out_of_scope")
    assert_error(await client.get(f"{WO}/{mine.id}", headers=b1), 403, "out_of_scope")
    # Seeing is not handling: the state table gives window staff no action.
    r = await client.post(
        f"{WO}/{mine.id}/actions", json={"action": "verify", "note": "x"}, headers=a1
    )
    assert r.status_code == 403, r.text
    # Nor the rater's number.
    assert_error(await client.post(f"{WO}/{mine.id}/reveal-phone", headers=a1), 403)

    # A transfer away from the hall does not hide the order from the window it came from.
    r = await client.post(
        f"{WO}/{mine.id}/actions",
        json={"action": "transfer", "note": "属市场监管职责", "lead_org_code": "DEPT-M"},
        headers=handlers["office"],
    )
    assert r.status_code == 200, r.text
    assert ids(await client.get(WO, headers=a1)) == {mine.id}


async def test_window_staff_find_the_order_in_the_console(client, db, world, handlers):
    _ev, mine = await rate_badly(client, db, world)
    _ev2, other = await rate_badly(client, db, world, window_code="W-A2", staff_no=None)
    await sign_in(client, await staff_user(db, world, "staff_a1c", "W-A1"), STAFF_PASSWORD)
    queue = await client.get("/console/work-orders")
    assert queue.status_code == 200
    assert f'data-id="{mine.id}"' in queue.text
    assert f'data-id="{other.id}"' not in queue.text
    page = await client.get(f"/console/work-orders/{mine.id}")
    assert page.status_code == 200
    assert "当前环节您没有可执行的操作" in page.text
    assert "查看号码" not in page.text
    assert (await client.get(f"/console/work-orders/{other.id}")).status_code == 403
