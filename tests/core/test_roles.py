"""One Role enum with labels, the choice sets' helpers, and the typed "who may call this"
dependencies: the answers people see stay those of before (403 role_forbidden/user_required)."""

from __future__ import annotations

import pytest
from sqlalchemy import CheckConstraint, select

from haochaping.accounts import service as account_service
from haochaping.accounts.models import ApiClient, User
from haochaping.core.choices import ChoiceSet, check_in
from haochaping.core.errors import Invalid
from haochaping.core.roles import PERSON_ROLES, WORKFLOW_ACTORS, Role
from haochaping.evaluations.choices import CHANNEL_LABELS, Channel
from haochaping.policies.models import PolicySet
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import ROLES, STATE_LABELS, State
from tests.factories import PASSWORD, assert_error, bearer_headers, key_headers


class Colour(ChoiceSet):
    RED = "red", "红色"
    BLUE = "blue", "蓝色"


def test_a_choice_set_keeps_value_and_label_apart():
    assert Colour.RED == "red" and Colour("blue") is Colour.BLUE
    assert Colour.RED.label == "红色" and str(Colour.RED) == "red"
    assert Colour.values() == ["red", "blue"]
    assert Colour.choices() == [("red", "红色"), ("blue", "蓝色")]
    assert Colour.labels() == {"red": "红色", "blue": "蓝色"}
    assert Colour.label_of("blue") == "蓝色"
    assert Colour.label_of("green", "green") == "green" and Colour.label_of(None) == ""
    with pytest.raises(ValueError):
        Colour("红色")  # a label is never a value


def test_labels_come_from_the_enums():
    assert CHANNEL_LABELS["pad"] == Channel.PAD.label == "评价器"
    assert STATE_LABELS[State.CLOSED] == State.CLOSED.label == "已办结"
    assert Role.OFFICE.label == "政务服务管理机构"


def test_one_role_enum_people_and_workflow_actors():
    assert set(PERSON_ROLES) | set(WORKFLOW_ACTORS) == set(Role)
    assert not set(PERSON_ROLES) & set(WORKFLOW_ACTORS)
    # The state machine names only members of the one enum.
    assert all(isinstance(r, Role) for allowed in ROLES.values() for r in allowed)


def _check(model, name: str) -> str:
    constraint = next(
        c
        for c in model.__table__.constraints
        if isinstance(c, CheckConstraint) and str(c.name).endswith(name)
    )
    return str(constraint.sqltext)


def test_check_constraints_are_built_from_the_enums_with_the_stored_text():
    # The text the migrations created (0001, 0004): building it from the enum changes nothing.
    assert (
        _check(User, "role_valid")
        == "role IN ('admin', 'office', 'unit', 'staff', 'assessor')"
        == check_in("role", PERSON_ROLES)
    )
    assert _check(WorkOrder, "state_valid") == (
        "state IN ('verifying', 'transferred', 'rectifying', 'explained', 'callback', "
        "'supervising', 'accountability', 'appealing', 'closed', 'invalidated')"
    )


@pytest.mark.parametrize("role", ["system", "citizen", "review"])
async def test_no_account_holds_a_workflow_actor_role(db, world, role):
    with pytest.raises(Invalid) as exc:
        await account_service.create_user(
            db=db, username=f"x-{role}", password=PASSWORD, role=role, org_code="HALL-A"
        )
    assert exc.value.code == "unknown_role"
    assert (await db.execute(select(User).where(User.username == f"x-{role}"))).first() is None


async def test_manager_routes_refuse_other_roles_and_api_keys(client, db, world):
    body = {"region_code": "330102", "values": {}}
    before = len((await db.execute(select(PolicySet.id))).all())
    for who in ("unit_a", "assessor"):
        headers = await bearer_headers(client, world.users[who])
        assert_error(
            await client.post("/api/v1/policies", headers=headers, json=body), 403, "role_forbidden"
        )
        assert_error(
            await client.get("/api/v1/integrity/checks", headers=headers), 403, "role_forbidden"
        )
        assert_error(
            await client.get("/api/v1/integrity/flags", headers=headers), 403, "role_forbidden"
        )
    assert len((await db.execute(select(PolicySet.id))).all()) == before
    assert_error(
        await client.get("/api/v1/integrity/checks", headers=key_headers(world)),
        403,
        "user_required",
    )
    office = await bearer_headers(client, world.users["office"])
    assert (await client.get("/api/v1/integrity/checks", headers=office)).status_code == 200
    assert (await client.post("/api/v1/policies", headers=office, json=body)).status_code == 201
    assert len((await db.execute(select(PolicySet.id))).all()) == before + 1


async def test_only_an_administrator_revokes_a_client(client, db, world):
    cid = (await db.execute(select(ApiClient.id).where(ApiClient.name == "hall_b"))).scalar_one()
    path = f"/api/v1/clients/{cid}/revoke"
    office = await bearer_headers(client, world.users["office"])
    assert_error(await client.post(path, headers=office), 403, "role_forbidden")
    assert_error(await client.post(path, headers=key_headers(world)), 403, "user_required")
    admin = await bearer_headers(client, world.users["admin"])
    r = await client.post(path, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
