"""Rating links (评价邀请): the JSON route, and single use of a link at the service level."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from haochaping.cases.models import Case
from haochaping.core.errors import Conflict, Invalid, NotFound
from haochaping.core.security import signer
from haochaping.evaluations import invitations
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.models import Evaluation, Invitation
from tests.conftest import TEST_SECRET
from tests.factories import (
    STAGES_ACCEPT_COMPLETE,
    EvaluationPayloadFactory,
    assert_error,
    iso,
    key_headers,
    make_case,
    now,
    publish_policy,
    table_counts,
)


def invite(client, headers, case_no, body=None):
    return client.post(
        f"/api/v1/cases/{case_no}/invitations",
        headers=headers,
        **({"json": body} if body is not None else {}),
    )


def case_id_of(case: dict):
    """The case's id, to read only this test's rows (the suite's database holds rows other
    tests committed)."""
    return select(Case.id).where(Case.case_no == case["case_no"]).scalar_subquery()


def token_of(url: str) -> str:
    return url.rsplit("/r/", 1)[1]


async def test_a_link_expires_when_the_evaluation_window_closes(client, db, settings, world, case):
    r = await invite(client, key_headers(world), case["case_no"])
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["url"].startswith("http://testserver/r/")
    assert got["qr_url"] == got["url"] + "/qr.svg"
    completed = datetime.fromisoformat(case["completed_at"])
    expected = completed + timedelta(days=settings.evaluation_window_days)
    assert abs(datetime.fromisoformat(got["expires_at"]) - expected) < timedelta(seconds=1)
    row = (
        await db.execute(select(Invitation).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one()
    assert row.used_at is None and row.channel == "qrcode" and row.stage == "whole"
    # The link does not carry the case number or personal data in the clear.
    assert case["case_no"] not in got["url"] and "张三" not in got["url"]


async def test_links_of_a_case_in_progress_last_a_full_window(client, db, settings, world):
    await publish_policy(client, world, {"stages": STAGES_ACCEPT_COMPLETE})
    case = await make_case(db, world, status="accepted", completed_at=None)
    r = await invite(
        client, key_headers(world), case["case_no"], {"channel": "sms", "stage": "accept"}
    )
    assert r.status_code == 201, r.text
    expires = datetime.fromisoformat(r.json()["expires_at"])
    expected = now() + timedelta(days=settings.evaluation_window_days)
    assert abs(expires - expected) < timedelta(minutes=1)
    row = (
        await db.execute(select(Invitation).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one()
    assert (row.channel, row.stage) == ("sms", "accept")


async def test_no_link_for_a_case_not_yet_accepted(client, db, world):
    case = await make_case(db, world, status="received", accepted_at=None, completed_at=None)
    before = await table_counts(db)
    err = assert_error(
        await invite(client, key_headers(world), case["case_no"]), 422, "case_not_accepted"
    )
    assert "尚未受理" in err["message"]
    assert await table_counts(db) == before


async def test_no_link_after_the_window_closed(client, db, settings, world):
    long_ago = now() - timedelta(days=settings.evaluation_window_days + 2)
    case = await make_case(
        db,
        world,
        received_at=iso(long_ago),
        accepted_at=iso(long_ago),
        completed_at=iso(long_ago + timedelta(hours=1)),
    )
    assert_error(
        await invite(client, key_headers(world), case["case_no"]), 422, "evaluation_window_closed"
    )


async def test_link_refusals(client, db, world, case):
    before = await table_counts(db)
    assert_error(await invite(client, key_headers(world), "HZ-NOPE"), 404, "case_not_found")
    assert_error(
        await invite(client, key_headers(world, "hall_b"), case["case_no"]), 403, "out_of_scope"
    )
    assert_error(await invite(client, {}, case["case_no"]), 401, "unauthenticated")
    # hall A's pad key may hand out QR links, not SMS ones: those rate on the sms channel.
    assert_error(
        await invite(client, key_headers(world, "hall_a_pad"), case["case_no"], {"channel": "sms"}),
        403,
        "channel_out_of_scope",
    )
    for body in (
        {"channel": "pad"},
        {"channel": "review"},
        {"stage": "Whole"},
        {"url": "http://evil"},
    ):
        assert_error(
            await invite(client, key_headers(world), case["case_no"], body), 422, "invalid_input"
        )
    assert await table_counts(db) == before


async def test_a_key_hands_out_links_on_its_own_channels(client, world, case):
    r = await invite(
        client, key_headers(world, "hall_a_pad"), case["case_no"], {"channel": "qrcode"}
    )
    assert r.status_code == 201, r.text


# --- using a link (the citizen's side, at the service level) -------------------------------


@pytest.fixture
async def link(client, db, world, case) -> str:
    r = await invite(client, key_headers(world), case["case_no"])
    return token_of(r.json()["url"])


def use(db, app, token, level=5, reasons=("517",), comment=None):
    return invitations.submit_via_invitation(
        db=db,
        secret=TEST_SECRET,
        token=token,
        level=level,
        reasons=list(reasons),
        comment=comment,
        rules=app.state.rules,
        source=evaluation_service.Source(ip="198.51.100.1", user_agent="WeChat"),
    )


async def test_a_link_rates_its_case_once(app, db, world, case, link):
    body = await use(db, app, link)
    await db.commit()
    assert body["case_no"] == case["case_no"] and body["channel"] == "qrcode"
    row = await db.get(Evaluation, body["id"])
    inv = (
        await db.execute(select(Invitation).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one()
    assert row.invitation_id == inv.id and inv.evaluation_id == row.id
    assert inv.used_at is not None and row.client_id is not None
    assert row.rater_cert_no == case["applicant"]["cert_no"]
    with pytest.raises(Conflict) as exc:
        await use(db, app, link, level=1, reasons=(), comment="又来一次")
    assert exc.value.code == "invitation_used" and exc.value.status_code == 409
    count = (
        await db.execute(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.case_id == case_id_of(case))
        )
    ).scalar_one()
    assert count == 1


async def test_an_expired_link_is_refused(app, db, world, case, link):
    inv = (
        await db.execute(select(Invitation).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one()
    inv.expires_at = now() - timedelta(seconds=1)
    await db.commit()
    with pytest.raises(Invalid) as exc:
        await use(db, app, link)
    assert exc.value.code == "invitation_expired" and exc.value.status_code == 422
    assert (
        await db.execute(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.case_id == case_id_of(case))
        )
    ).scalar_one() == 0


async def test_a_forged_link_is_404(app, db, world, case, link):
    for forged in [
        link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"),
        "not-a-token",
        "",
        signer("another-secret-" + "z" * 40, invitations.SALT).dumps({"n": "x"}),
        signer(TEST_SECRET, invitations.SALT).dumps({"n": "no-such-nonce"}),
        signer(TEST_SECRET, invitations.SALT).dumps({"n": 5}),
        signer(TEST_SECRET, "api-token").dumps({"uid": 1}),
    ]:
        with pytest.raises(NotFound) as exc:
            await use(db, app, forged)
        assert exc.value.code == "invitation_invalid" and exc.value.status_code == 404
    assert (
        await db.execute(select(Invitation.used_at).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one() is None
    assert (await use(db, app, link))["case_no"] == case["case_no"]  # the real one still works


async def test_a_refused_rating_leaves_the_link_usable(app, db, world, case, link):
    with pytest.raises(Invalid) as exc:
        await use(db, app, link, level=1, reasons=(), comment=None)
    assert exc.value.code == "reason_required"
    await db.rollback()
    assert (
        await db.execute(select(Invitation.used_at).where(Invitation.case_id == case_id_of(case)))
    ).scalar_one() is None
    body = await use(db, app, link, level=1, reasons=("113",))
    assert body["is_bad"] is True


async def test_a_link_to_a_case_rated_at_the_window_is_a_duplicate(
    client, app, db, world, case, link
):
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json={**EvaluationPayloadFactory(case_no=case["case_no"]), "channel": "pad"},
    )
    assert r.status_code == 201
    with pytest.raises(Conflict) as exc:
        await use(db, app, link)
    assert exc.value.code == "duplicate_evaluation"
