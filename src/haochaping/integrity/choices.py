"""Stable values of the integrity domain, with the Chinese labels shown to people."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class FlagState(ChoiceSet):
    OPEN = "open", "待复核"
    CLEARED = "cleared", "已排除（评价有效）"
    INVALIDATED = "invalidated", "已判定无效"


class FlagStage(ChoiceSet):
    """Where a check raised the flag."""

    INTAKE = "intake", "评价入库时检测"
    BATCH = "batch", "定期批量检测"


STATE_LABELS = FlagState.labels()
