"""Stable values of the closed loop's callbacks, with the Chinese labels shown to people.

The work-order states and actions are in `states.py` (the state machine's table)."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class CallbackMethod(ChoiceSet):
    PHONE = "phone", "电话"
    SMS = "sms", "短信"
    WECHAT = "wechat", "微信"
    VISIT = "visit", "上门走访"
    LINK = "link", "评价人通过链接"  # the rater's own verdict on their progress page


# What a handler records a callback by (the console's form, the JSON routes' `method`).
STAFF_CALLBACK_METHODS: tuple[CallbackMethod, ...] = (
    CallbackMethod.PHONE,
    CallbackMethod.SMS,
    CallbackMethod.WECHAT,
    CallbackMethod.VISIT,
)


class Verdict(ChoiceSet):
    """The rater's view of how their bad rating was handled (回访意见)."""

    SATISFIED = "satisfied", "满意"
    BASIC = "basic", "基本满意"
    DISSATISFIED = "dissatisfied", "不满意"


class DeadlineKind(ChoiceSet):
    """A work order's deadlines (核实, 整改, 回访 期限), named by the step they bound."""

    VERIFY = "verify", "核实"
    RECTIFY = "rectify", "整改"
    CALLBACK = "callback", "回访"


CALLBACK_METHOD_LABELS = CallbackMethod.labels()
DEADLINE_LABELS = DeadlineKind.labels()
VERDICT_LABELS = Verdict.labels()
