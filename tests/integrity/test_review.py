"""The review queue over HTTP: flags listed with their evidence, cleared or invalidated on
record, reflected in the rating's standing and in what the statistics count."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from haochaping.accounts.models import User
from haochaping.core.auth import TOKEN_SALT
from haochaping.core.models import AuditEvent
from haochaping.core.security import signer
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.standing import (
    Standing,
    StandingEvent,
    counted_clause,
    set_standing,
    standing_of,
)
from haochaping.integrity import detectors, service
from haochaping.integrity.models import IntegrityFlag, StaffIdentity
from haochaping.orgs.models import Staff
from haochaping.policies import schemas as policy_schemas
from haochaping.policies import service as policy_service
from tests import factories
from tests.integrity.conftest import T0

BASE = "/api/v1/integrity"


def finding(row, check="source_burst", reason="同一手机号在 6 小时内评价了 4 件不同办件"):
    return detectors.Finding(
        evaluation_id=row["id"],
        org_id=row["org_id"],
        check=check,
        subject="手机号 137****1111",
        reason=reason,
        evidence={"source": "phone", "value": "137****1111", "cases": 4},
    )


@pytest.fixture
async def flagged(db, build):
    """A rating at HALL-A flagged by one check (held), and an unflagged one."""
    row, clean = await build.store([build.spec(at=T0), build.spec(at=T0)])
    (flag_id,) = await service.raise_flags(db=db, findings=[finding(row)], stage="intake")
    await db.commit()
    return row, clean, flag_id


def error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["message"]
    return body


async def counted(db, ids, held_counts=False):
    return (
        await db.execute(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.id.in_(ids), counted_clause(Evaluation.id, held_counts=held_counts))
        )
    ).scalar_one()


# --- the queue -------------------------------------------------------------------------------


async def test_queue_lists_flags_with_their_evidence(client, flagged, headers, iworld):
    row, _clean, flag_id = flagged
    r = await client.get(
        f"{BASE}/flags",
        headers=headers["office"],
        params={"state": "open", "check": "source_burst", "org_code": iworld.code("HALL-A")},
    )
    assert r.status_code == 200, r.text
    items = [i for i in r.json()["items"] if i["id"] == flag_id]
    assert len(items) == 1
    item = items[0]
    assert item["evaluation_id"] == row["id"] and item["check_label"] == "同一来源短时评价多件"
    assert item["state"] == "open" and item["state_label"] == "待复核"
    assert item["standing"] == "held" and item["standing_label"] == "待复核"
    assert item["evidence"]["cases"] == 4 and item["org_code"] == iworld.code("HALL-A")
    assert item["level_label"] == "非常满意" and item["channel_label"] == "评价器"
    assert item["case_no"].startswith("INT-")


async def test_queue_filters_and_pages(client, db, build, headers, iworld):
    rows = await build.store(
        [build.spec(at=T0) for _ in range(3)] + [build.spec(at=T0, window="w_b1")]
    )
    await service.raise_flags(db=db, findings=[finding(r) for r in rows], stage="batch")
    await db.commit()
    mine = {r["id"] for r in rows}
    got, cursor = [], None
    while True:
        r = await client.get(
            f"{BASE}/flags",
            headers=headers["office"],
            params={
                "limit": 2,
                **({"cursor": cursor} if cursor else {}),
                "org_code": iworld.code("OFFICE"),
            },
        )
        assert r.status_code == 200
        got += [i["evaluation_id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert mine <= set(got) and len(got) == len(set(got))
    hall_b = await client.get(
        f"{BASE}/flags", headers=headers["office"], params={"org_code": iworld.code("HALL-B")}
    )
    assert {i["evaluation_id"] for i in hall_b.json()["items"]} == {rows[3]["id"]}
    other = await client.get(
        f"{BASE}/flags",
        headers=headers["office"],
        params={"check": "duplicate_comment", "org_code": iworld.code("OFFICE")},
    )
    assert other.json()["items"] == []
    error(
        await client.get(
            f"{BASE}/flags", headers=headers["office"], params={"org_code": "NO-SUCH-ORG"}
        ),
        404,
        "org_not_found",
    )
    error(
        await client.get(f"{BASE}/flags", headers=headers["office"], params={"cursor": "x"}),
        400,
        "invalid_cursor",
    )
    r = await client.get(f"{BASE}/flags", headers=headers["office"], params={"state": "maybe"})
    assert r.status_code == 422


async def test_detail_shows_the_rating_masked_and_its_history(client, flagged, headers):
    row, _clean, flag_id = flagged
    r = await client.get(f"{BASE}/flags/{flag_id}", headers=headers["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    ev = body["evaluation"]
    assert ev["id"] == row["id"] and ev["rater"]["name"] == "张*"
    assert row["rater_cert_no"] not in r.text and row["rater_phone"] not in r.text
    assert body["other_flags"] == []
    assert [(h["from"], h["to"], h["reason"]) for h in body["standing_history"]] == [
        ("valid", "held", "detector")
    ]


async def test_checks_are_listed(client, headers):
    r = await client.get(f"{BASE}/checks", headers=headers["office"])
    got = {c["name"]: c for c in r.json()}
    assert got["source_burst"]["intake"] and got["source_burst"]["batch"]
    assert not got["perfect_unit"]["intake"] and got["perfect_unit"]["label"]


# --- review ----------------------------------------------------------------------------------


async def test_clear_restores_the_rating_on_record(client, db, flagged, headers, iworld):
    row, _clean, flag_id = flagged
    assert await counted(db, [row["id"]]) == 0
    r = await client.post(
        f"{BASE}/flags/{flag_id}/review",
        headers=headers["office"],
        json={"decision": "clear", "note": "经回访核实为本人评价"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "cleared" and body["reviewed_by"] == iworld.users["office"]
    assert body["review_note"] == "经回访核实为本人评价" and body["reviewed_at"]
    assert body["standing"] == "valid"
    assert [(h["to"], h["reason"]) for h in body["standing_history"]] == [
        ("held", "detector"),
        ("valid", "detector_cleared"),
    ]
    assert await standing_of(db, row["id"]) == Standing.VALID
    assert await counted(db, [row["id"]]) == 1
    again = await client.post(
        f"{BASE}/flags/{flag_id}/review",
        headers=headers["office"],
        json={"decision": "invalidate", "note": "改判"},
    )
    error(again, 409, "flag_already_reviewed")
    assert await standing_of(db, row["id"]) == Standing.VALID


async def test_invalidate_needs_a_note_and_keeps_the_rating(client, db, flagged, headers):
    row, _clean, flag_id = flagged
    error(
        await client.post(
            f"{BASE}/flags/{flag_id}/review",
            headers=headers["office"],
            json={"decision": "invalidate"},
        ),
        422,
        "note_required",
    )
    r = await client.post(
        f"{BASE}/flags/{flag_id}/review",
        headers=headers["office"],
        json={"decision": "invalidate", "note": "工作人员代评，已核实"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "invalidated" and r.json()["standing"] == "invalid"
    assert await db.get(Evaluation, row["id"]) is not None  # kept on record
    assert await counted(db, [row["id"]]) == 0
    assert await counted(db, [row["id"]], held_counts=True) == 0
    events = (
        (
            await db.execute(
                select(StandingEvent)
                .where(StandingEvent.evaluation_id == row["id"])
                .order_by(StandingEvent.id)
            )
        )
        .scalars()
        .all()
    )
    assert [e.to_standing for e in events] == ["held", "invalid"]
    assert events[-1].note == "工作人员代评，已核实"


async def test_a_rating_held_by_two_checks_counts_again_only_when_both_are_cleared(
    client, db, build, headers
):
    (row,) = await build.store([build.spec(at=T0)])
    first, second = await service.raise_flags(
        db=db,
        findings=[finding(row), finding(row, "instant_pad", "办结后 1 秒即评价")],
        stage="batch",
    )
    await db.commit()
    r = await client.get(f"{BASE}/flags/{first}", headers=headers["office"])
    assert [o["id"] for o in r.json()["other_flags"]] == [second]
    await client.post(
        f"{BASE}/flags/{first}/review", headers=headers["office"], json={"decision": "clear"}
    )
    assert await standing_of(db, row["id"]) == Standing.HELD
    await client.post(
        f"{BASE}/flags/{second}/review", headers=headers["office"], json={"decision": "clear"}
    )
    assert await standing_of(db, row["id"]) == Standing.VALID


async def test_invalidating_settles_the_other_flags_on_the_rating(client, db, build, headers):
    (row,) = await build.store([build.spec(at=T0)])
    first, second = await service.raise_flags(
        db=db, findings=[finding(row), finding(row, "instant_pad")], stage="batch"
    )
    await db.commit()
    r = await client.post(
        f"{BASE}/flags/{first}/review",
        headers=headers["office"],
        json={"decision": "invalidate", "note": "刷评"},
    )
    assert r.status_code == 200
    other = await db.get(IntegrityFlag, second, populate_existing=True)
    assert other.state == "invalidated" and f"#{first}" in other.review_note


async def test_clearing_does_not_lift_a_hold_of_the_malicious_rater_register(
    client, db, build, headers
):
    (row,) = await build.store([build.spec(at=T0)])
    await set_standing(
        db=db,
        evaluation_id=row["id"],
        standing=Standing.HELD,
        reason="malicious_rater",
        actor="系统",
    )
    (flag_id,) = await service.raise_flags(db=db, findings=[finding(row)], stage="intake")
    await db.commit()
    await client.post(
        f"{BASE}/flags/{flag_id}/review", headers=headers["office"], json={"decision": "clear"}
    )
    assert await standing_of(db, row["id"]) == Standing.HELD


async def test_a_flag_on_an_invalid_rating_leaves_it_invalid(db, build):
    (row,) = await build.store([build.spec(at=T0)])
    await set_standing(
        db=db,
        evaluation_id=row["id"],
        standing=Standing.INVALID,
        reason="appeal_upheld",
        actor="office",
    )
    await service.raise_flags(db=db, findings=[finding(row)], stage="batch")
    assert await standing_of(db, row["id"]) == Standing.INVALID


# --- who may review --------------------------------------------------------------------------


async def test_units_clients_and_strangers_are_refused(
    client, db, flagged, headers, iworld, settings
):
    _row, _clean, flag_id = flagged
    for path in (f"{BASE}/flags", f"{BASE}/flags/{flag_id}"):
        error(await client.get(path, headers=headers["unit_a"]), 403, "role_forbidden")
        error(
            await client.get(path, headers={"X-Api-Key": iworld.keys["all"]}), 403, "user_required"
        )
    error(
        await client.post(
            f"{BASE}/flags/{flag_id}/review", headers=headers["unit_a"], json={"decision": "clear"}
        ),
        403,
        "role_forbidden",
    )
    error(await client.get(f"{BASE}/flags"), 401, "unauthenticated")
    # The office of another province sees neither the flag nor its rating.
    other = await factories.build_world(db, suffix=f"-o{uuid.uuid4().hex[:6]}")
    await db.commit()
    uid = (
        await db.execute(select(User.id).where(User.username == other.users["office"]))
    ).scalar_one()
    stranger = {
        "Authorization": "Bearer " + signer(settings.secret_key, TOKEN_SALT).dumps({"uid": uid})
    }
    error(await client.get(f"{BASE}/flags/{flag_id}", headers=stranger), 403, "out_of_scope")
    error(
        await client.post(
            f"{BASE}/flags/{flag_id}/review", headers=stranger, json={"decision": "clear"}
        ),
        403,
        "out_of_scope",
    )
    r = await client.get(f"{BASE}/flags", headers=stranger)
    assert flag_id not in {i["id"] for i in r.json()["items"]}
    error(
        await client.get(
            f"{BASE}/flags", headers=stranger, params={"org_code": iworld.code("HALL-A")}
        ),
        403,
        "out_of_scope",
    )
    assert (await db.get(IntegrityFlag, flag_id, populate_existing=True)).state == "open"


async def test_unknown_flags_and_bad_bodies(client, headers):
    error(
        await client.get(f"{BASE}/flags/999999999", headers=headers["office"]),
        404,
        "flag_not_found",
    )
    r = await client.get(f"{BASE}/flags/{2**63}", headers=headers["office"])
    assert r.status_code == 422
    r = await client.post(
        f"{BASE}/flags/1/review", headers=headers["office"], json={"decision": "approve"}
    )
    assert r.status_code == 422
    r = await client.post(
        f"{BASE}/flags/1/review", headers=headers["office"], json={"decision": "clear", "extra": 1}
    )
    assert r.status_code == 422


# --- what the statistics count -------------------------------------------------------------


async def test_held_ratings_count_only_where_the_policy_says_so(db, flagged, iworld):
    row, clean, _flag_id = flagged
    assert policy_schemas.PolicyValues().held_ratings_count is False
    values, _ = await policy_service.effective(db=db, region_code="330102")
    assert await counted(db, [row["id"], clean["id"]], held_counts=values.held_ratings_count) == 1
    patch = policy_schemas.PolicyValuesPatch(held_ratings_count=True)
    data = policy_schemas.PolicyCreate(region_code="330102", values=patch)
    await policy_service.create_policy(db=db, actor=factories.ADMIN, data=data)
    values, _ = await policy_service.effective(db=db, region_code="330102")
    assert values.held_ratings_count is True
    assert await counted(db, [row["id"], clean["id"]], held_counts=values.held_ratings_count) == 2


# --- staff identities ------------------------------------------------------------------------


async def test_staff_identity_register_rules(client, db, headers, iworld):
    path = f"{BASE}/staff-identities"
    body = {
        "staff_no": iworld.code("S-B1"),
        "cert_no": "330102198001010022",
        "phone": "13900000022",
    }
    error(await client.post(path, headers=headers["unit_b"], json=body), 403, "role_forbidden")
    error(
        await client.post(path, headers=headers["office"], json={"staff_no": iworld.code("S-B1")}),
        422,
        "identity_required",
    )
    error(
        await client.post(path, headers=headers["office"], json={**body, "staff_no": "S-NOBODY"}),
        404,
        "staff_not_found",
    )
    r = await client.post(path, headers=headers["admin"], json=body)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["cert", "phone"]
    assert "330102198001010022" not in r.text and "13900000022" not in r.text
    # Registering again replaces the hashes, it does not add rows.
    r = await client.post(path, headers=headers["admin"], json={**body, "phone": "13900000023"})
    assert r.status_code == 200
    staff_id = (
        await db.execute(select(Staff.id).where(Staff.staff_no == iworld.code("S-B1")))
    ).scalar_one()
    hashes = (
        await db.execute(
            select(StaffIdentity.kind, StaffIdentity.identity_hash)
            .where(StaffIdentity.staff_id == staff_id)
            .order_by(StaffIdentity.kind)
        )
    ).all()
    assert [k for k, _ in hashes] == ["cert", "phone"]
    assert "13900000023" not in {h for _, h in hashes}
    # Each registration is on record (who, which staff, which kinds), refusals are not, and
    # the numbers themselves appear nowhere in it.
    trail = (
        await db.execute(
            select(AuditEvent.actor, AuditEvent.detail)
            .where(AuditEvent.action == "staff_identity_recorded", AuditEvent.target_id == staff_id)
            .order_by(AuditEvent.id)
        )
    ).all()
    assert [a for a, _ in trail] == [iworld.users["admin"]] * 2
    assert trail[0][1]["kinds"] == ["cert", "phone"]
    assert "13900000022" not in str(trail) and "330102198001010022" not in str(trail)
