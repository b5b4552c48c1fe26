"""Passwords (argon2), API keys (random, stored as SHA-256), signed tokens and masking."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_hasher = PasswordHasher()
# A valid hash to verify against when the user does not exist, so timing reveals nothing.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def use_fast_hashing_for_tests() -> None:
    """Cheap argon2 parameters: test suites hash hundreds of passwords (never in production)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("not-a-real-password")


API_KEY_PREFIX = "hcp_"


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; constant work when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    """A fresh API key: 256 random bits, shown once."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 of an API key: keys carry 256 random bits, so a slow hash adds nothing."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def signer(secret: str, salt: str) -> URLSafeTimedSerializer:
    """A signer for tokens of one purpose (the salt keeps purposes apart)."""
    return URLSafeTimedSerializer(secret, salt=salt)


def load_signed(secret: str, salt: str, token: str, max_age: int | None) -> dict | None:
    """The payload of a signed token, or None when it is forged, malformed or expired."""
    try:
        data = signer(secret, salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired, ValueError, UnicodeError):
        return None
    return data if isinstance(data, dict) else None


# --- masking of personal data ---------------------------------------------------------


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧**娜; keeps enough for a person to recognise a record."""
    if not name:
        return name
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_cert_no(cert_no: str | None) -> str | None:
    """110101199003070011 → 1101**********0011."""
    if not cert_no:
        return cert_no
    if len(cert_no) <= 8:
        return cert_no[:1] + "*" * (len(cert_no) - 1)
    return cert_no[:4] + "*" * (len(cert_no) - 8) + cert_no[-4:]


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_text(text: str | None) -> str | None:
    """Masks ID-card and mobile numbers that people type into free text."""
    if not text:
        return text
    text = _ID_IN_TEXT.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return _PHONE_IN_TEXT.sub(lambda m: m.group(1) + "****" + m.group(2), text)


def split_identifiers(text: str | None) -> tuple[str | None, str | None]:
    """(the text with ID-card and mobile numbers masked, the original text when masking
    changed it, else None): what to store in the clear, and what only encrypted."""
    masked = mask_text(text)
    return masked, (text if masked != text else None)


# Numbers a person could be reached or identified by that `mask_text` does not know: mobile
# numbers written with spaces or dashes, landlines (0571-87654321), other certificates
# (passports, residence permits: a letter or two and seven or more digits), long digit runs.
_SPACED_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)[\s-]\d{4}[\s-](\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\dA-Za-z])(0\d{2,3})[\s-]?\d{3,4}(\d{4})(?!\d)")
_LONG_NUMBER = re.compile(r"(?<![0-9A-Za-z])([A-Za-z]{0,2}\d{2})\d{3,}(\d{2}[Xx]?)(?![0-9A-Za-z])")


def mask_public_text(text: str | None, names: tuple[str, ...] | list[str] = ()) -> str | None:
    """Free text for a public page: ID-card and phone numbers masked as at intake
    (`mask_text`), the other numbers that identify a person masked too, and the names it is
    known to be about (the rater, the applicant, the staff who served) masked like `mask_name`.
    Stricter than `mask_text`: what is published is read by anyone."""
    if not text:
        return text
    text = mask_text(text) or ""
    text = _SPACED_PHONE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _LONG_NUMBER.sub(lambda m: m.group(1) + "***" + m.group(2), text)
    # Longest first, so that 欧阳娜娜 is masked whole before a shorter name inside it.
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len)[::-1]:
        text = text.replace(name, mask_name(name) or "")
    return text
