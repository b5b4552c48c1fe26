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
# The verdicts the figures count as satisfied (回访满意率: 满意 and 基本满意).
SATISFIED_VERDICTS = (Verdict.SATISFIED.value, Verdict.BASIC.value)


class OrderEvent(ChoiceSet):
    """A work-order event that is not a state machine's `Action`: its opening and a rater's
    follow-up rating (stored in `work_order_event.action` beside the actions)."""

    OPEN = "open", "生成工单"
    FOLLOWUP = "followup", "评价人追加评价"


class ActorKind(ChoiceSet):
    """Who took a work-order step (`work_order_event.actor_kind`). A person's events show
    their name only, so `USER` has no label of its own on the timeline."""

    USER = "user", ""
    SYSTEM = "system", "系统"
    CITIZEN = "citizen", "评价人"
    CLIENT = "client", "评价渠道代评价人提交"
