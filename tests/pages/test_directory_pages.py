"""Administration in the console (issue 11): organisations, staff, items, accounts and API
keys, each act on record, each within the signed-in person's subtree; the picker by name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from haochaping.accounts import service as account_service
from haochaping.accounts.models import ApiClient, User
from haochaping.analytics import metrics, rollups
from haochaping.analytics.models import StatDayNode
from haochaping.core.models import AuditEvent
from haochaping.evaluations.models import Evaluation
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item, Org, Staff
from tests.factories import ADMIN, PASSWORD, WORLD_ADMIN, assert_error
from tests.pages.helpers import alert, csrf_of, sign_in


async def audit_rows(db, action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list((await db.execute(query)).scalars())


async def org(db, code: str) -> SimpleNamespace:
    """An organisation as the database holds it now (a snapshot, not a live ORM row)."""
    db.expire_all()
    row = (await db.execute(select(Org).where(Org.code == code))).scalar_one()
    return SimpleNamespace(
        **{c: getattr(row, c) for c in ("id", "code", "name", "path", "parent_id", "active")}
    )


async def post(client, path: str, data: dict | None = None, form_page: str | None = None):
    """Post a console form as the browser would, with the CSRF token of `form_page`."""
    page = await client.get(form_page or path)
    assert page.status_code == 200, page.text[-1500:]
    return await client.post(path, data={"csrf_token": csrf_of(page.text), **(data or {})})


@pytest.fixture
async def hall_admin(db, world) -> str:
    """An administrator of hall A's subtree only."""
    await account_service.create_user(
        db=db, username="admin_hall_a", password=PASSWORD, role="admin", org_code="HALL-A"
    )
    await db.commit()
    return "admin_hall_a"


# --- organisations ------------------------------------------------------------------------


async def test_create_rename_move_deactivate_each_on_record(client, db, world):
    await sign_in(client, world.users["admin"])
    before = {a: len(await audit_rows(db, a)) for a in ("create_org", "update_org", "move_org")}
    r = await post(
        client,
        "/console/directory/orgs",
        {
            "code": "DEPT-T",
            "name": "税务局",
            "kind": "department",
            "parent_code": "OFFICE",
            "region_code": "330100",
        },
        form_page="/console/directory",
    )
    assert r.status_code == 303, r.text[-1500:]
    dept = await org(db, "DEPT-T")
    assert r.headers["location"] == f"/console/directory/orgs/{dept.id}"
    assert dept.path == "/OFFICE/DEPT-T/" and dept.active
    detail = f"/console/directory/orgs/{dept.id}"

    r = await post(client, detail + "/rename", {"name": "国家税务总局杭州市税务局"}, detail)
    assert r.status_code == 303
    assert (await org(db, "DEPT-T")).name == "国家税务总局杭州市税务局"

    # Hall B (with its window) moves under the new department: every descendant's path too.
    hall_b = await org(db, "HALL-B")
    r = await post(
        client,
        f"/console/directory/orgs/{hall_b.id}/move",
        {"parent_code": "DEPT-T"},
        f"/console/directory/orgs/{hall_b.id}",
    )
    assert r.status_code == 303, r.text[-1500:]
    assert (await org(db, "HALL-B")).path == "/OFFICE/DEPT-T/HALL-B/"
    assert (await org(db, "HALL-B")).parent_id == dept.id
    assert (await org(db, "W-B1")).path == "/OFFICE/DEPT-T/HALL-B/W-B1/"
    assert (await org(db, "HALL-A")).path == "/OFFICE/HALL-A/"  # others untouched
    page = await client.get(f"/console/directory/orgs/{hall_b.id}")
    assert "共 2 个机构" in page.text  # the flash after the move

    r = await post(client, detail + "/deactivate", {}, detail)
    assert r.status_code == 303
    assert [
        (o.code, o.active) for o in [await org(db, c) for c in ("DEPT-T", "HALL-B", "W-B1")]
    ] == [
        ("DEPT-T", False),
        ("HALL-B", False),
        ("W-B1", False),
    ]
    assert (await org(db, "HALL-A")).active

    assert len(await audit_rows(db, "create_org")) == before["create_org"] + 1
    assert len(await audit_rows(db, "update_org")) == before["update_org"] + 1
    moves = (await audit_rows(db, "move_org"))[before["move_org"] :]
    assert [(m.actor, m.target_id, m.detail["moved"]) for m in moves] == [
        (world.users["admin"], hall_b.id, 2)
    ]
    deactivations = await audit_rows(db, "deactivate_org")
    assert deactivations[-1].detail == {"code": "DEPT-T", "path": dept.path, "deactivated": 3}


async def test_a_move_under_its_own_subtree_is_refused_and_leaves_no_row(client, db, world):
    await sign_in(client, world.users["admin"])
    before = len(await audit_rows(db, "move_org"))
    hall_a = await org(db, "HALL-A")
    for target in ("W-A1", "HALL-A"):
        r = await post(
            client,
            f"/console/directory/orgs/{hall_a.id}/move",
            {"parent_code": target},
            f"/console/directory/orgs/{hall_a.id}",
        )
        assert r.status_code == 422
        assert alert(r.text) == "不能把机构移到它自己或其下级机构之下"
    assert (await org(db, "HALL-A")).path == "/OFFICE/HALL-A/"
    assert (await org(db, "W-A1")).path == "/OFFICE/HALL-A/W-A1/"
    assert len(await audit_rows(db, "move_org")) == before


async def test_a_code_already_used_is_409_not_a_silent_rename(client, db, world):
    await sign_in(client, world.users["admin"])
    r = await post(
        client,
        "/console/directory/orgs",
        {"code": "HALL-A", "name": "别的名字", "kind": "hall", "region_code": "330102"},
        form_page="/console/directory",
    )
    assert r.status_code == 409
    assert "HALL-A 已被使用" in alert(r.text)
    assert (await org(db, "HALL-A")).name == "上城区市民之家"


async def test_bad_input_is_422_in_chinese(client, db, world):
    await sign_in(client, world.users["admin"])
    r = await post(
        client,
        "/console/directory/orgs",
        {"code": "bad code!", "name": "", "kind": "castle", "region_code": "330102"},
        form_page="/console/directory",
    )
    assert r.status_code == 422
    assert "编码" in alert(r.text) and "名称" in alert(r.text)
    hall_a = await org(db, "HALL-A")
    r = await client.post(f"/console/directory/orgs/{hall_a.id}/explode", data={})
    assert r.status_code in (403, 422)  # the CSRF check or the act's pattern, never a 500
    r = await client.get("/console/directory/orgs/0")
    assert r.status_code == 422
    r = await client.get("/console/directory/orgs/99999999")
    assert r.status_code == 404


async def test_an_admin_of_one_subtree_cannot_touch_another(client, db, world, hall_admin):
    await sign_in(client, hall_admin)
    listing = await client.get("/console/directory")
    assert 'data-code="HALL-A"' in listing.text and 'data-code="W-A1"' in listing.text
    assert 'data-code="HALL-B"' not in listing.text and 'data-code="OFFICE"' not in listing.text
    hall_b, w_a1, hall_a = await org(db, "HALL-B"), await org(db, "W-A1"), await org(db, "HALL-A")
    before = len(await audit_rows(db, "update_org"))
    # Another subtree's organisation is not there for them.
    assert (await client.get(f"/console/directory/orgs/{hall_b.id}")).status_code == 404
    csrf = csrf_of((await client.get("/console/directory")).text)
    r = await client.post(
        f"/console/directory/orgs/{hall_b.id}/rename", data={"csrf_token": csrf, "name": "X"}
    )
    assert r.status_code == 404
    # Nor may they move their own window out of their reach, or their own hall at all.
    r = await post(
        client,
        f"/console/directory/orgs/{w_a1.id}/move",
        {"parent_code": "HALL-B"},
        f"/console/directory/orgs/{w_a1.id}",
    )
    assert r.status_code == 403 and alert(r.text) == "超出本账号的机构权限范围"
    r = await client.post(
        f"/console/directory/orgs/{hall_a.id}/deactivate", data={"csrf_token": csrf}
    )
    assert r.status_code == 403
    assert (await org(db, "HALL-B")).name == "杭州市民中心"
    assert (await org(db, "W-A1")).path == "/OFFICE/HALL-A/W-A1/"
    assert (await org(db, "HALL-A")).active
    assert len(await audit_rows(db, "update_org")) == before
    # Accounts of another subtree are not there either.
    other = (
        await db.execute(select(User).where(User.username == world.users["unit_b"]))
    ).scalar_one()
    other_id = other.id
    assert (await client.get(f"/console/users/{other_id}")).status_code == 404
    r = await client.post(f"/console/users/{other_id}/deactivate", data={"csrf_token": csrf})
    assert r.status_code == 404
    db.expire_all()
    assert (await db.get(User, other_id)).active


async def test_units_and_assessors_are_refused_the_directory(client, world):
    await sign_in(client, world.users["unit_a"])
    for path in ("/console/directory", "/console/users", "/console/clients"):
        assert (await client.get(path)).status_code == 403
    home = await client.get("/console/evaluations")
    assert "/console/directory" not in home.text


async def test_offices_see_the_directory_but_not_accounts(client, world):
    await sign_in(client, world.users["office"])
    assert (await client.get("/console/directory")).status_code == 200
    assert (await client.get("/console/users")).status_code == 403
    assert (await client.get("/console/clients")).status_code == 403


# --- staff and items ----------------------------------------------------------------------


async def test_staff_and_items_created_moved_deactivated_on_record(client, db, world):
    await sign_in(client, world.users["office"])
    r = await post(
        client,
        "/console/directory/staff",
        {"staff_no": "S-NEW", "name": "张敏", "org_code": "W-A2"},
    )
    assert r.status_code == 303
    r = await post(
        client,
        "/console/directory/staff",
        {"staff_no": "S-NEW", "name": "张敏", "org_code": "W-B1"},
    )
    assert r.status_code == 303
    staff = (await db.execute(select(Staff).where(Staff.staff_no == "S-NEW"))).scalar_one()
    staff_id, staff_org = staff.id, staff.org_id
    assert staff_org == (await org(db, "W-B1")).id
    r = await post(
        client, f"/console/directory/staff/{staff_id}/deactivate", {}, "/console/directory/staff"
    )
    assert r.status_code == 303
    db.expire_all()
    assert not (await db.get(Staff, staff_id)).active
    rows = [e for e in await audit_rows(db, "create_staff") if e.target_id == staff_id]
    rows += [e for e in await audit_rows(db, "update_staff") if e.target_id == staff_id]
    rows += [e for e in await audit_rows(db, "deactivate_staff") if e.target_id == staff_id]
    assert [(e.action, e.actor, e.detail["org"]) for e in rows] == [
        ("create_staff", world.users["office"], "W-A2"),
        ("update_staff", world.users["office"], "W-B1"),
        ("deactivate_staff", world.users["office"], "W-B1"),
    ]
    found = await client.get("/console/directory/staff", params={"q": "张敏"})
    assert 'data-staff="S-NEW"' in found.text and 'data-staff="S-A1"' not in found.text

    r = await post(
        client,
        "/console/directory/items",
        {"code": "ITEM-NEW", "name": "个体工商户登记", "org_code": "HALL-A"},
    )
    assert r.status_code == 303
    item = (await db.execute(select(Item).where(Item.code == "ITEM-NEW"))).scalar_one()
    r = await post(
        client, f"/console/directory/items/{item.id}/deactivate", {}, "/console/directory/items"
    )
    assert r.status_code == 303
    assert [e.target_id for e in await audit_rows(db, "deactivate_item")][-1] == item.id


async def test_a_staff_member_of_another_subtree_is_refused(client, db, world, hall_admin):
    await sign_in(client, hall_admin)
    r = await post(
        client,
        "/console/directory/staff",
        {"staff_no": "S-B1", "name": "王强", "org_code": "W-A1"},
    )
    assert r.status_code == 403
    staff = (await db.execute(select(Staff).where(Staff.staff_no == "S-B1"))).scalar_one()
    staff_id = staff.id
    r = await post(
        client, f"/console/directory/staff/{staff_id}/deactivate", {}, "/console/directory/staff"
    )
    assert r.status_code == 403
    db.expire_all()
    assert (await db.get(Staff, staff_id)).active


# --- accounts -----------------------------------------------------------------------------


async def test_accounts_created_assigned_reset_ended_deactivated(client, db, world, app):
    await sign_in(client, world.users["admin"])
    r = await post(
        client,
        "/console/users",
        {
            "username": "clerk_new",
            "name": "陈静",
            "password": "first-pass-123",
            "role": "staff",
            "org_code": "W-A1",
        },
    )
    assert r.status_code == 303, r.text[-1500:]
    person = (await db.execute(select(User).where(User.username == "clerk_new"))).scalar_one()
    assert r.headers["location"] == f"/console/users/{person.id}"
    person_id = person.id
    here = f"/console/users/{person_id}"

    # The new person signs in on their own client.
    other = type(client)(transport=client._transport, base_url="http://testserver")
    async with other:
        assert (await sign_in(other, "clerk_new", "first-pass-123")).status_code == 303
        assert (await other.get("/console/evaluations")).status_code == 200

        r = await post(client, here + "/assign", {"role": "unit", "org_code": "HALL-B"}, here)
        assert r.status_code == 303
        db.expire_all()
        person = await db.get(User, person_id)
        assert (person.role, person.org_id) == ("unit", (await org(db, "HALL-B")).id)
        # Their session ended with the change of reach.
        assert (await other.get("/console/evaluations")).status_code in (302, 303)

        r = await post(client, here + "/password", {"password": "second-pass-123"}, here)
        assert r.status_code == 303
        assert (await sign_in(other, "clerk_new", "first-pass-123")).status_code == 401
        assert (await sign_in(other, "clerk_new", "second-pass-123")).status_code == 303
        assert (await other.get("/console/evaluations")).status_code == 200

        r = await post(client, here + "/sessions", {}, here)
        assert r.status_code == 303
        assert (await other.get("/console/evaluations")).status_code in (302, 303)

        assert (await sign_in(other, "clerk_new", "second-pass-123")).status_code == 303
        r = await post(client, here + "/deactivate", {}, here)
        assert r.status_code == 303
        assert (await other.get("/console/evaluations")).status_code in (302, 303)
        assert (await sign_in(other, "clerk_new", "second-pass-123")).status_code == 401

    acts = [
        (e.action, e.actor, e.actor_role)
        for e in (
            await db.execute(
                select(AuditEvent)
                .where(AuditEvent.target_type == "user", AuditEvent.target_id == person_id)
                .order_by(AuditEvent.id)
            )
        ).scalars()
    ]
    admin = world.users["admin"]
    assert acts == [
        ("create_user", admin, "admin"),
        ("assign_user", admin, "admin"),
        ("set_password", admin, "admin"),
        ("end_sessions", admin, "admin"),
        ("deactivate_user", admin, "admin"),
    ]
    assert "first-pass" not in str([e.detail for e in await audit_rows(db, "create_user")])


async def test_an_account_for_another_subtree_is_refused(client, db, world, hall_admin):
    await sign_in(client, hall_admin)
    before = len(await audit_rows(db, "create_user"))
    r = await post(
        client,
        "/console/users",
        {
            "username": "outsider",
            "password": "pass-word-123",
            "role": "admin",
            "org_code": "OFFICE",
        },
    )
    assert r.status_code == 403
    assert alert(r.text) == "超出本账号的机构权限范围"
    assert len(await audit_rows(db, "create_user")) == before
    listing = await client.get("/console/users")
    assert 'data-username="admin_hall_a"' in listing.text
    assert f'data-username="{world.users["unit_b"]}"' not in listing.text


async def test_an_administrator_cannot_deactivate_themselves(client, db, world):
    await sign_in(client, world.users["admin"])
    me = (await db.execute(select(User).where(User.username == world.users["admin"]))).scalar_one()
    r = await post(client, f"/console/users/{me.id}/deactivate", {}, f"/console/users/{me.id}")
    assert r.status_code == 403
    assert alert(r.text) == "不能在此调整或停用自己的账号"


# --- API clients --------------------------------------------------------------------------

KEY = re.compile(r'id="new-key-value">([^<]+)<')


async def test_a_key_is_shown_once_rotate_and_revoke_end_the_old_one(client, db, world):
    await sign_in(client, world.users["admin"])
    r = await post(
        client,
        "/console/clients",
        {"name": "hall-a-kiosk", "org_code": "HALL-A", "channels": ["pad"]},
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    key = KEY.search(r.text).group(1)
    headers = {"X-Api-Key": key}
    assert (await client.get("/api/v1/orgs", headers=headers)).status_code == 200
    # Shown once: the list afterwards has its prefix only.
    listing = await client.get("/console/clients")
    assert key not in listing.text and key[:12] in listing.text
    client_row = (
        await db.execute(select(ApiClient).where(ApiClient.name == "hall-a-kiosk"))
    ).scalar_one()
    assert key not in str([e.detail for e in await audit_rows(db, "create_client")])

    r = await post(client, f"/console/clients/{client_row.id}/rotate", {}, "/console/clients")
    assert r.status_code == 200
    new_key = KEY.search(r.text).group(1)
    assert new_key != key
    assert_error(await client.get("/api/v1/orgs", headers=headers), 401)
    assert (await client.get("/api/v1/orgs", headers={"X-Api-Key": new_key})).status_code == 200

    r = await post(client, f"/console/clients/{client_row.id}/revoke", {}, "/console/clients")
    assert r.status_code == 303
    assert_error(await client.get("/api/v1/orgs", headers={"X-Api-Key": new_key}), 401)
    r = await post(client, f"/console/clients/{client_row.id}/rotate", {}, "/console/clients")
    assert r.status_code == 409
    rotations = [e for e in await audit_rows(db, "rotate_client") if e.target_id == client_row.id]
    assert [e.detail["key_prefix"] for e in rotations] == [new_key[:12]]
    assert new_key not in str(rotations[0].detail)
    revokes = [e for e in await audit_rows(db, "revoke_client") if e.target_id == client_row.id]
    assert len(revokes) == 1


async def test_a_client_of_another_subtree_is_refused(client, db, world, hall_admin):
    await sign_in(client, hall_admin)
    other = (await db.execute(select(ApiClient).where(ApiClient.name == "hall_b"))).scalar_one()
    other_id = other.id
    r = await post(client, f"/console/clients/{other_id}/rotate", {}, "/console/clients")
    assert r.status_code == 403
    r = await post(client, f"/console/clients/{other_id}/revoke", {}, "/console/clients")
    assert r.status_code == 403
    db.expire_all()
    assert (await db.get(ApiClient, other_id)).active
    assert (
        await client.get("/api/v1/orgs", headers={"X-Api-Key": world.keys["hall_b"]})
    ).status_code == 200


# --- the picker ---------------------------------------------------------------------------

OPTION = re.compile(r'<option value="([^"]+)"')


async def picked(client, **params) -> list[str]:
    r = await client.get("/console/pickers/orgs", params=params)
    assert r.status_code == 200, r.text
    return OPTION.findall(r.text)


# This test world's codes: browser tests commit worlds of their own in the same regions.
WORLD = {"OFFICE", "HALL-A", "W-A1", "W-A2", "HALL-B", "W-B1", "DEPT-M", "HALL-NB"}


async def ours(client, **params) -> list[str]:
    return sorted(c for c in await picked(client, **params) if c in WORLD)


@pytest.fixture
async def ningbo(db, world) -> None:
    """A hall in a neighbouring city (330200), under the same office."""
    await org_service.create_region(
        db=db,
        actor=ADMIN,
        data=org_schemas.RegionCreate(code="330200", name="宁波市", parent_code="330000"),
    )
    await org_service.create_org(
        db=db,
        actor=ADMIN,
        data=org_schemas.OrgCreate(
            code="HALL-NB",
            name="宁波市民服务中心",
            kind="hall",
            parent_code="OFFICE",
            region_code="330200",
        ),
    )
    await db.commit()


async def test_the_picker_offers_only_reachable_orgs_by_name(client, db, world, hall_admin):
    await sign_in(client, hall_admin)
    assert await picked(client, q="窗口") == ["W-A1", "W-A2"]  # not W-B1 (hall B's)
    assert await picked(client, q="市民") == ["HALL-A"]  # not 杭州市民中心
    assert await picked(client, q="市民", kind="window") == []
    # The picker's input sends its text under its own name.
    assert await picked(client, field="parent_code", parent_code="1号") == ["W-A1"]
    r = await client.get("/console/pickers/orgs", params={"q": "窗口", "list": "o-parent"})
    assert 'id="o-parent-status"' in r.text and "找到 2 个机构" in r.text
    # Deactivated organisations are not offered.
    w_a2 = await db.get(Org, (await org(db, "W-A2")).id)
    w_a2.active = False
    await db.commit()
    assert await picked(client, q="窗口") == ["W-A1"]


async def test_the_picker_for_a_region_reaches_its_line_not_its_neighbours(
    client, db, world, ningbo
):
    await sign_in(client, world.users["unit_a"])  # hall A, in 上城区 (330102)
    assert await ours(client, q="") == ["HALL-A", "W-A1", "W-A2"]
    # `region`: units of 上城区 and of the regions above it (杭州市, 浙江省), outside the
    # person's subtree too; never those of 宁波市.
    assert await ours(client, q="", scope="region", kind="unit") == [
        "DEPT-M",
        "HALL-A",
        "HALL-B",
        "OFFICE",
    ]
    assert await ours(client, q="宁波", scope="region") == []
    await sign_in(client, world.users["unit_b"])  # hall B, in 杭州市 (330100)
    assert await ours(client, q="", scope="region", kind="hall") == ["HALL-A", "HALL-B"]


async def test_bad_picker_parameters_are_422(client, world):
    await sign_in(client, world.users["admin"])
    for params in ({"scope": "world"}, {"kind": "castle"}, {"q": "x" * 101}, {"list": "<x>"}):
        r = await client.get("/console/pickers/orgs", params=params)
        assert r.status_code == 422, params


# --- staff photos ---------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def upload(client, staff_id: int, name: str, data: bytes, content_type: str):
    page = await client.get("/console/directory/staff")
    return await client.post(
        f"/console/directory/staff/{staff_id}/photo",
        data={"csrf_token": csrf_of(page.text)},
        files={"photo": (name, data, content_type)},
    )


async def test_a_staff_photo_is_checked_stored_served_and_on_record(client, db, world, hall_admin):
    staff = (await db.execute(select(Staff).where(Staff.staff_no == "S-A1"))).scalar_one()
    staff_id = staff.id
    other = (await db.execute(select(Staff).where(Staff.staff_no == "S-B1"))).scalar_one()
    other_id = other.id
    await sign_in(client, world.users["office"])
    r = await upload(client, staff_id, "me.pdf", b"%PDF-1.4 x", "application/pdf")
    assert r.status_code == 422 and alert(r.text) == "照片只接受 PNG、JPEG、WebP 格式"
    r = await upload(client, staff_id, "me.png", b"GIF89a....", "image/png")
    assert r.status_code == 422
    r = await upload(client, staff_id, "me.png", PNG + b"\x00" * (2 * 1024 * 1024), "image/png")
    assert r.status_code == 413
    assert (await client.get(f"/console/directory/staff/{staff_id}/photo")).status_code == 404
    r = await upload(client, staff_id, "me.png", PNG, "image/png")
    assert r.status_code == 303
    photo = await client.get(f"/console/directory/staff/{staff_id}/photo")
    assert photo.status_code == 200 and photo.content == PNG
    assert photo.headers["content-type"] == "image/png"
    listing = await client.get("/console/directory/staff")
    assert f'src="/console/directory/staff/{staff_id}/photo' in listing.text
    rows = [e for e in await audit_rows(db, "set_staff_photo") if e.target_id == staff_id]
    assert [(e.actor, e.detail["staff_no"]) for e in rows] == [(world.users["office"], "S-A1")]
    # Hall A's administrator sees hall A's photo, not hall B's staff at all.
    await sign_in(client, hall_admin)
    assert (await client.get(f"/console/directory/staff/{staff_id}/photo")).status_code == 200
    r = await upload(client, other_id, "x.png", PNG, "image/png")
    assert r.status_code == 404
    assert (await client.get(f"/console/directory/staff/{other_id}/photo")).status_code == 404


# --- regions --------------------------------------------------------------------------------


async def test_regions_created_and_renamed_on_record_within_ones_region(client, db, world):
    await sign_in(client, world.users["office"])  # the office is in 浙江省 (330000)
    before = {a: len(await audit_rows(db, a)) for a in ("create_region", "update_region")}
    data = {"code": "330105", "name": "拱墅区", "parent_code": "330100"}
    r = await post(client, "/console/directory/regions", data)
    assert r.status_code == 303
    r = await post(client, "/console/directory/regions", {**data, "name": "拱墅区（新）"})
    assert r.status_code == 303
    listing = await client.get("/console/directory/regions", params={"q": "拱墅"})
    assert 'data-region="330105"' in listing.text and "拱墅区（新）" in listing.text
    assert 'data-region="330102"' not in listing.text
    assert len(await audit_rows(db, "create_region")) == before["create_region"] + 1
    assert len(await audit_rows(db, "update_region")) == before["update_region"] + 1
    r = await post(client, "/console/directory/regions", {"code": "33", "name": "x"})
    assert r.status_code == 422
    # An office of 上城区 (330102) cannot add a district to 杭州市 (as the JSON route).
    await account_service.create_user(
        db=db, username="office_sc", password=PASSWORD, role="office", org_code="HALL-A"
    )
    await db.commit()
    await sign_in(client, "office_sc")
    r = await post(
        client,
        "/console/directory/regions",
        {"code": "330106", "name": "西湖区", "parent_code": "330100"},
    )
    assert r.status_code == 403 and alert(r.text) == "只能维护本机构所在辖区内的行政区划"
    assert len(await audit_rows(db, "create_region")) == before["create_region"] + 1


async def test_a_move_empties_the_rollups_so_the_figures_follow_the_subtree(app, client, db, world):
    hall_b, window = await org(db, "HALL-B"), await org(db, "W-B1")
    now = datetime.now(UTC)
    for i in range(6):
        at = now - timedelta(days=2 + i)
        db.add(
            Evaluation(
                channel="pad",
                level=5 if i % 2 else 1,
                reasons=[],
                tagset_version="national-2020",
                org_id=hall_b.id,
                window_id=window.id,
                region_code="330100",
                evaluated_at=at,
                received_at=at,
            )
        )
    await db.commit()
    await rollups.refresh(app.state.sessionmaker, now=now + timedelta(days=1))
    assert (await db.execute(select(func.count()).select_from(StatDayNode))).scalar_one() > 0
    today = now.astimezone(rollups.LOCAL).date()
    since = rollups.day_start(today - timedelta(days=20))
    until = rollups.day_start(today - timedelta(days=1))  # whole days: the rollups answer

    async def total(code: str) -> int:
        s = await metrics.summary(db=db, actor=WORLD_ADMIN, org_code=code, since=since, until=until)
        return s.total

    dept_before, hall_b_total = await total("DEPT-M"), await total("HALL-B")
    assert hall_b_total >= 6
    await sign_in(client, world.users["admin"])
    r = await post(
        client,
        f"/console/directory/orgs/{hall_b.id}/move",
        {"parent_code": "DEPT-M"},
        f"/console/directory/orgs/{hall_b.id}",
    )
    assert r.status_code == 303, r.text[-1500:]
    # Emptied with the move: the figures come from the ratings, under the new ancestors.
    assert (await db.execute(select(func.count()).select_from(StatDayNode))).scalar_one() == 0
    assert await total("DEPT-M") == dept_before + hall_b_total
    await rollups.refresh(app.state.sessionmaker, now=now + timedelta(days=1))
    assert await total("DEPT-M") == dept_before + hall_b_total  # and so once folded again


async def test_a_picker_in_a_filter_form_never_pushes_its_own_address(client, world):
    """A filter form pushes its query to the address bar (hx-push-url, inherited by what is
    inside it); a picker's option list must not: when it came back after the form's answer,
    the address bar showed /console/pickers/... (seen in a CI browser run)."""
    await sign_in(client, world.users["office"])
    r = await client.get("/console/integrity")
    assert r.status_code == 200
    form = re.search(r"<form[^>]*hx-push-url=\"true\".*?</form>", r.text, re.S)
    assert form is not None
    pickers = re.findall(r'<input[^>]*hx-get="/console/pickers/[^>]*>', form.group(0))
    assert pickers, "the integrity filter has an organisation picker"
    assert all('hx-push-url="false"' in p for p in pickers)
