"""Reference data: regions, organisations, staff, items — create, update, list, read, scope."""

from __future__ import annotations

from sqlalchemy import select

from haochaping.orgs.models import Item, Org, Region, Staff
from tests.factories import (
    ItemPayloadFactory,
    OrgPayloadFactory,
    RegionPayloadFactory,
    StaffPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    table_counts,
)


async def all_pages(client, path, headers, **params) -> list[dict]:
    """Follow next_cursor to the end; each page is at most `limit` long."""
    items, cursor, pages = [], None, 0
    while True:
        r = await client.get(
            path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= params.get("limit", 100)
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 100


# --- regions -----------------------------------------------------------------------------


async def test_region_is_created_under_its_parent_and_renamed(client, db, world):
    headers = key_headers(world)
    payload = RegionPayloadFactory(code="330102001", parent_code="330102")
    r = await client.post("/api/v1/regions", json=payload, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "code": "330102001",
        "name": payload["name"],
        "parent_code": "330102",
        "tier": 4,
    }
    r = await client.post("/api/v1/regions", json={**payload, "name": "湖滨街道"}, headers=headers)
    assert r.status_code == 200 and r.json()["name"] == "湖滨街道"
    row = await db.get(Region, "330102001")
    await db.refresh(row)
    assert row.name == "湖滨街道" and row.path == "/330000/330100/330102/330102001/"
    got = await client.get("/api/v1/regions/330102001", headers=headers)
    assert got.status_code == 200 and got.json()["tier"] == 4


async def test_region_cannot_move_to_another_parent(client, db, world):
    r = await client.post(
        "/api/v1/regions",
        json={"code": "330102", "name": "上城区", "parent_code": "330000"},
        headers=key_headers(world),
    )
    err = assert_error(r, 409, "immutable_field")
    assert err["details"] == [{"field": "parent_code"}]
    assert (await db.get(Region, "330102")).parent_code == "330100"


async def test_regions_nest_five_tiers_deep_and_no_deeper(client, world):
    headers = key_headers(world)
    chain = [("330102001", "330102"), ("330102001001", "330102001")]
    for code, parent in chain:
        r = await client.post(
            "/api/v1/regions",
            json={"code": code, "name": "x", "parent_code": parent},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    assert r.json()["tier"] == 5
    r = await client.post(
        "/api/v1/regions",
        json={"code": "330102001002", "name": "太深", "parent_code": "330102001001"},
        headers=headers,
    )
    assert_error(r, 422, "region_too_deep")


async def test_invalid_region_payloads_are_422(client, db, world):
    before = await table_counts(db)
    for payload in [
        {"code": "33010", "name": "五位"},
        {"code": "3301020011", "name": "十位"},
        {"code": "ABCDEF", "name": "字母"},
        {"code": "330199"},
        {"code": "330199", "name": ""},
        {"code": "330199", "name": "x", "level": 3},
        {"code": 330199, "name": "数字"},
    ]:
        assert_error(
            await client.post("/api/v1/regions", json=payload, headers=key_headers(world)),
            422,
            "invalid_input",
        )
    assert await table_counts(db) == before


async def test_unknown_parent_region_is_404(client, db, world):
    r = await client.post(
        "/api/v1/regions",
        json={"code": "110101", "name": "东城区", "parent_code": "110000"},
        headers=key_headers(world),
    )
    assert_error(r, 404, "region_not_found")
    assert await db.get(Region, "110101") is None
    assert_error(
        await client.get("/api/v1/regions/110000", headers=key_headers(world)),
        404,
        "region_not_found",
    )


async def test_region_list_filters_and_pages(client, world):
    headers = key_headers(world)
    for i in range(5):
        await client.post(
            "/api/v1/regions",
            json={"code": f"33010200{i}", "name": f"街道{i}", "parent_code": "330102"},
            headers=headers,
        )
    children = await all_pages(client, "/api/v1/regions", headers, parent_code="330102", limit=2)
    assert [c["code"] for c in children] == [f"33010200{i}" for i in range(5)]
    tier1 = await all_pages(client, "/api/v1/regions", headers, tier=1)
    assert "330000" in {c["code"] for c in tier1} and all(c["tier"] == 1 for c in tier1)
    everything = await all_pages(client, "/api/v1/regions", headers, limit=3)
    codes = [c["code"] for c in everything]
    assert codes == sorted(codes) and len(codes) == len(set(codes)) >= 8
    assert_error(
        await client.get("/api/v1/regions", params={"tier": 6}, headers=headers),
        422,
        "invalid_input",
    )


async def test_regions_are_written_only_inside_the_callers_own_region(client, db, world):
    """Regions are shared: hall A (in county 330102) may add its villages, not rename the
    province or add towns to the city; only an administrator adds a new province."""
    pad = key_headers(world, "hall_a_pad")
    ok = await client.post(
        "/api/v1/regions",
        headers=pad,
        json={"code": "330102001", "name": "湖滨街道", "parent_code": "330102"},
    )
    assert ok.status_code == 201, ok.text
    before = await table_counts(db)
    for payload in (
        {"code": "330000", "name": "被改名的省"},
        {"code": "330100", "name": "被改名的市", "parent_code": "330000"},
        {"code": "330100001", "name": "别的街道", "parent_code": "330100"},
        {"code": "110000", "name": "北京市"},
    ):
        assert_error(
            await client.post("/api/v1/regions", headers=pad, json=payload), 403, "out_of_scope"
        )
    assert_error(
        await client.post(
            "/api/v1/regions", headers=key_headers(world), json={"code": "110000", "name": "北京市"}
        ),
        403,
        "out_of_scope",
    )
    assert await table_counts(db) == before
    assert (await db.get(Region, "330000")).name == "浙江省"
    admin = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/regions", headers=admin, json={"code": "110000", "name": "北京市"}
    )
    assert r.status_code == 201 and r.json()["tier"] == 1


async def test_people_below_the_office_may_not_write_regions(client, world):
    for who in ("unit_a", "assessor"):
        headers = await bearer_headers(client, world.users[who])
        r = await client.post(
            "/api/v1/regions",
            json={"code": "330102009", "name": "x", "parent_code": "330102"},
            headers=headers,
        )
        assert_error(r, 403, "role_forbidden")


# --- organisations -----------------------------------------------------------------------


async def test_org_is_created_under_a_parent_in_scope(client, db, world):
    payload = OrgPayloadFactory()
    r = await client.post("/api/v1/orgs", json=payload, headers=key_headers(world, "hall_a_pad"))
    assert r.status_code == 201, r.text
    got = r.json()
    assert {k: got[k] for k in payload} == payload
    row = (await db.execute(select(Org).where(Org.code == payload["code"]))).scalar_one()
    assert row.path == f"/OFFICE/HALL-A/{payload['code']}/"
    r = await client.post(
        "/api/v1/orgs", json={**payload, "name": "改名窗口"}, headers=key_headers(world)
    )
    assert r.status_code == 200 and r.json()["name"] == "改名窗口"
    r = await client.get(f"/api/v1/orgs/{payload['code']}", headers=key_headers(world))
    assert r.json()["name"] == "改名窗口" and r.json()["parent_code"] == "HALL-A"


async def test_org_outside_the_callers_subtree_is_403(client, db, world):
    before = await table_counts(db)
    headers = key_headers(world, "hall_a_pad")
    r = await client.post(
        "/api/v1/orgs", json=OrgPayloadFactory(parent_code="HALL-B"), headers=headers
    )
    assert_error(r, 403, "out_of_scope")
    # Renaming an existing organisation elsewhere is refused just the same.
    r = await client.post(
        "/api/v1/orgs",
        json={
            "code": "W-B1",
            "name": "篡改",
            "kind": "window",
            "parent_code": "HALL-B",
            "region_code": "330100",
        },
        headers=headers,
    )
    assert_error(r, 403, "out_of_scope")
    assert await table_counts(db) == before
    assert (
        await db.execute(select(Org.name).where(Org.code == "W-B1"))
    ).scalar_one() == "不动产登记窗口"


async def test_only_an_administrator_creates_a_top_level_org(client, db, world):
    payload = {"code": "PROV-2", "name": "另一个省", "kind": "department", "region_code": "330000"}
    assert_error(
        await client.post("/api/v1/orgs", json=payload, headers=key_headers(world)),
        403,
        "role_forbidden",
    )
    office = await bearer_headers(client, world.users["office"])
    assert_error(
        await client.post("/api/v1/orgs", json=payload, headers=office), 403, "role_forbidden"
    )
    admin = await bearer_headers(client, world.users["admin"])
    # One root per installation: without a parent it lands under the administrator's own org,
    # where the administrator goes on to manage it.
    r = await client.post("/api/v1/orgs", json=payload, headers=admin)
    assert r.status_code == 201 and r.json()["parent_code"] == "OFFICE", r.text
    assert (
        await db.execute(select(Org.path).where(Org.code == "PROV-2"))
    ).scalar_one() == "/OFFICE/PROV-2/"
    r = await client.post(
        "/api/v1/orgs",
        json={
            "code": "PROV-2-H",
            "name": "大厅",
            "kind": "hall",
            "parent_code": "PROV-2",
            "region_code": "330000",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text


async def test_org_kind_and_parent_never_change(client, db, world):
    base = {
        "code": "W-A1",
        "name": "综合受理1号窗口",
        "kind": "window",
        "parent_code": "HALL-A",
        "region_code": "330102",
    }
    for change in ({"kind": "hall"}, {"parent_code": "HALL-B"}, {"parent_code": None}):
        err = assert_error(
            await client.post("/api/v1/orgs", json={**base, **change}, headers=key_headers(world)),
            409,
            "immutable_field",
        )
        assert err["details"] == [{"field": next(iter(change))}]
    row = (await db.execute(select(Org).where(Org.code == "W-A1"))).scalar_one()
    assert (row.kind, row.path) == ("window", "/OFFICE/HALL-A/W-A1/")


async def test_invalid_orgs_are_refused_and_not_stored(client, db, world):
    before = await table_counts(db)
    for payload, status, code in [
        (OrgPayloadFactory(parent_code="W-A1"), 422, "invalid_parent"),
        (OrgPayloadFactory(parent_code="NOPE"), 404, "org_not_found"),
        (OrgPayloadFactory(region_code="110000"), 404, "region_not_found"),
        (OrgPayloadFactory(kind="office"), 422, "invalid_input"),
        (OrgPayloadFactory(code="has space"), 422, "invalid_input"),
        (OrgPayloadFactory(code="x" * 51), 422, "invalid_input"),
        (
            {"code": "W-X", "name": "x", "kind": "window", "parent_code": "HALL-A"},
            422,
            "invalid_input",
        ),
    ]:
        assert_error(
            await client.post("/api/v1/orgs", json=payload, headers=key_headers(world)),
            status,
            code,
        )
    assert await table_counts(db) == before


async def test_a_window_needs_a_parent(client, world):
    admin = await bearer_headers(client, world.users["admin"])
    r = await client.post("/api/v1/orgs", json=OrgPayloadFactory(parent_code=None), headers=admin)
    assert_error(r, 422, "invalid_parent")


async def test_org_list_shows_only_the_subtree_and_filters(client, world):
    everything = await all_pages(client, "/api/v1/orgs", key_headers(world), limit=2)
    assert [o["code"] for o in everything] == [
        "OFFICE",
        "HALL-A",
        "W-A1",
        "W-A2",
        "HALL-B",
        "W-B1",
        "DEPT-M",
    ]
    hall_b = await all_pages(client, "/api/v1/orgs", key_headers(world, "hall_b"))
    assert {o["code"] for o in hall_b} == {"HALL-B", "W-B1"}
    headers = key_headers(world)
    windows = await all_pages(client, "/api/v1/orgs", headers, kind="window")
    assert {o["code"] for o in windows} == {"W-A1", "W-A2", "W-B1"}
    under_a = await all_pages(client, "/api/v1/orgs", headers, parent_code="HALL-A")
    assert {o["code"] for o in under_a} == {"W-A1", "W-A2"}
    in_city = await all_pages(client, "/api/v1/orgs", headers, region_code="330100")
    assert {o["code"] for o in in_city} == {"HALL-B", "W-B1", "DEPT-M"}
    named = await all_pages(client, "/api/v1/orgs", headers, q="受理")
    assert {o["code"] for o in named} == {"W-A1", "W-A2"}
    assert await all_pages(client, "/api/v1/orgs", headers, q="%") == []
    assert_error(
        await client.get("/api/v1/orgs", params={"kind": "office"}, headers=headers),
        422,
        "invalid_input",
    )


async def test_org_codes_with_underscores_do_not_leak_scope(client, db, world):
    """A subtree is a path prefix: `X_1` must not cover `XY1` (no LIKE wildcards)."""
    headers = key_headers(world)
    for code in ("X_1", "XY1"):
        r = await client.post(
            "/api/v1/orgs",
            json=OrgPayloadFactory(code=code, kind="hall", parent_code="OFFICE"),
            headers=headers,
        )
        assert r.status_code == 201, r.text
    for code, parent in (("X_1-W", "X_1"), ("XY1-W", "XY1")):
        await client.post(
            "/api/v1/orgs", json=OrgPayloadFactory(code=code, parent_code=parent), headers=headers
        )
    from haochaping.accounts import service as account_service

    _, key = await account_service.create_client(
        db=db, name="x_1_pad", org_code="X_1", channels=["pad", "review"]
    )
    await db.commit()
    seen = await all_pages(client, "/api/v1/orgs", {"X-Api-Key": key})
    assert {o["code"] for o in seen} == {"X_1", "X_1-W"}
    assert_error(
        await client.get("/api/v1/orgs/XY1-W", headers={"X-Api-Key": key}), 403, "out_of_scope"
    )


async def test_org_read_is_scoped(client, world):
    headers = key_headers(world, "hall_a_pad")
    r = await client.get("/api/v1/orgs/W-A1", headers=headers)
    assert r.status_code == 200 and r.json()["parent_code"] == "HALL-A"
    assert_error(await client.get("/api/v1/orgs/W-B1", headers=headers), 403, "out_of_scope")
    assert_error(await client.get("/api/v1/orgs/OFFICE", headers=headers), 403, "out_of_scope")
    assert_error(await client.get("/api/v1/orgs/NOPE", headers=headers), 404, "org_not_found")


# --- staff ------------------------------------------------------------------------------


async def test_staff_are_created_moved_and_read(client, db, world):
    payload = StaffPayloadFactory()
    r = await client.post("/api/v1/staff", json=payload, headers=key_headers(world))
    assert r.status_code == 201 and r.json() == payload
    r = await client.post(
        "/api/v1/staff",
        json={**payload, "org_code": "W-A2", "name": "赵敏敏"},
        headers=key_headers(world),
    )
    assert r.status_code == 200 and r.json()["org_code"] == "W-A2"
    got = await client.get(f"/api/v1/staff/{payload['staff_no']}", headers=key_headers(world))
    assert got.json() == {**payload, "org_code": "W-A2", "name": "赵敏敏"}
    row = (
        await db.execute(select(Staff).where(Staff.staff_no == payload["staff_no"]))
    ).scalar_one()
    assert row.name == "赵敏敏"


async def test_staff_scope_is_checked_on_both_ends_of_a_move(client, db, world):
    headers = key_headers(world, "hall_a_pad")
    r = await client.post(
        "/api/v1/staff", json=StaffPayloadFactory(org_code="W-B1"), headers=headers
    )
    assert_error(r, 403, "out_of_scope")
    # S-B1 works in hall B: hall A's key may not pull them over.
    r = await client.post(
        "/api/v1/staff",
        json={"staff_no": "S-B1", "name": "王强", "org_code": "W-A1"},
        headers=headers,
    )
    assert_error(r, 403, "out_of_scope")
    assert (await client.get("/api/v1/staff/S-B1", headers=key_headers(world))).json()[
        "org_code"
    ] == "W-B1"
    assert_error(await client.get("/api/v1/staff/S-B1", headers=headers), 403, "out_of_scope")
    assert_error(await client.get("/api/v1/staff/NOPE", headers=headers), 404, "staff_not_found")
    assert_error(
        await client.post(
            "/api/v1/staff", json=StaffPayloadFactory(org_code="NOPE"), headers=headers
        ),
        404,
        "org_not_found",
    )
    assert_error(
        await client.post("/api/v1/staff", json={"staff_no": "S-9", "name": "x"}, headers=headers),
        422,
        "invalid_input",
    )


async def test_staff_list_is_scoped_filtered_and_paged(client, world):
    headers = key_headers(world)
    for _ in range(3):
        await client.post(
            "/api/v1/staff", json=StaffPayloadFactory(org_code="W-A2"), headers=headers
        )
    everything = await all_pages(client, "/api/v1/staff", headers, limit=2)
    assert len(everything) == 5 and len({s["staff_no"] for s in everything}) == 5
    at_a2 = await all_pages(client, "/api/v1/staff", headers, org_code="W-A2")
    assert len(at_a2) == 3 and {s["org_code"] for s in at_a2} == {"W-A2"}
    hall_b = await all_pages(client, "/api/v1/staff", key_headers(world, "hall_b"))
    assert [s["staff_no"] for s in hall_b] == ["S-B1"]


# --- items ------------------------------------------------------------------------------


async def test_items_are_created_updated_and_read(client, db, world):
    payload = ItemPayloadFactory(basic_code="330100-000-XK-001")
    r = await client.post("/api/v1/items", json=payload, headers=key_headers(world))
    assert r.status_code == 201 and r.json() == payload
    r = await client.post(
        "/api/v1/items",
        json={**payload, "name": "食品经营许可（新办）"},
        headers=key_headers(world),
    )
    assert r.status_code == 200
    got = await client.get(f"/api/v1/items/{payload['code']}", headers=key_headers(world))
    assert got.json()["name"] == "食品经营许可（新办）"
    row = (await db.execute(select(Item).where(Item.code == payload["code"]))).scalar_one()
    assert row.basic_code == "330100-000-XK-001"


async def test_item_scope_and_refusals(client, db, world):
    headers = key_headers(world, "hall_a_pad")
    before = await table_counts(db)
    assert_error(
        await client.post(
            "/api/v1/items", json=ItemPayloadFactory(org_code="HALL-B"), headers=headers
        ),
        403,
        "out_of_scope",
    )
    assert_error(
        await client.post(
            "/api/v1/items",
            json={"code": "ITEM-B1", "name": "抢", "org_code": "HALL-A"},
            headers=headers,
        ),
        403,
        "out_of_scope",
    )
    assert_error(
        await client.post(
            "/api/v1/items", json=ItemPayloadFactory(org_code="NOPE"), headers=headers
        ),
        404,
        "org_not_found",
    )
    assert_error(
        await client.post("/api/v1/items", json={**ItemPayloadFactory(), "x": 1}, headers=headers),
        422,
        "invalid_input",
    )
    assert await table_counts(db) == before
    assert_error(await client.get("/api/v1/items/ITEM-B1", headers=headers), 403, "out_of_scope")
    assert_error(await client.get("/api/v1/items/NOPE", headers=headers), 404, "item_not_found")


async def test_item_list_is_scoped_filtered_and_paged(client, world):
    headers = key_headers(world)
    for i in range(3):
        await client.post(
            "/api/v1/items",
            json=ItemPayloadFactory(name=f"特种设备许可{i}", org_code="DEPT-M"),
            headers=headers,
        )
    everything = await all_pages(client, "/api/v1/items", headers, limit=2)
    assert len(everything) == 5
    dept = await all_pages(client, "/api/v1/items", headers, org_code="DEPT-M")
    assert len(dept) == 3
    named = await all_pages(client, "/api/v1/items", headers, q="特种")
    assert len(named) == 3
    hall_a = await all_pages(client, "/api/v1/items", key_headers(world, "hall_a_pad"))
    assert [i["code"] for i in hall_a] == ["ITEM-A1"]
