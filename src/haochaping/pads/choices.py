"""Stable values of the window evaluator, with the labels people read."""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class PadState(ChoiceSet):
    """Where a pad stands: waiting for its code to be entered, paired, revoked (or its code
    expired unused)."""

    PENDING = "pending", "待配对"
    PAIRED = "paired", "已配对"
    EXPIRED = "expired", "配对码已过期"
    REVOKED = "revoked", "已停用"
