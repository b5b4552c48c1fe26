"""窗口服务之星 by hand: per hall, among the staff with at least N ratings of the month (policy
`star_min_ratings`) and no substantiated bad review, the best score; named on the public
hall page only with the staff member's consent on record (set in the console)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from haochaping.analytics import periods as P
from haochaping.core.models import AuditEvent
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Staff
from haochaping.reports import service as report_service
from tests.factories import ADMIN, add_rating, add_work_order, bearer_headers
from tests.pages.helpers import csrf_of, sign_in
from tests.pages.test_settings_pages import effective, publish

# The last complete month: the one the public pages show.
PERIOD = P.current_period("month", datetime.now(UTC)).previous()
MONTH = PERIOD.label
START = PERIOD.bounds()[0] + timedelta(days=2)


async def _setup(client, db, world):
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "effective_from": "2024-01-01",
            "values": {"star_min_ratings": 3},
        },
    )
    assert r.status_code == 201, r.text
    for no, name, window in (("S-A2", "赵敏", "W-A2"), ("S-A3", "孙立", "W-A1")):
        await org_service.create_staff(
            db=db,
            actor=ADMIN,
            data=org_schemas.StaffCreate(
                staff_no=world.code(no), name=name, org_code=world.code(window)
            ),
        )
    at = START
    for level in (5, 5, 5, 4):  # S-A1: 9.5
        at += timedelta(minutes=7)
        await add_rating(db, world, level=level, at=at)
    for _ in range(20):  # S-A2: (20 × 10 + 3) / 21 = 9.67, with one bad rating
        at += timedelta(minutes=7)
        await add_rating(db, world, level=5, at=at, window="W-A2", staff="S-A2")
    bad = await add_rating(db, world, level=2, at=at, window="W-A2", staff="S-A2")
    order = await add_work_order(db, bad, state="explained", explained_at=at + timedelta(hours=3))
    for level in (5, 5):  # S-A3: 10, but only two ratings
        at += timedelta(minutes=7)
        await add_rating(db, world, level=level, at=at, staff="S-A3")
    for level in (5, 4, 4):  # S-B1 in the other hall: 8.67
        at += timedelta(minutes=7)
        await add_rating(
            db, world, level=level, at=at, org="HALL-B", window="W-B1", staff="S-B1", item=None
        )
    # Next month's ratings change nothing.
    await add_rating(db, world, level=1, at=PERIOD.bounds()[1] + timedelta(hours=1))
    await db.commit()
    return order


async def _stars(db, world) -> dict[str, list[str]]:
    found = await report_service.monthly_stars(
        db=db, actor=report_service.REPORTER, month=MONTH, region_code="330000"
    )
    out: dict[str, list[str]] = {}
    for s in found:
        if s.hall_code in (world.code("HALL-A"), world.code("HALL-B")):
            hall = s.hall_code.removesuffix(world.suffix)
            out.setdefault(hall, []).append(s.staff_no.removesuffix(world.suffix))
    return out


async def test_the_best_score_without_a_substantiated_bad_review(client, db, world):
    order = await _setup(client, db, world)
    # The bad review was explained (no legal basis), not found real: S-A2 is the star.
    assert await _stars(db, world) == {"HALL-A": ["S-A2"], "HALL-B": ["S-B1"]}
    found = await report_service.monthly_stars(
        db=db, actor=report_service.REPORTER, month=MONTH, region_code="330000"
    )
    star = next(s for s in found if s.staff_no == world.code("S-A2"))
    assert (star.total, star.score) == (21, 9.667)
    # Verified as real (核实属实): S-A2 is out, the next best of the hall is the star.
    order.verified_at, order.state = START + timedelta(days=1), "rectifying"
    await db.commit()
    assert await _stars(db, world) == {"HALL-A": ["S-A1"], "HALL-B": ["S-B1"]}
    # An appeal upheld later: the bad review was not substantiated after all.
    order.state = "invalidated"
    await db.commit()
    assert await _stars(db, world) == {"HALL-A": ["S-A2"], "HALL-B": ["S-B1"]}


async def test_fewer_ratings_than_the_policy_asks_is_no_star(client, db, world):
    await _setup(client, db, world)
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "effective_from": "2024-02-01",
            "values": {"star_min_ratings": 22},
        },
    )
    assert r.status_code == 201, r.text
    assert await _stars(db, world) == {}


async def test_the_public_page_names_only_consenting_stars(client, db, world):
    order = await _setup(client, db, world)
    order.verified_at, order.state = START + timedelta(days=1), "rectifying"
    await db.commit()
    hall = world.code("HALL-A")
    r = await client.get(f"/public/orgs/{hall}")
    assert r.status_code == 200
    assert "窗口服务之星" not in r.text and "李娜" not in r.text

    staff = (
        await db.execute(select(Staff).where(Staff.staff_no == world.code("S-A1")))
    ).scalar_one()
    await sign_in(client, world.users["office"])
    page = await client.get("/console/directory/staff")
    assert "登记公开同意" in page.text
    r = await client.post(
        f"/console/directory/staff/{staff.id}/consent",
        data={"csrf_token": csrf_of(page.text), "consent": "1"},
    )
    assert r.status_code == 303, r.text
    r = await client.post(
        f"/console/directory/staff/{staff.id}/consent",
        data={"csrf_token": csrf_of(page.text), "consent": "maybe"},
    )
    assert r.status_code == 422
    await db.refresh(staff)
    assert staff.publish_consent_at is not None
    assert staff.publish_consent_by == world.users["office"]
    audit = (
        await db.execute(
            select(AuditEvent).where(
                AuditEvent.action == "set_staff_consent", AuditEvent.target_id == staff.id
            )
        )
    ).scalar_one()
    assert audit.detail["consent"] is True
    # The console lists the month's stars for the office's region.
    r = await client.get("/console/reports", params={"month": MONTH})
    assert r.status_code == 200 and world.code("S-A1") in r.text

    client.cookies.clear()
    r = await client.get(f"/public/orgs/{hall}")
    assert "窗口服务之星" in r.text
    assert "李娜" in r.text and world.code("S-A1") in r.text
    assert "赵敏" not in r.text  # not a star this month (and no consent)
    # No photo on record: no image, and the photo address answers 404.
    assert "/public/staff/" not in r.text
    assert (await client.get(f"/public/staff/{world.code('S-A1')}/photo")).status_code == 404
    # A star of another hall does not appear here; a window's page has no stars section.
    assert "王强" not in r.text.split("窗口服务之星")[1].split("</section>")[0]
    r = await client.get(f"/public/orgs/{world.code('W-A1')}")
    assert "窗口服务之星" not in r.text


async def test_the_console_policy_form_sets_the_report_and_the_star_minimum(client, world):
    await sign_in(client, world.users["admin"])
    r = await publish(client, region_code="330100", monthly_report="on", star_min_ratings="12")
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert effective(page.text, "monthly_report") == ("每月首个工作日生成上月通报", "杭州市")
    assert effective(page.text, "star_min_ratings") == ("12 条", "杭州市")
    r = await publish(client, region_code="330100", monthly_report="sometimes")
    assert r.status_code == 422 and "月度通报取值无效" in r.text
