"""Identifiers in the detectors: their comparable form, and the masks that evidence shows
instead of them. Keyed hashes (HMAC-SM3) come from `db.crypto.DataKeys.identity_hash`, the
same ones the malicious-rater register uses."""

from __future__ import annotations

from haochaping.core.security import mask_cert_no, mask_phone
from haochaping.db.crypto import normalise_identity


def normalize(kind: str, value: str | None) -> str | None:
    """The canonical form of an identifier (`db.crypto.normalise_identity`: the one the keyed
    hashes are taken of), or None when nothing is left of it."""
    if not value:
        return None
    return normalise_identity(value, "phone" if kind == "phone" else "cert") or None


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
    return {"phone": mask_phone, "cert": mask_cert_no, "device": mask_device, "ip": mask_ip}[kind](
        value
    )
