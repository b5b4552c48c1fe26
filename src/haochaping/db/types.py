"""Portable column types shared by the models."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text, TypeDecorator

from haochaping.core.crypto import decrypt, encrypt, identity_hash_configured

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class EncryptedString(TypeDecorator[str]):
    """A personal identifier stored SM4-GCM encrypted (see core/crypto.py); read back as text.

    Encryption happens in the bind step, so ORM and Core inserts alike never write it in the
    clear; the keys are installed by `configure_keys` wherever an engine is made."""

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return decrypt(value)


def identity_hash_default(source_column: str):
    """A column default: the keyed hash of another column's plaintext in the same INSERT
    (so that a person can be found by certificate or phone without storing it in clear)."""

    def compute(context) -> str | None:
        return identity_hash_configured(context.get_current_parameters().get(source_column))

    return compute


class LookupEncryptedString(EncryptedString):
    """Encrypted, but deterministically (the nonce comes from the value), so that an equality
    lookup still works; for addresses the system itself must find again (outbox recipients)."""

    impl = String(500)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return encrypt(value, deterministic=True)


class EncryptedText(EncryptedString):
    """Encrypted free text of any length (a comment's original, as the rater typed it)."""

    impl = Text
    cache_ok = True
