"""The state table, exhaustively, without a database."""

from __future__ import annotations

import itertools

import pytest

from haochaping.workorders.states import (
    ROLES,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Role,
    RoleNotAllowed,
    State,
    allowed_actions,
    next_state,
)

EXPECTED = {
    ("verifying", "verify"): "rectifying",
    ("transferred", "verify"): "rectifying",
    ("verifying", "transfer"): "transferred",
    ("transferred", "transfer"): "transferred",
    ("rectifying", "transfer"): "transferred",
    ("verifying", "explain"): "explained",
    ("transferred", "explain"): "explained",
    ("rectifying", "explain"): "explained",
    ("rectifying", "report_rectified"): "callback",
    ("callback", "callback_satisfied"): "closed",
    ("explained", "callback_satisfied"): "closed",
    ("callback", "callback_dissatisfied"): "supervising",
    ("explained", "callback_dissatisfied"): "supervising",
    ("callback", "callback_unreached"): "callback",
    ("explained", "callback_unreached"): "explained",
    ("callback", "close_unreachable"): "closed",
    ("explained", "close_unreachable"): "closed",
    ("verifying", "escalate"): "supervising",
    ("transferred", "escalate"): "supervising",
    ("rectifying", "escalate"): "supervising",
    ("callback", "escalate"): "supervising",
    ("explained", "escalate"): "supervising",
    ("supervising", "redispatch"): "rectifying",
    ("supervising", "hold_accountable"): "accountability",
    ("supervising", "close"): "closed",
    ("accountability", "close"): "closed",
    ("closed", "reopen"): "supervising",
    ("verifying", "appeal"): "appealing",
    ("transferred", "appeal"): "appealing",
    ("rectifying", "appeal"): "appealing",
    ("appealing", "uphold_appeal"): "invalidated",
    ("appealing", "reject_appeal"): "rectifying",
    **{
        (s, "invalidate"): "invalidated"
        for s in (
            "verifying",
            "transferred",
            "rectifying",
            "explained",
            "callback",
            "supervising",
            "accountability",
        )
    },
}


def test_table_is_exactly_the_expected_one():
    assert {(s.value, a.value): t.value for (s, a), t in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_state_and_action(state, action):
    """Each pair is either a legal move (for its roles only) or raises for every role."""
    for role in Role:
        key = (state.value, action.value)
        if key not in EXPECTED:
            with pytest.raises(IllegalTransition):
                next_state(state, action, role)
        elif role in ROLES[action]:
            assert next_state(state, action, role) == State(EXPECTED[key])
        else:
            with pytest.raises(RoleNotAllowed):
                next_state(state, action, role)


def test_roles_by_action():
    assert Role.UNIT not in ROLES[Action.REDISPATCH]
    assert Role.UNIT not in ROLES[Action.UPHOLD_APPEAL]
    assert Role.SYSTEM in ROLES[Action.ESCALATE]
    assert Role.CITIZEN in ROLES[Action.CALLBACK_DISSATISFIED]
    assert Role.STAFF not in set().union(*ROLES.values())
    assert Role.ASSESSOR not in set().union(*ROLES.values())
    # Only a held rating's review invalidates outside an appeal; no one's page offers it.
    assert ROLES[Action.INVALIDATE] == {Role.REVIEW}
    assert all(
        Action.INVALIDATE not in allowed_actions(s, r)
        for s in State
        for r in ("admin", "office", "unit")
    )


def test_final_states_allow_nothing_but_reopen():
    assert allowed_actions(State.INVALIDATED, "admin") == []
    assert allowed_actions(State.CLOSED, "office") == [Action.REOPEN]
    assert allowed_actions(State.CLOSED, "unit") == []
