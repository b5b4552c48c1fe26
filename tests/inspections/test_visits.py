"""监督查评 visits in the console: the inspector's form with photos, the rating it stores (a
bad result opens a work order), the list and a visit's page, the photos only for those who
may read the visit, the region's checklist, and every refusal storing nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from haochaping.core.models import AuditEvent
from haochaping.core.timeutil import to_local, utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.inspections.models import InspectionChecklist, InspectionPhoto, InspectionVisit
from haochaping.inspections.service import DEFAULT_CHECKLIST
from haochaping.workorders.models import WorkOrder
from tests.factories import table_counts
from tests.inspections.helpers import GIF, JPEG, post_visit, tiny_png
from tests.pages.helpers import alert, csrf_of, sign_in

ALL = [str(i) for i in range(len(DEFAULT_CHECKLIST))]


def visit_id(response) -> int:
    assert response.status_code == 303, response.text[-2000:]
    match = re.fullmatch(r"/console/inspections/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


async def test_the_form_shows_the_default_checklist_to_an_inspector(client, world):
    await sign_in(client, world.users["assessor"])
    r = await client.get("/console/inspections/new")
    assert r.status_code == 200
    for item in DEFAULT_CHECKLIST:
        assert item in r.text
    assert 'enctype="multipart/form-data"' in r.text and 'name="photos"' in r.text
    assert 'href="/console/inspections"' in r.text  # in the navigation


async def test_a_good_visit_is_stored_with_its_photos_and_rating(client, db, world):
    await sign_in(client, world.users["assessor"])
    png = tiny_png()
    r = await post_visit(
        client,
        org_code="HALL-A",
        passed=[str(i) for i in range(len(DEFAULT_CHECKLIST))],
        level="5",
        notes="秩序良好",
        photos=[("hall.png", png, "image/png"), ("desk.jpg", JPEG, "image/jpeg")],
    )
    vid = visit_id(r)
    visit = await db.get(InspectionVisit, vid)
    assert visit.level == 5 and visit.notes == "秩序良好"
    assert all(a["passed"] for a in visit.answers) and len(visit.answers) == len(DEFAULT_CHECKLIST)
    ev = await db.get(Evaluation, visit.evaluation_id)
    assert (ev.channel, ev.case_id, ev.level, ev.stage) == ("inspection", None, 5, "whole")
    assert ev.user_id is not None and ev.comment == "秩序良好"
    photos = (
        (await db.execute(select(InspectionPhoto).where(InspectionPhoto.visit_id == vid)))
        .scalars()
        .all()
    )
    assert [(p.content_type, p.size) for p in photos] == [
        ("image/png", len(png)),
        ("image/jpeg", len(JPEG)),
    ]
    assert (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == ev.id))
    ).scalar() is None
    page = await client.get(f"/console/inspections/{vid}")
    assert page.status_code == 200 and "上城区市民之家" in page.text and "非常满意" in page.text
    img = await client.get(f"/console/inspections/{vid}/photos/{photos[0].id}")
    assert img.status_code == 200 and img.content == png
    assert img.headers["content-type"] == "image/png"
    listing = await client.get("/console/inspections")
    assert f'href="/console/inspections/{vid}"' in listing.text


async def test_a_bad_result_opens_a_work_order_with_the_failed_items(client, db, world):
    await sign_in(client, world.users["assessor"])
    r = await post_visit(client, org_code="HALL-A", passed=["0", "1"], level="1", notes="")
    vid = visit_id(r)
    visit = await db.get(InspectionVisit, vid)
    ev = await db.get(Evaluation, visit.evaluation_id)
    assert ev.level == 1 and ev.comment.startswith("未通过的检查项目：")
    assert DEFAULT_CHECKLIST[2] in ev.comment and DEFAULT_CHECKLIST[0] not in ev.comment
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == ev.id))
    ).scalar_one()
    page = await client.get(f"/console/inspections/{vid}")
    assert f'href="/console/work-orders/{order.id}"' in page.text
    assert page.text.count("不符合：") == len(DEFAULT_CHECKLIST) - 2
    # The unit sees the work order like any other bad rating's.
    await sign_in(client, world.users["unit_a"])
    r = await client.get(f"/console/work-orders/{order.id}")
    assert r.status_code == 200 and "监督查评" in r.text


@pytest.mark.parametrize(
    ("fields", "photos", "status", "message"),
    [
        ({"org_code": "HALL-A"}, [], 422, "请选择查评结果"),
        ({"org_code": "HALL-A", "level": "9"}, [], 422, "查评结果不能大于 5"),
        ({"org_code": "", "level": "5"}, [], 422, "请填写被查评单位"),
        ({"org_code": "NO-SUCH", "level": "5"}, [], 404, "不存在"),
        ({"org_code": "W-A1", "level": "5"}, [], 404, "不存在"),
        ({"org_code": "HALL-A", "level": "1", "passed": ALL}, [], 422, "差评须至少选择一项原因"),
        ({"org_code": "HALL-A", "level": "5", "passed": ["99"]}, [], 422, "检查项目"),
        ({"org_code": "HALL-A", "level": "5", "visited_at": "2001-01-01T09:00"}, [], 422, "30 天"),
        ({"org_code": "HALL-A", "level": "5"}, [("a.gif", GIF, "image/gif")], 422, "JPEG 或 PNG"),
        ({"org_code": "HALL-A", "level": "5"}, [("a.png", JPEG, "image/png")], 422, "不符"),
        (
            {"org_code": "HALL-A", "level": "5"},
            [("big.jpg", JPEG + b"\x00" * (5 * 1024 * 1024), "image/jpeg")],
            413,
            "过大",
        ),
        (
            {"org_code": "HALL-A", "level": "5"},
            [(f"p{i}.jpg", JPEG, "image/jpeg") for i in range(7)],
            422,
            "最多上传 6 张",
        ),
    ],
)
async def test_refused_visits_store_nothing(client, db, world, fields, photos, status, message):
    await sign_in(client, world.users["assessor"])
    before = await table_counts(db)
    r = await post_visit(client, photos=photos, **fields)
    assert r.status_code == status, r.text[-1500:]
    assert message in alert(r.text), alert(r.text)
    assert await table_counts(db) == before


async def test_a_unit_outside_the_inspectors_subtree_is_refused(client, db, world):
    # An inspector of hall A may not inspect hall B.
    from haochaping.accounts import service as account_service
    from tests.factories import PASSWORD

    await account_service.create_user(
        db=db, username="insp_a", password=PASSWORD, role="assessor", org_code="HALL-A"
    )
    await db.commit()
    await sign_in(client, "insp_a")
    before = await table_counts(db)
    r = await post_visit(client, org_code="HALL-B", level="5")
    assert r.status_code == 403 and "超出本账号的机构权限范围" in r.text
    assert await table_counts(db) == before
    # And does not see hall B's visits.
    await sign_in(client, world.users["assessor"])
    other = visit_id(await post_visit(client, org_code="HALL-B", level="4"))
    await sign_in(client, "insp_a")
    assert (await client.get(f"/console/inspections/{other}")).status_code == 404
    listing = await client.get("/console/inspections")
    assert f"/console/inspections/{other}" not in listing.text


@pytest.mark.parametrize(
    ("user", "path", "method"),
    [
        ("unit_a", "/console/inspections", "get"),
        ("unit_a", "/console/inspections/new", "get"),
        ("office", "/console/inspections/new", "get"),
        ("admin", "/console/inspections/new", "get"),
        ("unit_a", "/console/inspections/checklist", "get"),
        ("assessor", "/console/inspections/checklist", "get"),
    ],
)
async def test_roles_that_may_not_are_refused(client, world, user, path, method):
    await sign_in(client, world.users[user])
    r = await client.get(path)
    assert r.status_code == 403 and "role_forbidden" not in r.text
    assert "无权" in r.text or "仅" in r.text


async def test_a_unit_may_not_post_a_visit_or_see_its_photos(client, db, world):
    await sign_in(client, world.users["assessor"])
    vid = visit_id(
        await post_visit(
            client, org_code="HALL-A", level="4", photos=[("x.png", tiny_png(), "image/png")]
        )
    )
    photo = (
        await db.execute(select(InspectionPhoto).where(InspectionPhoto.visit_id == vid))
    ).scalar_one()
    await sign_in(client, world.users["unit_a"])
    before = await table_counts(db)
    token = csrf_of((await client.get("/console/evaluations")).text)
    r = await client.post(
        "/console/inspections", data={"csrf_token": token, "org_code": "HALL-A", "level": "5"}
    )
    assert r.status_code == 403
    assert await table_counts(db) == before
    assert (await client.get(f"/console/inspections/{vid}")).status_code == 403
    assert (await client.get(f"/console/inspections/{vid}/photos/{photo.id}")).status_code == 403
    # The office over the hall reads the visit and its photo.
    await sign_in(client, world.users["office"])
    assert (await client.get(f"/console/inspections/{vid}")).status_code == 200
    r = await client.get(f"/console/inspections/{vid}/photos/{photo.id}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert (await client.get(f"/console/inspections/{vid}/photos/999999")).status_code == 404


async def test_the_office_sets_its_regions_checklist(client, db, world):
    await sign_in(client, world.users["office"])
    page = await client.get("/console/inspections/checklist")
    assert page.status_code == 200 and "系统默认" in page.text
    r = await client.post(
        "/console/inspections/checklist",
        data={"csrf_token": csrf_of(page.text), "items": "窗口无空岗\r\n\r\n评价器可用\r\n"},
    )
    assert r.status_code == 303
    # The newest checklist is this test's (ordered: other tests may have committed some).
    rows = (
        (await db.execute(select(InspectionChecklist).order_by(InspectionChecklist.id)))
        .scalars()
        .all()
    )
    assert rows[-1].items == ["窗口无空岗", "评价器可用"] and rows[-1].region_code == "330000"
    trail = (
        (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "set_inspection_checklist",
                    AuditEvent.target_id == rows[-1].id,
                )
            )
        )
        .scalars()
        .all()
    )
    assert [(e.actor, e.target_id, e.detail["items"]) for e in trail] == [
        (world.users["office"], rows[-1].id, 2)
    ]
    # Hall A's region (330102) lies below: its inspectors now check these two items.
    await sign_in(client, world.users["assessor"])
    form = await client.get("/console/inspections/new")
    assert "窗口无空岗" in form.text and DEFAULT_CHECKLIST[0] not in form.text
    vid = visit_id(await post_visit(client, org_code="HALL-A", level="5", passed=["1"]))
    visit = await db.get(InspectionVisit, vid)
    assert visit.answers == [
        {"item": "窗口无空岗", "passed": False},
        {"item": "评价器可用", "passed": True},
    ]
    assert visit.checklist_id == rows[-1].id


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("", "请填写检查项目"),
        ("甲\n甲", "检查项目有重复"),
        ("长" * 61, "检查项目"),
    ],
)
async def test_a_bad_checklist_is_refused(client, db, world, items, message):
    await sign_in(client, world.users["office"])
    page = await client.get("/console/inspections/checklist")
    before = await table_counts(db)
    r = await client.post(
        "/console/inspections/checklist", data={"csrf_token": csrf_of(page.text), "items": items}
    )
    assert r.status_code == 422 and message in r.text
    assert await table_counts(db) == before


async def test_a_visit_may_be_recorded_later_the_same_month(client, db, world):
    await sign_in(client, world.users["assessor"])
    when = to_local(utcnow() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    vid = visit_id(await post_visit(client, org_code="DEPT-M", level="4", visited_at=when))
    visit = await db.get(InspectionVisit, vid)
    assert abs((utcnow() - timedelta(days=3)) - visit.visited_at) < timedelta(minutes=2)
    ev = await db.get(Evaluation, visit.evaluation_id)
    assert ev.evaluated_at == visit.visited_at
