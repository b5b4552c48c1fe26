"""Intake checks: each on ratings built to trip it and on ratings built not to."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select

from haochaping.db.crypto import DataKeys
from haochaping.evaluations.standing import Standing, standing_of
from haochaping.integrity import detectors, service
from haochaping.integrity.models import IntegrityFlag, StaffIdentity
from tests import factories
from tests.integrity.conftest import T0, flag_count, flags_of

STAFF_CERT = "330102198503150017"
STAFF_PHONE = "13912340000"


async def feed(guard, db, rows):
    """Rows reach the hook one request at a time, in arrival order."""
    for row in sorted(rows, key=lambda r: r["received_at"]):
        await guard.on_stored(db, [row])


async def register_a1(db, iworld, settings):
    return await service.register_staff_identity(
        db=db,
        actor=factories.ADMIN,
        keys=DataKeys.from_settings(settings),
        staff_no=iworld.code("S-A1"),
        cert_no=STAFF_CERT,
        phone=STAFF_PHONE,
    )


# --- staff_self_rating ---------------------------------------------------------------------


async def test_staff_rating_own_case_is_flagged_and_held(db, build, guard, iworld, settings):
    await register_a1(db, iworld, settings)
    rows = await build.store(
        [
            build.spec(at=T0, rater_cert_no=STAFF_CERT.lower()),
            build.spec(at=T0, rater_phone="139 1234-0000"),
        ]
    )
    await feed(guard, db, rows)
    flags = await flags_of(db, [r["id"] for r in rows], "staff_self_rating")
    assert set(flags) == {r["id"] for r in rows}
    first = flags[rows[0]["id"]]
    assert first.stage == "intake" and first.state == "open"
    assert first.evidence == {
        "relation": "self",
        "matched": "cert",
        "staff_no": iworld.code("S-A1"),
    }
    assert "疑似本人自评" in first.reason and STAFF_CERT not in first.reason
    assert flags[rows[1]["id"]].evidence["matched"] == "phone"
    assert await standing_of(db, rows[0]["id"]) == Standing.HELD


async def test_colleague_of_the_window_is_flagged(db, build, guard, iworld, settings):
    await register_a1(db, iworld, settings)
    # A case at S-A1's window served by nobody named, rated with S-A1's phone.
    rows = await build.store([build.spec(at=T0, staff_id=None, rater_phone=STAFF_PHONE)])
    await feed(guard, db, rows)
    flag = (await flags_of(db, [rows[0]["id"]]))[rows[0]["id"]]
    assert flag.evidence["relation"] == "colleague" and "内部刷评" in flag.reason


async def test_other_raters_and_other_units_pass(db, build, guard, iworld, settings):
    await register_a1(db, iworld, settings)
    rows = await build.store(
        [
            build.spec(at=T0),  # a citizen at S-A1's window
            build.spec(
                at=T0, window="w_b1", rater_cert_no=STAFF_CERT
            ),  # S-A1 as a citizen elsewhere
        ]
    )
    await feed(guard, db, rows)
    assert await flag_count(db, [r["id"] for r in rows]) == 0
    assert await standing_of(db, rows[0]["id"]) == Standing.VALID


async def test_registration_checks_earlier_ratings_and_keeps_only_hashes(
    db, build, iworld, settings
):
    rows = await build.store(
        [
            build.spec(at=factories.now() - timedelta(days=2), rater_cert_no=STAFF_CERT),
            build.spec(at=factories.now() - timedelta(days=2)),
        ]
    )
    _staff, kinds, flagged = await register_a1(db, iworld, settings)
    assert kinds == ["cert", "phone"] and flagged == 1
    flags = await flags_of(db, [r["id"] for r in rows])
    assert set(flags) == {rows[0]["id"]} and flags[rows[0]["id"]].stage == "batch"
    stored = (await db.execute(select(StaffIdentity.identity_hash))).scalars().all()
    assert STAFF_CERT not in stored and STAFF_PHONE not in stored
    assert all(len(h) == 64 for h in stored)


# --- source_burst ----------------------------------------------------------------------------


async def test_one_phone_rating_cases_of_many_raters_is_flagged(db, build, guard):
    specs = [
        build.spec(
            at=T0 + timedelta(minutes=20 * k),
            channel="mobile",
            rater_phone="13700001111",
            rater_cert_no=f"33010219800101{k:04d}",
        )
        for k in range(4)
    ]
    rows = await build.store(specs)
    await feed(guard, db, rows)
    flags = await flags_of(db, [r["id"] for r in rows], "source_burst")
    # The fourth case crosses the threshold; the three before it are flagged with it.
    assert set(flags) == {r["id"] for r in rows}
    ev = flags[rows[0]["id"]].evidence
    assert ev["source"] == "phone" and ev["value"] == "137****1111"
    assert ev["cases"] == 4 and ev["raters"] == 4
    assert "13700001111" not in flags[rows[0]["id"]].reason


async def test_one_person_with_many_cases_passes(db, build, guard):
    # An agent (or a company's handler) rating their own cases: one phone, one ID number.
    rows = await build.store(
        [
            build.spec(
                at=T0 + timedelta(minutes=10 * k),
                channel="mobile",
                rater_phone="13700002222",
                rater_cert_no="330102198001010011",
            )
            for k in range(8)
        ]
    )
    await feed(guard, db, rows)
    assert await flag_count(db, [r["id"] for r in rows]) == 0


async def test_spread_over_days_and_fixed_pads_pass(db, build, guard):
    spread = [
        build.spec(at=T0 + timedelta(hours=7 * k), channel="mobile", rater_phone="13700003333")
        for k in range(5)
    ]
    pad = [build.spec(at=T0 + timedelta(minutes=k), device_id="PAD-0001") for k in range(12)]
    rows = await build.store(spread + pad)
    await feed(guard, db, rows)
    assert await flag_count(db, [r["id"] for r in rows]) == 0


async def test_one_browser_behind_one_address_is_flagged_not_a_shared_wifi(db, build, guard):
    def link(k, ua):  # rated through a signed link: the address is the rater's own
        return build.spec(
            at=T0 + timedelta(minutes=k),
            channel="qrcode",
            source_ip="198.51.100.9",
            user_agent=ua,
            issued=T0 - timedelta(days=1),
        )

    same = await build.store([link(k, "Mozilla/5.0 (same phone)") for k in range(4)])
    wifi = await build.store([link(k, f"Mozilla/5.0 (phone {k})") for k in range(6)])
    await feed(guard, db, same + wifi)
    flags = await flags_of(db, [r["id"] for r in same + wifi], "source_burst")
    assert set(flags) == {r["id"] for r in same}
    assert flags[same[0]["id"]].evidence["value"] == "198.51.100.*"


# --- invitation_misuse -----------------------------------------------------------------------


async def test_links_spent_seconds_after_issue_again_and_again_are_flagged(
    db, build, guard, iworld
):
    def rating(window, k, after):
        return build.spec(
            at=T0 + timedelta(days=k),
            window=window,
            channel="qrcode",
            issued=T0 + timedelta(days=k, seconds=-after),
        )

    # At W-A1 two links spent 3 s after issue; at W-B1 one quick citizen; one slow link.
    rows = await build.store(
        [rating("w_a1", 0, 3), rating("w_b1", 0, 7), rating("w_a1", 1, 300), rating("w_a1", 2, 4)]
    )
    await feed(guard, db, rows)
    flags = await flags_of(db, [r["id"] for r in rows], "invitation_misuse")
    assert set(flags) == {rows[0]["id"], rows[3]["id"]}
    ev = flags[rows[0]["id"]].evidence
    assert ev["fast_links"] == 2 and ev["seconds_after_issue"] == 3.0
    assert ev["all_seconds"] == [3.0, 4.0]
    assert flags[rows[0]["id"]].subject == f"窗口 {iworld.code('W-A1')}"
    assert "签发后 10 秒内完成" in flags[rows[0]["id"]].reason


async def test_source_that_tried_spent_links_is_flagged(db, build, guard):
    issued = T0 - timedelta(hours=1)
    rows = await build.store(
        [
            build.spec(
                at=T0, channel="qrcode", source_ip="198.51.100.20", user_agent="UA-x", issued=issued
            ),
            build.spec(
                at=T0, channel="qrcode", source_ip="198.51.100.21", user_agent="UA-x", issued=issued
            ),
        ]
    )
    for _ in range(2):
        await guard.note_refusal(
            code="invitation_used",
            source_ip="198.51.100.20",
            user_agent="UA-x",
            at=T0 - timedelta(minutes=5),
        )
    await guard.note_refusal(
        code="invitation_used",
        source_ip="198.51.100.21",
        user_agent="UA-x",
        at=T0 - timedelta(minutes=5),
    )  # once: a citizen pressing twice
    await feed(guard, db, rows)
    flags = await flags_of(db, [r["id"] for r in rows], "invitation_misuse")
    assert set(flags) == {rows[0]["id"]}
    assert flags[rows[0]["id"]].evidence["refused_reused"] == 2


async def test_a_forged_link_attempt_is_enough(db, build, guard):
    (row,) = await build.store(
        [
            build.spec(
                at=T0,
                channel="qrcode",
                source_ip="198.51.100.30",
                user_agent="UA-y",
                issued=T0 - timedelta(hours=1),
            )
        ]
    )
    await guard.note_refusal(
        code="invitation_invalid",
        source_ip="198.51.100.30",
        user_agent="UA-y",
        at=T0 - timedelta(hours=2),
    )
    await feed(guard, db, [row])
    flag = (await flags_of(db, [row["id"]], "invitation_misuse"))[row["id"]]
    assert flag.evidence["refused_forged"] == 1


async def test_refusals_are_shared_between_processes_through_redis(db, build, settings):
    """Two server processes, two guards: the refusal one saw flags the rating the other
    stores (a real Redis; a memory-only guard misses it)."""
    import uuid

    url = os.environ.get("HAOCHAPING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    ip = f"198.51.{uuid.uuid4().int % 200}.{uuid.uuid4().int % 250}"
    ua = f"UA-{uuid.uuid4().hex}"  # a fresh source per run
    first = detectors.IntakeGuard(keys=DataKeys.from_settings(settings), redis_url=url)
    second = detectors.IntakeGuard(keys=DataKeys.from_settings(settings), redis_url=url)
    alone = detectors.IntakeGuard(keys=DataKeys.from_settings(settings))
    try:
        at = T0 - timedelta(minutes=5)
        for _ in range(2):
            await first.note_refusal(code="invitation_used", source_ip=ip, user_agent=ua, at=at)
        await first.note_refusal(code="invitation_invalid", source_ip=ip, user_agent="other", at=at)
        rows = await build.store(
            [
                build.spec(
                    at=T0,
                    channel="qrcode",
                    source_ip=ip,
                    user_agent=ua,
                    issued=T0 - timedelta(hours=1),
                )
            ]
        )
        assert [
            f for f in await alone.findings_for(db, rows) if f.check == "invitation_misuse"
        ] == []
        found = [f for f in await second.findings_for(db, rows) if f.check == "invitation_misuse"]
        assert [(f.evidence["refused_reused"], f.evidence["refused_forged"]) for f in found] == [
            (2, 0)
        ]
        # Older than the window: forgotten.
        later = T0 + timedelta(seconds=second.thresholds.refusal_window_seconds + 60)
        assert await second.refusals.recent(f"{ip}|{ua}", later.timestamp()) == {}
    finally:
        for guard in (first, second, alone):
            await guard.refusals.close()


# --- through the API -------------------------------------------------------------------------


async def test_rating_through_the_api_is_flagged_in_its_own_transaction(
    client, db, iworld, headers
):
    r = await client.post(
        "/api/v1/integrity/staff-identities",
        headers=headers["office"],
        json={"staff_no": iworld.code("S-A1"), "cert_no": STAFF_CERT},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"staff_no": iworld.code("S-A1"), "recorded": ["cert"], "flagged": 0}
    case = await factories.make_case(
        db, iworld, applicant=factories.ApplicantFactory(cert_no=STAFF_CERT)
    )
    own = factories.EvaluationPayloadFactory(case_no=case["case_no"])
    r = await client.post(
        "/api/v1/evaluations", json=own, headers={"X-Api-Key": iworld.keys["hall_a_pad"]}
    )
    assert r.status_code == 201, r.text
    other = await factories.make_case(db, iworld)
    r2 = await client.post(
        "/api/v1/evaluations",
        json=factories.EvaluationPayloadFactory(case_no=other["case_no"]),
        headers={"X-Api-Key": iworld.keys["hall_a_pad"]},
    )
    assert r2.status_code == 201
    flagged = (
        (
            await db.execute(
                select(IntegrityFlag.evaluation_id).where(
                    IntegrityFlag.evaluation_id.in_([r.json()["id"], r2.json()["id"]])
                )
            )
        )
        .scalars()
        .all()
    )
    assert flagged == [r.json()["id"]]
    assert await standing_of(db, r.json()["id"]) == Standing.HELD
    assert await standing_of(db, r2.json()["id"]) == Standing.VALID
