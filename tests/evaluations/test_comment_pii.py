"""Phone and ID numbers typed into comments: masked at intake, the original kept only
SM4-encrypted, revealed to a handler through an audited route."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from haochaping.core.models import AuditEvent
from haochaping.core.timeutil import utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.ledger import jobs as ledger_jobs
from haochaping.ledger.service import FindingKind
from haochaping.workorders.models import WorkOrder, WorkOrderEvent
from tests.factories import (
    EvaluationPayloadFactory,
    assert_error,
    bearer_headers,
    key_headers,
    make_case,
)
from tests.ledger.conftest import LATER, tamper

PHONE, CERT = "13812345678", "11010119900307001X"
TYPED = f"办事员让我留电话{PHONE}，身份证{CERT}，到现在没人联系"
MASKED = "办事员让我留电话138****5678，身份证110101********001X，到现在没人联系"


async def raw_comment(db, evaluation_id: int) -> tuple[str | None, str | None]:
    """The comment columns as the database holds them (no column type in between)."""
    row = (
        await db.execute(
            text("SELECT comment, comment_original FROM evaluation WHERE id = :id"),
            {"id": evaluation_id},
        )
    ).one()
    return row[0], row[1]


def assert_no_number_in_clear(*values: str | None) -> None:
    for value in values:
        assert PHONE not in (value or "") and CERT not in (value or ""), value
        assert "19900307" not in (value or ""), value


async def reveals_of(db, evaluation_id: int) -> list[AuditEvent]:
    return list(
        (
            await db.execute(
                select(AuditEvent)
                .where(
                    AuditEvent.action == "reveal_comment",
                    AuditEvent.target_type == "evaluation",
                    AuditEvent.target_id == evaluation_id,
                )
                .order_by(AuditEvent.id)
            )
        ).scalars()
    )


async def rate(client, db, world, comment: str = TYPED, level: int = 2) -> dict:
    case = await make_case(db, world)
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world, "hall_a_pad"),
        json=EvaluationPayloadFactory(
            case_no=case["case_no"], level=level, reasons=[], comment=comment
        ),
    )
    assert r.status_code == 201, r.text
    return r.json()


def reveal(client, headers, evaluation_id):
    return client.post(f"/api/v1/evaluations/{evaluation_id}/reveal-comment", headers=headers)


async def test_numbers_in_a_comment_are_stored_masked_and_the_original_encrypted(client, db, world):
    got = await rate(client, db, world)
    assert got["comment"] == MASKED
    comment, original = await raw_comment(db, got["id"])
    assert comment == MASKED
    assert original is not None and original != TYPED
    assert_no_number_in_clear(comment, original)
    # Decrypted by its column type, the original is what the rater typed.
    stored = await db.get(Evaluation, got["id"])
    assert stored.comment_original == TYPED


async def test_a_comment_without_numbers_keeps_no_original(client, db, world):
    got = await rate(client, db, world, comment="窗口人员不熟悉业务，编号 2026-118 的材料被退回")
    assert await raw_comment(db, got["id"]) == (
        "窗口人员不熟悉业务，编号 2026-118 的材料被退回",
        None,
    )


async def test_batch_items_are_masked_alike(client, db, world):
    cases = [await make_case(db, world) for _ in range(2)]
    items = [
        EvaluationPayloadFactory(case_no=cases[0]["case_no"], level=1, reasons=[], comment=TYPED),
        EvaluationPayloadFactory(case_no=cases[1]["case_no"], level=5, comment="很好"),
    ]
    r = await client.post(
        "/api/v1/evaluations/batch",
        json={"items": items},
        headers={**key_headers(world), "Prefer": "return=minimal"},
    )
    assert r.status_code == 200, r.text
    first, second = (i["id"] for i in r.json()["items"])
    comment, original = await raw_comment(db, first)
    assert comment == MASKED and original is not None
    assert_no_number_in_clear(comment, original)
    assert (await db.get(Evaluation, first)).comment_original == TYPED
    assert await raw_comment(db, second) == ("很好", None)


async def test_the_follow_up_rating_is_masked_too(client, db, world):
    got = await rate(client, db, world, comment="材料要求说不清")
    order = (
        await db.execute(select(WorkOrder).where(WorkOrder.evaluation_id == got["id"]))
    ).scalar_one()
    unit = await bearer_headers(client, world.users["unit_a"])
    for action in ("verify", "report_rectified"):
        r = await client.post(
            f"/api/v1/work-orders/{order.id}/actions",
            headers=unit,
            json={"action": action, "note": "已处理"},
        )
        assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/work-orders/{order.id}/follow-up",
        headers=key_headers(world, "hall_a_pad"),
        json={"level": 1, "reasons": [], "comment": TYPED},
    )
    assert r.status_code == 201, r.text
    comment, original = await raw_comment(db, r.json()["id"])
    assert comment == MASKED and original is not None
    assert_no_number_in_clear(comment, original)
    notes = (
        (
            await db.execute(
                select(WorkOrderEvent.note).where(WorkOrderEvent.work_order_id == order.id)
            )
        )
        .scalars()
        .all()
    )
    assert MASKED in notes
    assert_no_number_in_clear(*notes)


async def test_a_handler_reveals_the_original_and_the_reveal_is_audited(client, db, world):
    got = await rate(client, db, world)
    unit = await bearer_headers(client, world.users["unit_a"])
    r = await reveal(client, unit, got["id"])
    assert r.status_code == 200, r.text
    assert r.json() == {"id": got["id"], "comment": TYPED}
    audit = await reveals_of(db, got["id"])
    assert [(a.actor, a.actor_role, a.target_type, a.target_id) for a in audit] == [
        (world.users["unit_a"], "unit", "evaluation", got["id"])
    ]
    # Every reveal is on record, not just the first.
    assert (await reveal(client, unit, got["id"])).status_code == 200
    assert len(await reveals_of(db, got["id"])) == 2
    # The ordinary answers still show it masked.
    r = await client.get(f"/api/v1/evaluations/{got['id']}", headers=unit)
    assert r.json()["comment"] == MASKED


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("admin", 200, None),
        ("office", 200, None),
        ("unit_a", 200, None),
        ("unit_b", 404, "evaluation_not_found"),  # another hall: outside the caller's subtree
        ("assessor", 403, "role_forbidden"),
        ("key", 403, None),
    ],
)
async def test_who_may_reveal_a_comment(client, db, world, who, status, code):
    got = await rate(client, db, world)
    if who == "key":
        headers = key_headers(world)
    else:
        headers = await bearer_headers(client, world.users[who])
    r = await reveal(client, headers, got["id"])
    audits = await reveals_of(db, got["id"])
    if status == 200:
        assert r.status_code == 200 and r.json()["comment"] == TYPED
        assert len(audits) == 1
    else:
        assert r.status_code == status, r.text
        if code:
            assert_error(r, status, code)
        assert TYPED not in r.text and audits == []


async def test_nothing_to_reveal_and_unknown_ratings(client, db, world):
    plain = await rate(client, db, world, comment="态度不好")
    unit = await bearer_headers(client, world.users["unit_a"])
    assert_error(await reveal(client, unit, plain["id"]), 422, "comment_not_masked")
    assert_error(await reveal(client, unit, 10**9), 404, "evaluation_not_found")
    assert_error(await reveal(client, unit, 0), 422, "invalid_input")
    assert await reveals_of(db, plain["id"]) == [] and await reveals_of(db, 10**9) == []


async def test_the_ledger_seals_both_the_masked_comment_and_the_original(
    client, db, world, sessionmaker
):
    got = await rate(client, db, world)
    other = await rate(client, db, world, comment="态度不好")
    await ledger_jobs.seal_pending(sessionmaker)
    result = await ledger_jobs.verify(sessionmaker, now=utcnow() + LATER)
    assert result.ok, result.lines()
    # Swapping the encrypted original for another ciphertext is caught like any other edit.
    swapped = (
        await db.execute(
            text("SELECT comment_original FROM evaluation WHERE id = :id"), {"id": got["id"]}
        )
    ).scalar_one()
    await tamper(
        db,
        "evaluation",
        "UPDATE evaluation SET comment_original = :c WHERE id = :id",
        c=swapped[:-4] + "AAAA",
        id=got["id"],
    )
    await tamper(
        db,
        "evaluation",
        "UPDATE evaluation SET comment = :c WHERE id = :id",
        c="态度很好",
        id=other["id"],
    )
    result = await ledger_jobs.verify(sessionmaker, now=utcnow() + LATER)
    assert sorted(result.ids(FindingKind.ALTERED)) == sorted([got["id"], other["id"]])
