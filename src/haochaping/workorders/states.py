"""The work-order state machine as a pure table: states, actions, transitions, roles.

No ORM or HTTP here. `TRANSITIONS[(state, action)] -> next state`; an action missing for a
state is illegal there (409), a role missing from `ROLES[action]` may not take it (403).
Who acts is `core.roles.Role`: people's roles and the workflow's other actors (the
deadline job, the rater, a held rating's review).
"""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet
from haochaping.core.roles import HANDLERS, MANAGERS, Role


class State(ChoiceSet):
    VERIFYING = "verifying", "核实中"
    TRANSFERRED = "transferred", "已转办"  # 已转办（待新牵头单位核实）
    RECTIFYING = "rectifying", "整改中"
    EXPLAINED = "explained", "已解释待回访"  # 已解释说明（待回访）
    CALLBACK = "callback", "待回访"
    SUPERVISING = "supervising", "督办中"
    ACCOUNTABILITY = "accountability", "问责中"
    APPEALING = "appealing", "申诉复核中"
    CLOSED = "closed", "已办结"
    # 差评无效：申诉成立，或复核认定为虚假评价
    INVALIDATED = "invalidated", "差评无效（不计入统计）"


class Action(ChoiceSet):
    VERIFY = "verify", "核实并进入整改"  # 核实：联系评价人、查明事实，进入整改
    TRANSFER = "transfer", "转办"  # 转办：非本单位职责，转牵头单位（可设协办单位）
    EXPLAIN = "explain", "解释说明"  # 解释说明：诉求无法律依据，向评价人解释
    REPORT_RECTIFIED = "report_rectified", "报告整改完成"
    CALLBACK_SATISFIED = "callback_satisfied", "回访：满意"  # 回访：满意/基本满意
    CALLBACK_DISSATISFIED = "callback_dissatisfied", "回访：不满意"
    CALLBACK_UNREACHED = "callback_unreached", "回访：未联系上"  # 回访未联系上
    CLOSE_UNREACHABLE = "close_unreachable", "多次联系不上，办结"
    ESCALATE = "escalate", "转督办"  # 转督办（超期或不满意）
    REDISPATCH = "redispatch", "重新派单"  # 督办后重新派单整改
    HOLD_ACCOUNTABLE = "hold_accountable", "启动问责"
    CLOSE = "close", "办结"  # 管理机构办结
    REOPEN = "reopen", "重新督办"  # 追评仍不满意，重新督办
    APPEAL = "appeal", "申诉"  # 责任单位申诉
    UPHOLD_APPEAL = "uphold_appeal", "申诉成立"
    REJECT_APPEAL = "reject_appeal", "驳回申诉"  # 申诉驳回
    # 待复核评价经复核判定无效（疑似刷评、恶意评价人员）
    INVALIDATE = "invalidate", "复核判定评价无效"


S, A = State, Action
HANDLING = (S.VERIFYING, S.TRANSFERRED, S.RECTIFYING)

TRANSITIONS: dict[tuple[State, Action], State] = {
    **{(s, A.VERIFY): S.RECTIFYING for s in (S.VERIFYING, S.TRANSFERRED)},
    **{(s, A.TRANSFER): S.TRANSFERRED for s in HANDLING},
    **{(s, A.EXPLAIN): S.EXPLAINED for s in HANDLING},
    (S.RECTIFYING, A.REPORT_RECTIFIED): S.CALLBACK,
    **{(s, A.CALLBACK_SATISFIED): S.CLOSED for s in (S.CALLBACK, S.EXPLAINED)},
    **{(s, A.CALLBACK_DISSATISFIED): S.SUPERVISING for s in (S.CALLBACK, S.EXPLAINED)},
    (S.CALLBACK, A.CALLBACK_UNREACHED): S.CALLBACK,
    (S.EXPLAINED, A.CALLBACK_UNREACHED): S.EXPLAINED,
    **{(s, A.CLOSE_UNREACHABLE): S.CLOSED for s in (S.CALLBACK, S.EXPLAINED)},
    **{(s, A.ESCALATE): S.SUPERVISING for s in (*HANDLING, S.CALLBACK, S.EXPLAINED)},
    (S.SUPERVISING, A.REDISPATCH): S.RECTIFYING,
    (S.SUPERVISING, A.HOLD_ACCOUNTABLE): S.ACCOUNTABILITY,
    (S.SUPERVISING, A.CLOSE): S.CLOSED,
    (S.ACCOUNTABILITY, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.SUPERVISING,
    **{(s, A.APPEAL): S.APPEALING for s in HANDLING},
    (S.APPEALING, A.UPHOLD_APPEAL): S.INVALIDATED,
    (S.APPEALING, A.REJECT_APPEAL): S.RECTIFYING,
    # While an appeal is pending its decision settles the rating: not here.
    **{
        (s, A.INVALIDATE): S.INVALIDATED
        for s in (*HANDLING, S.EXPLAINED, S.CALLBACK, S.SUPERVISING, S.ACCOUNTABILITY)
    },
}

ROLES: dict[Action, frozenset[Role]] = {
    A.VERIFY: HANDLERS,
    A.TRANSFER: HANDLERS,
    A.EXPLAIN: HANDLERS,
    A.REPORT_RECTIFIED: HANDLERS,
    A.CALLBACK_SATISFIED: HANDLERS | {Role.CITIZEN},
    A.CALLBACK_DISSATISFIED: HANDLERS | {Role.CITIZEN},
    A.CALLBACK_UNREACHED: HANDLERS,
    A.CLOSE_UNREACHABLE: HANDLERS,
    A.ESCALATE: MANAGERS | {Role.SYSTEM},
    A.REDISPATCH: MANAGERS,
    A.HOLD_ACCOUNTABLE: MANAGERS,
    A.CLOSE: MANAGERS,
    A.REOPEN: MANAGERS | {Role.SYSTEM, Role.CITIZEN},
    A.APPEAL: frozenset({Role.UNIT, Role.ADMIN}),
    A.UPHOLD_APPEAL: MANAGERS,
    A.REJECT_APPEAL: MANAGERS,
    A.INVALIDATE: frozenset({Role.REVIEW}),
}

# Recording a callback (回访) and closing after it failed. With an independent callback (the
# region's policy `callback_by="office"`) the unit rated never takes these on its own order.
CALLBACK_ACTIONS = frozenset(
    {A.CALLBACK_SATISFIED, A.CALLBACK_DISSATISFIED, A.CALLBACK_UNREACHED, A.CLOSE_UNREACHABLE}
)


def records_callback(role: str, callback_by: str) -> bool:
    """True when `role` may record callbacks under the policy's `callback_by`."""
    return callback_by != "office" or role != Role.UNIT


OPEN_STATES = frozenset(set(State) - {S.CLOSED, S.INVALIDATED})
FINAL_STATES = frozenset({S.CLOSED, S.INVALIDATED})

STATE_LABELS = State.labels()

ACTION_LABELS = Action.labels()

# Steps the rater sees on their progress page (公开环节); internal notes stay inside.
PUBLIC_STATE_LABELS = {
    S.VERIFYING: "已受理，正在核实",
    S.TRANSFERRED: "已转交主责单位核实",
    S.RECTIFYING: "正在整改",
    S.EXPLAINED: "已向您解释说明",
    S.CALLBACK: "整改完成，待回访",
    S.SUPERVISING: "管理机构督办中",
    S.ACCOUNTABILITY: "管理机构督办中",
    S.APPEALING: "复核中",
    S.CLOSED: "已办结",
    S.INVALIDATED: "经复核，评价不计入统计",
}


class IllegalTransition(Exception):
    """The action is not allowed in the current state."""

    def __init__(self, state: State, action: Action) -> None:
        super().__init__(f"{action} not allowed in {state}")
        self.state, self.action = state, action


class RoleNotAllowed(Exception):
    """The role may not take the action."""

    def __init__(self, role: str, action: Action) -> None:
        super().__init__(f"{role} may not {action}")
        self.role, self.action = role, action


def next_state(state: State, action: Action, role: str) -> State:
    """The state after `action` by `role`; raises when the table does not allow it."""
    if (state, action) not in TRANSITIONS:
        raise IllegalTransition(state, action)
    if role not in ROLES[action]:
        raise RoleNotAllowed(role, action)
    return TRANSITIONS[(state, action)]


def allowed_actions(state: State, role: str) -> list[Action]:
    """The actions `role` may take now (for the forms on the work-order page)."""
    return [a for (s, a) in TRANSITIONS if s == state and role in ROLES[a]]
