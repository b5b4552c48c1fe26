"""Keyed hashes of personal identifiers (HMAC-SM3): a rater or staff member can be matched
without their certificate or phone number being stored or compared in the clear."""

from __future__ import annotations

import hashlib
import hmac
import re

_SPACES = re.compile(r"[\s\-()（）]")


def normalise_identity(value: str) -> str:
    """The comparable form of a certificate or phone number (no spaces, upper case)."""
    return _SPACES.sub("", value).upper()


def _key(secret: str) -> bytes:
    # A purpose-bound key derived from the service secret.
    return hashlib.new("sm3", b"haochaping-identity-v1:" + secret.encode()).digest()


def identity_hash(secret: str, value: str | None) -> str | None:
    """HMAC-SM3 of a normalised identifier, hex; None for an empty value."""
    if not value:
        return None
    return hmac.new(_key(secret), normalise_identity(value).encode(), "sm3").hexdigest()
