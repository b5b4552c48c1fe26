"""Identifiers in the detectors: their comparable form, and the masks that evidence shows
instead of them. Keyed hashes (HMAC-SM3) come from `core.crypto.identity_hash`, the same ones
the malicious-rater register uses."""

from __future__ import annotations

import hmac
import re

from haochaping.core import crypto
from haochaping.core.security import mask_cert_no, mask_phone

_NON_DIGITS = re.compile(r"\D")


def normalize(kind: str, value: str | None) -> str | None:
    """The canonical form of an identifier: ID numbers upper-case, phones digits only."""
    if not value:
        return None
    if kind == "phone":
        if value.isdigit() and len(value) != 13:
            return value
        digits = _NON_DIGITS.sub("", value)
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        return digits or None
    return value.strip().replace(" ", "").upper() or None


def mask_ip(ip: str | None) -> str | None:
    """203.0.113.7 → 203.0.113.*; IPv6 keeps its first four groups."""
    if not ip:
        return ip
    if ":" in ip:
        return ":".join(ip.split(":")[:4]) + ":*"
    parts = ip.split(".")
    return ".".join(parts[:3] + ["*"]) if len(parts) == 4 else ip


def mask_device(device_id: str | None) -> str | None:
    """A device identifier shortened to what tells devices apart on screen."""
    if not device_id:
        return device_id
    return device_id if len(device_id) <= 6 else device_id[:6] + "…"


def mask(kind: str, value: str | None) -> str | None:
    """The masked form of an identifier for evidence and subjects."""
    return {"phone": mask_phone, "cert": mask_cert_no, "device": mask_device,
            "ip": mask_ip}[kind](value)


class IdentityHasher:
    """`core.crypto.identity_hash` with the keyed HMAC state prepared once: the same digests
    at about half the cost, for the intake path (checked against the original at start)."""

    PROBE = "13800000000"

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._base = hmac.new(crypto._hash_key(secret), digestmod="sm3")
        if self._fast(self.PROBE) != crypto.identity_hash(secret, self.PROBE):
            self._base = None  # the derivation changed: use the original, slower or not

    def _fast(self, value: str) -> str:
        h = self._base.copy()  # type: ignore[union-attr]
        h.update(crypto.normalise_identity(value).encode())
        return h.hexdigest()

    def __call__(self, value: str | None) -> str | None:
        if not value:
            return None
        if self._base is None:
            return crypto.identity_hash(self.secret, value)
        return self._fast(value)
