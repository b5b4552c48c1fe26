"""Stable values of the evaluation domain, with the Chinese labels shown to people."""

from __future__ import annotations

from enum import StrEnum

from haochaping.core.choices import ChoiceSet, IntChoiceSet


class Channel(ChoiceSet):
    PC = "pc", "PC端"
    MOBILE = "mobile", "移动端"
    QRCODE = "qrcode", "二维码"
    PAD = "pad", "评价器"
    TERMINAL = "terminal", "自助终端"
    PHONE = "phone", "电话"
    SMS = "sms", "短信"
    REVIEW = "review", "综合点评"  # 社会各界“综合点评”
    INSPECTION = "inspection", "监督查评"  # 政府部门“监督查评”


CASE_BOUND_CHANNELS = frozenset(
    {
        Channel.PC,
        Channel.MOBILE,
        Channel.QRCODE,
        Channel.PAD,
        Channel.TERMINAL,
        Channel.PHONE,
        Channel.SMS,
    }
)
FREE_CHANNELS = frozenset({Channel.REVIEW, Channel.INSPECTION})
# Not a rating channel: an API client holding it is a child instance that reports its
# ratings up (`POST /api/v1/exchange/...`, issue 14); it may hold no other.
EXCHANGE_CHANNEL = "exchange"

CHANNEL_LABELS = Channel.labels()

# Exchange-data platform code (`pf`) per channel: the national default mapping.
CHANNEL_PF = {
    Channel.PC: 1,
    Channel.MOBILE: 2,
    Channel.QRCODE: 3,
    Channel.PAD: 4,
    Channel.TERMINAL: 5,
    Channel.PHONE: 6,
    Channel.SMS: 7,
}


class Level(IntChoiceSet):
    """A rating's level, best first (the order of the rating page and the filters)."""

    VERY_SATISFIED = 5, "非常满意"
    SATISFIED = 4, "满意"
    BASIC = 3, "基本满意"
    DISSATISFIED = 2, "不满意"
    VERY_DISSATISFIED = 1, "非常不满意"


LEVEL_LABELS = Level.labels()

DEFAULT_STAGE = "whole"
# The stages of a case with a fixed meaning; a bundled "一件事" adds its own steps, labelled
# freely in the region's policy. A stage may be rated once the case has reached it.
STAGE_LABELS = {"whole": "整体评价", "accept": "受理", "complete": "办结"}


class Reached(StrEnum):
    """How far a case must have come before a stage of it may be rated."""

    ACCEPTED = "accepted"
    COMPLETED = "completed"


# `whole` needs acceptance only: DOMAIN.md rates a case "from acceptance until N days after
# completion", and intake has always taken it so; a region may ask for completion instead.
STAGE_REACHED = {
    "whole": Reached.ACCEPTED,
    "accept": Reached.ACCEPTED,
    "complete": Reached.COMPLETED,
}

# Stored channel of a system default rating (默认评价): never accepted from a client.
DEFAULT_RATING_CHANNEL = "system"
STORED_CHANNELS: tuple[str, ...] = (*Channel.values(), DEFAULT_RATING_CHANNEL)
CHANNEL_LABELS_ALL: dict[str, str] = {**CHANNEL_LABELS, DEFAULT_RATING_CHANNEL: "系统默认"}
