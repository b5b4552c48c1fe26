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


class IdentityKind(ChoiceSet):
    """Which identifier of a rater (or a staff member) a keyed hash is of: the register's
    entries, staff identities and the self-rating check's evidence."""

    CERT = "cert", "身份证号"
    PHONE = "phone", "手机号"


class SourceKind(ChoiceSet):
    """What links ratings to one source in the checks' evidence (the burst and coordination
    checks): an identifier, a device, an address, or near-identical wording."""

    PHONE = "phone", "手机号"
    DEVICE = "device", "设备"
    IP = "ip", "IP 地址"
    CERT = "cert", "身份证号"
    TEXT = "text", "几乎相同的评价内容（按时间相近）"


class RegisterStatus(ChoiceSet):
    """Where an entry of the malicious-rater register stands (derived, not stored)."""

    ACTIVE = "active", "有效"
    REVOKED = "revoked", "已提前移出"
    EXPIRED = "expired", "已到期"
