"""The window evaluator (issue 13 §1) over HTTP: the serving route's answers and refusals,
pairing and revoking a pad, the pad's screen, and a pad's rating stored through the intake
with its device, window, staff and display moment, once per Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from haochaping.evaluations.models import Evaluation
from haochaping.pads import service as pad_service
from haochaping.pads.models import PadDevice, WindowService
from tests.factories import assert_error, bearer_headers, make_case
from tests.pads.conftest import SERVING, pair, paired_pad, pairing_code, press, serve
from tests.pages.helpers import csrf_of, sign_in


async def _count(db, model, after: int = 0) -> int:
    """Rows of `model` above id `after` (live servers of the browser tests commit theirs)."""
    return (
        await db.execute(select(func.count()).select_from(model).where(model.id > after))
    ).scalar_one()


async def _top(db, model) -> int:
    return (await db.execute(select(func.coalesce(func.max(model.id), 0)))).scalar_one()


async def _last_rating(db) -> int:
    """The newest rating's id: ratings committed by other tests (live servers) stay, so a test
    counts only those above it."""
    return (await db.execute(select(func.coalesce(func.max(Evaluation.id), 0)))).scalar_one()


async def _ratings_since(db, start: int) -> int:
    return (
        await db.execute(select(func.count()).select_from(Evaluation).where(Evaluation.id > start))
    ).scalar_one()


# --- POST/DELETE /api/v1/windows/{window_code}/serving ----------------------------------------


async def test_serving_starts_and_ends_a_windows_service(client, db, world):
    before = await _top(db, WindowService)
    case = await make_case(db, world)
    body = await serve(
        client,
        world.keys["hall_a_pad"],
        "W-A1",
        case_no=case["case_no"],
        flow_no="A012",
        item_code="ITEM-A1",
        staff_no="S-A1",
    )
    assert body["window_code"] == "W-A1"
    assert (body["flow_no"], body["item_name"], body["staff_name"]) == (
        "A012",
        "营业执照核发",
        "李娜",
    )
    # The next case at the window ends the first; staff and item default to the case's.
    other = await make_case(db, world)
    second = await serve(
        client, world.keys["hall_a_pad"], "W-A1", case_no=other["case_no"], flow_no="A013"
    )
    assert (second["staff_no"], second["item_code"]) == ("S-A1", "ITEM-A1")
    rows = (
        (
            await db.execute(
                select(WindowService).where(WindowService.id > before).order_by(WindowService.id)
            )
        )
        .scalars()
        .all()
    )
    assert [r.ended_at is None for r in rows] == [False, True]
    r = await client.delete(SERVING.format("W-A1"), headers={"X-Api-Key": world.keys["all"]})
    assert r.status_code == 204
    await db.refresh(rows[1])
    assert rows[1].ended_at is not None
    # Ending an idle window is no error.
    r = await client.delete(SERVING.format("W-A1"), headers={"X-Api-Key": world.keys["all"]})
    assert r.status_code == 204


async def test_serving_refuses_bad_input_and_stores_nothing(client, db, world):
    before = await _top(db, WindowService)
    case = await make_case(db, world)
    key = {"X-Api-Key": world.keys["hall_a_pad"]}
    good = {"case_no": case["case_no"], "flow_no": "A001"}
    url = SERVING.format("W-A1")
    for window in ("NO-SUCH-WINDOW", "HALL-A"):  # unknown, or not a window
        r = await client.post(SERVING.format(window), json=good, headers=key)
        assert_error(r, 404, "window_not_found")
    for bad in (
        {"case_no": case["case_no"]},  # no flow number
        {**good, "flow_no": ""},
        {**good, "flow_no": "A 1"},
        {**good, "extra": 1},
        {**good, "case_no": 12},
        [],
    ):
        assert_error(await client.post(url, json=bad, headers=key), 422, "invalid_input")
    r = await client.post(
        url, content=b"{not json", headers={**key, "content-type": "application/json"}
    )
    assert r.status_code == 400
    assert_error(
        await client.post(url, json={**good, "case_no": "NO-SUCH"}, headers=key),
        404,
        "case_not_found",
    )
    assert_error(
        await client.post(url, json={**good, "item_code": "ITEM-B1"}, headers=key),
        422,
        "item_mismatch",
    )
    assert_error(
        await client.post(url, json={**good, "staff_no": "S-NOBODY"}, headers=key),
        404,
        "staff_not_found",
    )
    # Another hall's key: neither the window nor the case is in its scope.
    r = await client.post(url, json=good, headers={"X-Api-Key": world.keys["hall_b"]})
    assert_error(r, 403, "out_of_scope")
    b_case = await make_case(
        db, world, org_code="HALL-B", item_code="ITEM-B1", window_code="W-B1", staff_no="S-B1"
    )
    r = await client.post(url, json={**good, "case_no": b_case["case_no"]}, headers=key)
    assert_error(r, 403, "out_of_scope")
    r = await client.delete(SERVING.format("W-A1"), headers={"X-Api-Key": world.keys["hall_b"]})
    assert_error(r, 403, "out_of_scope")
    # People do not announce services: the queuing system does, with its key.
    people = await bearer_headers(client, world.users["admin"])
    assert_error(await client.post(url, json=good, headers=people), 403, "role_forbidden")
    assert_error(await client.post(url, json=good), 401)
    assert await _count(db, WindowService, before) == 0


# --- pairing -----------------------------------------------------------------------------------


async def test_pairing_with_a_one_time_code(client, db, world, settings):
    r = await client.get("/pad", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/pad/pair")
    made = await pairing_code(db, settings, "W-A1")
    assert len(made["code"]) == 9 and made["code"][4] == "-"
    stored = await db.get(PadDevice, made["device_id"])
    assert stored.pairing_hash and made["code"].replace("-", "") not in stored.pairing_hash
    r = await pair(client, "ZZZZ-ZZZZ")
    assert r.status_code == 422 and "配对码不正确" in r.text
    # Typed in lower case with spaces: still the code.
    r = await pair(client, " " + made["code"].lower().replace("-", " ") + " ")
    assert r.status_code == 303 and r.headers["location"] == "/pad"
    cookie = r.headers["set-cookie"]
    assert "hcp_pad=" in cookie and "HttpOnly" in cookie and "Path=/pad" in cookie
    assert "samesite=strict" in cookie.lower()
    await db.refresh(stored)
    assert stored.paired_at is not None and stored.pairing_hash is None
    page = await client.get("/pad")
    assert page.status_code == 200 and "欢迎您，请稍候" in page.text
    # A code works once.
    r = await pair(client, made["code"])
    assert r.status_code == 422


async def test_an_expired_code_is_refused(client, db, world, settings):
    made = await pairing_code(db, settings, "W-A1")
    await db.execute(
        update(PadDevice)
        .where(PadDevice.id == made["device_id"])
        .values(pairing_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await db.commit()
    r = await pair(client, made["code"])
    assert r.status_code == 422 and "已过期" in r.text


async def test_pairing_a_code_for_no_window(db, world, settings):
    for code in ("NOPE", "HALL-A"):
        try:
            await pad_service.create_pairing(db=db, secret=settings.secret_key, window_code=code)
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "code", None) == "window_not_found"
        else:
            raise AssertionError("a pad was paired with no window")


# --- the pad's screen and ratings ----------------------------------------------------------------


async def test_the_screen_follows_the_windows_service(client, db, world, settings):
    await paired_pad(client, db, settings, "W-A1")
    idle = await client.get("/pad/screen")
    assert 'data-state="idle"' in idle.text
    case = await make_case(db, world)
    await serve(client, world.keys["hall_a_pad"], "W-A1", case_no=case["case_no"], flow_no="B07")
    now = await client.get("/pad/screen")
    assert 'data-state="serving"' in now.text
    for shown in ("营业执照核发", "B07", "李娜", "S-A1", "非常满意", "非常不满意"):
        assert shown in now.text
    # Another window's service is not shown here.
    other = await make_case(db, world)
    await serve(client, world.keys["hall_a_pad"], "W-A2", case_no=other["case_no"], flow_no="C01")
    assert "C01" not in (await client.get("/pad/screen")).text
    await client.delete(SERVING.format("W-A1"), headers={"X-Api-Key": world.keys["hall_a_pad"]})
    after = await client.get("/pad/screen")
    assert 'data-state="idle"' in after.text and "李娜" in after.text  # the staff card stays


async def test_a_pad_rating_is_stored_once_through_the_intake(client, db, world, settings):
    start = await _last_rating(db)
    device_id = await paired_pad(client, db, settings, "W-A1")
    case = await make_case(db, world)
    service = await serve(
        client, world.keys["hall_a_pad"], "W-A1", case_no=case["case_no"], flow_no="A1"
    )
    body = press(service["id"], level=2, reasons=["213"], delay_s=4.5)
    headers = {"Idempotency-Key": "press-1"}
    r = await client.post("/pad/evaluations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["is_bad"] is True and 4400 <= answer["display_ms"] <= 4600
    # The same press resent (the offline queue retrying): the first answer, nothing new.
    again = await client.post("/pad/evaluations", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == answer
    assert again.headers["idempotent-replayed"] == "true"
    # Another press for the same case: the case is rated already.
    r = await client.post(
        "/pad/evaluations", json=press(service["id"]), headers={"Idempotency-Key": "press-2"}
    )
    assert_error(r, 409, "duplicate_evaluation")
    rows = (await db.execute(select(Evaluation).where(Evaluation.id > start))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.channel, row.level, row.reasons) == ("pad", 2, ["213"])
    assert row.device_id == f"pad-{device_id}"
    window = (
        await db.execute(select(WindowService.window_id).order_by(WindowService.id.desc()).limit(1))
    ).scalar_one()
    assert row.window_id == window and row.staff_id is not None
    delay = (row.evaluated_at - row.displayed_at).total_seconds()
    assert 4.4 <= delay <= 4.6
    # The idle screen thanks the rater.
    screen = await client.get("/pad/screen")
    assert 'data-state="idle"' in screen.text and "感谢您的评价" in screen.text


async def test_a_pad_rating_refuses_bad_input(client, db, world, settings):
    start = await _last_rating(db)
    await paired_pad(client, db, settings, "W-A1")
    case = await make_case(db, world)
    service = await serve(
        client, world.keys["hall_a_pad"], "W-A1", case_no=case["case_no"], flow_no="A1"
    )
    other = await make_case(db, world)
    elsewhere = await serve(
        client, world.keys["hall_a_pad"], "W-A2", case_no=other["case_no"], flow_no="A2"
    )
    key = {"Idempotency-Key": "k"}
    sid = service["id"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases = [
        (press(sid, level=1), 422, "reason_required"),
        (press(sid, level=5, reasons=["213"]), 422, "reason_level_mismatch"),
        (press(sid, level=6), 422, "invalid_input"),
        ({"level": 5}, 422, "invalid_input"),
        (press(sid, extra="x"), 422, "invalid_input"),
        (press(sid, evaluated_at=future), 422, "evaluated_at_out_of_range"),
        (press(elsewhere["id"]), 404, "service_not_found"),
        (press(10**12), 404, "service_not_found"),
    ]
    for i, (body, status, code) in enumerate(cases):
        r = await client.post("/pad/evaluations", json=body, headers={"Idempotency-Key": f"k{i}"})
        assert_error(r, status, code)
    r = await client.post("/pad/evaluations", json=press(sid))
    assert_error(r, 400, "idempotency_key_required")
    r = await client.post(
        "/pad/evaluations", data={"service_id": str(sid), "level": "5"}, headers=key
    )
    assert r.status_code == 422  # a form (cross-site) is no rating
    assert await _ratings_since(db, start) == 0


async def test_a_revoked_pad_is_refused(client, db, world, settings, app):
    start = await _last_rating(db)
    device_id = await paired_pad(client, db, settings, "W-A1")
    case = await make_case(db, world)
    service = await serve(
        client, world.keys["hall_a_pad"], "W-A1", case_no=case["case_no"], flow_no="A1"
    )
    office = await sign_in_console(client, world)
    page = await office.get("/console/pads")
    assert page.status_code == 200 and "W-A1" in page.text
    r = await office.post(
        f"/console/pads/{device_id}/revoke", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303
    r = await client.post(
        "/pad/evaluations", json=press(service["id"]), headers={"Idempotency-Key": "after"}
    )
    assert_error(r, 401, "pad_revoked")
    assert (await client.get("/pad/screen")).status_code == 401
    page = await client.get("/pad")
    assert page.status_code == 401 and "此评价器已停用" in page.text
    assert await _ratings_since(db, start) == 0
    # Without any credential: unpaired.
    client.cookies.clear()
    r = await client.post(
        "/pad/evaluations", json=press(service["id"]), headers={"Idempotency-Key": "none"}
    )
    assert_error(r, 401, "pad_unpaired")


async def sign_in_console(client, world, who: str = "office"):
    """The same client signed in to the console (the pad's cookie has another path)."""
    r = await sign_in(client, world.users[who])
    assert r.status_code == 303, r.text
    return client


# --- the console -------------------------------------------------------------------------------


async def test_console_makes_a_pairing_code_within_the_persons_area(client, db, world):
    before = await _top(db, PadDevice)
    await sign_in_console(client, world)
    page = await client.get("/console/pads")
    assert page.status_code == 200 and "生成配对码" in page.text
    r = await client.post(
        "/console/pads",
        data={"csrf_token": csrf_of(page.text), "window_code": "W-A2", "name": "2号窗评价器"},
    )
    assert r.status_code == 200 and "配对码已生成" in r.text and "<svg" in r.text
    device = (await db.execute(select(PadDevice).where(PadDevice.id > before))).scalars().one()
    assert (device.name, device.created_by) == ("2号窗评价器", world.users["office"])
    r = await client.post(
        "/console/pads", data={"csrf_token": csrf_of(page.text), "window_code": "NOPE"}
    )
    assert r.status_code == 404 and "不存在" in r.text


async def test_console_pads_are_for_offices_and_within_their_area(client, db, world, settings):
    made = await pairing_code(db, settings, "W-B1")
    await sign_in_console(client, world, "unit_a")
    assert (await client.get("/console/pads")).status_code == 403
    client.cookies.clear()
    # An office whose area holds the window may revoke it; a hall's unit may not even see it.
    await sign_in_console(client, world, "office")
    page = await client.get("/console/pads")
    assert "W-B1" in page.text
    r = await client.post(
        f"/console/pads/{made['device_id'] + 1000}/revoke",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 404


async def test_ratings_sent_together_after_an_outage_are_judged_by_their_press(
    client, db, world, settings
):
    """A pad's queue sends ratings pressed minutes apart within a second of each other: the
    press-burst check (`pad_burst`) judges them by their press (the announcing client's
    reported time), so only presses truly under a second apart are a burst."""
    from haochaping.core.timeutil import utcnow
    from haochaping.db.crypto import DataKeys
    from haochaping.integrity import detectors, jobs
    from tests.integrity.conftest import flags_of

    await paired_pad(client, db, settings, "W-A1")
    now = utcnow()

    async def rated(started_ago: timedelta, pressed_after: timedelta) -> int:
        case = await make_case(db, world)
        service = await serve(
            client, world.keys["hall_a_pad"], "W-A1", case_no=case["case_no"], flow_no="Q"
        )
        started = now - started_ago
        await db.execute(
            update(WindowService)
            .where(WindowService.id == service["id"])
            .values(started_at=started)
        )
        await db.commit()
        pressed = started + pressed_after
        body = {
            **press(service["id"]),
            "displayed_at": (pressed - timedelta(seconds=5)).isoformat(),
            "evaluated_at": pressed.isoformat(),
        }
        r = await client.post(
            "/pad/evaluations", json=body, headers={"Idempotency-Key": str(pressed)}
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    minutes_apart = [
        await rated(timedelta(minutes=40 - 10 * k), timedelta(minutes=2)) for k in range(3)
    ]
    backlog = [
        await rated(timedelta(hours=3), timedelta(minutes=5, milliseconds=300 * k))
        for k in range(3)
    ]
    hall_client = (
        await db.execute(select(Evaluation.client_id).where(Evaluation.id == backlog[0]))
    ).scalar_one()
    assert hall_client is not None
    await jobs.run_batch(
        db,
        keys=DataKeys.from_settings(settings),
        now=now + timedelta(minutes=1),
        checks=[detectors.REGISTRY["pad_burst"]],
    )
    flags = await flags_of(db, minutes_apart + backlog, "pad_burst")
    assert set(flags) == set(backlog)


async def test_the_native_route_records_the_display_moment(client, db, world):
    """`displayed_at` on `POST /evaluations` (a terminal's, or a pad speaking the API): kept,
    never later than the press."""
    pressed = datetime.now(UTC) - timedelta(minutes=1)
    stored = {}
    for name, shown in (
        ("before", pressed - timedelta(seconds=7)),
        ("after", pressed + timedelta(seconds=9)),
    ):
        case = await make_case(db, world)
        r = await client.post(
            "/api/v1/evaluations",
            json={
                "case_no": case["case_no"],
                "channel": "pad",
                "level": 5,
                "evaluated_at": pressed.isoformat(),
                "displayed_at": shown.isoformat(),
            },
            headers={"X-Api-Key": world.keys["hall_a_pad"]},
        )
        assert r.status_code == 201, r.text
        stored[name] = await db.get(Evaluation, r.json()["id"])
    assert (stored["before"].evaluated_at - stored["before"].displayed_at).total_seconds() == 7
    assert stored["after"].displayed_at == stored["after"].evaluated_at
