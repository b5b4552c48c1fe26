"""Personal identifiers at rest: keyed hashes (HMAC-SM3) to find and match them, and SM4-GCM
encryption to store them.

Encrypted values look like ``hcp1:<key id>:<base64(nonce | ciphertext | tag)>`` so that keys
can rotate: new values use the active key, old ones name the key they need. OpenSSL's SM4 (via
`cryptography`) is used because gmssl's pure-Python SM4 is about ten times slower (measured:
0.23 ms against 0.023 ms per value); tests cross-check the two implementations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from haochaping.config import Settings

# Separators people write inside numbers (after NFKC has made full-width forms ASCII).
_SEPARATORS = re.compile(r"[\s\-()./_]")
_NON_DIGITS = re.compile(r"\D")
PREFIX = "hcp1:"
NONCE_BYTES = 12
TAG_BYTES = 16


IdentityKind = Literal["cert", "phone"]


def canonical_phone(value: str) -> str:
    """One form for a phone number however it is written: full-width digits, spaces, dashes,
    dots and brackets, and the country code (+86, 0086, 86 before a mobile number) make no
    difference. A mainland mobile is its 11 digits (13812345678); a mainland fixed line its
    area code with the trunk 0 and the number (01012345678, also from +86 10 1234 5678); a
    number of another country keeps its + and country code (+85291234567)."""
    if (
        value.isascii()
        and value.isdigit()
        and not value.startswith("00")
        and not (len(value) == 13 and value.startswith("861"))
    ):
        return value  # the common case, already canonical: at intake on every rating
    text = unicodedata.normalize("NFKC", value).strip()
    digits = _NON_DIGITS.sub("", text)
    international = text.startswith("+") or digits.startswith("00")
    if international:
        digits = digits[2:] if digits.startswith("00") else digits
        if not digits.startswith("86"):
            return "+" + digits if digits else ""
        national = digits[2:]
        if national.startswith("0"):  # +86 (0)10 ...: the trunk 0 written anyway
            return national
        return national if len(national) == 11 and national.startswith("1") else "0" + national
    if len(digits) == 13 and digits.startswith("861"):
        return digits[2:]  # 86 written without the + before a mobile number
    return digits


def canonical_cert(value: str) -> str:
    """One form for a certificate number: full-width letters and digits made ASCII (NFKC),
    separators dropped, letters upper case (the check letter X of an ID card, passports)."""
    if value.isascii() and value.isalnum():
        return value.upper()  # the common case: at intake on every rating
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def normalise_identity(value: str, kind: IdentityKind) -> str:
    """The comparable form of a certificate (`cert`) or phone (`phone`) number: what every
    keyed identity hash is taken of (intake, cases, the register, staff identities)."""
    return canonical_phone(value) if kind == "phone" else canonical_cert(value)


def _hash_key(secret: str) -> bytes:
    # A purpose-bound key derived from the service secret.
    return hashlib.new("sm3", b"haochaping-identity-v1:" + secret.encode()).digest()


class IdentityHasher:
    """The keyed identity hash (HMAC-SM3 of an identifier in its canonical form,
    `normalise_identity`, hex; None for an empty value). The keyed HMAC state is prepared
    once, so each value costs about half a fresh `hmac.new` (the intake path hashes two
    identifiers per rating)."""

    def __init__(self, secret: str) -> None:
        self._base = hmac.new(_hash_key(secret), digestmod="sm3")

    def __call__(self, value: str | None, kind: IdentityKind) -> str | None:
        if not value:
            return None
        canonical = normalise_identity(value, kind)
        if not canonical:
            return None
        h = self._base.copy()
        h.update(canonical.encode())
        return h.hexdigest()


class MissingKey(ValueError):
    """A stored value names a data key this process was not given."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """`k1:<base64 of 16 bytes>,k2:...` as a mapping of key id to key."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key_id, _, b64 = part.partition(":")
        raw = base64.b64decode(b64)
        if not re.fullmatch(r"[A-Za-z0-9_]{1,16}", key_id) or len(raw) != 16:
            raise ValueError(
                f"data key {key_id!r}: an id of letters/digits and 16 bytes in base64 are required"
            )
        keys[key_id] = raw
    return keys


class DataKeys:
    """The data keys and the identity-hash secret of one configuration: built once from the
    settings (`from_settings`), attached to the engine made from them (the column types read
    it from the engine's dialect) and handed to whatever hashes or encrypts outside the ORM.
    Nothing here is process-wide, so two configurations in one process never mix."""

    def __init__(self, *, secret: str, keys_spec: str = "", active: str = "") -> None:
        keys = parse_keys(keys_spec) if keys_spec else {}
        if not keys:
            # Development and tests: a key derived from the secret, so the default just
            # works; its id names the key's fingerprint, so a value written under another
            # secret says which key it needs.
            derived = hashlib.new("sm3", b"haochaping-data-v1:" + secret.encode()).digest()[:16]
            keys = {"dev" + hashlib.new("sm3", derived).hexdigest()[:8]: derived}
            active = active or next(iter(keys))
        active = active or sorted(keys)[-1]
        if active not in keys:
            raise ValueError(f"the active data key {active!r} is not among the configured keys")
        self._keys = keys
        self.active = active
        self.identity_hash = IdentityHasher(secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> DataKeys:
        """The keys of a configuration (HAOCHAPING_SECRET_KEY, _DATA_KEYS, _DATA_KEY_ID)."""
        return cls(
            secret=settings.secret_key, keys_spec=settings.data_keys, active=settings.data_key_id
        )

    def encrypt(self, plaintext: str, *, deterministic: bool = False) -> str:
        """SM4-GCM under the active key.

        `deterministic` derives the nonce from the plaintext (HMAC-SM3), so equal values
        encrypt equally and can be looked up with `=`; it reveals only that two values are
        equal."""
        key = self._keys[self.active]
        if deterministic:
            nonce = hmac.new(key, plaintext.encode(), "sm3").digest()[:NONCE_BYTES]
        else:
            nonce = os.urandom(NONCE_BYTES)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        body = enc.update(plaintext.encode()) + enc.finalize()
        blob = base64.b64encode(nonce + body + enc.tag).decode()
        return f"{PREFIX}{self.active}:{blob}"

    def decrypt(self, stored: str) -> str:
        """The plaintext of a stored value (values without the prefix predate encryption)."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, _, blob = stored[len(PREFIX) :].partition(":")
        key = self._keys.get(key_id)
        if key is None:
            raise MissingKey(f"data key {key_id!r} is needed to read a stored value")
        raw = base64.b64decode(blob)
        nonce, body, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        try:
            return (dec.update(body) + dec.finalize()).decode()
        except InvalidTag as exc:
            raise ValueError("stored value failed its integrity check (tampered?)") from exc


def key_id_of(stored: str | None) -> str | None:
    """The key a stored value was encrypted with (None for plaintext or empty)."""
    if not stored or not stored.startswith(PREFIX):
        return None
    return stored[len(PREFIX) :].partition(":")[0]
