"""Portable column types shared by the models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, TypeDecorator
from sqlalchemy.types import TypeEngine

from haochaping.db.crypto import DataKeys, IdentityKind, MissingKey

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def dialect_keys(dialect) -> DataKeys:
    """The data keys of the engine this dialect belongs to (set by `db.session.make_engine`):
    each engine has its own dialect, so each configuration its own keys, and no global."""
    keys = getattr(dialect, "hcp_keys", None)
    if keys is None:
        raise MissingKey("this engine has no data keys (make it with db.session.make_engine)")
    return keys


class EncryptedString(TypeDecorator[str]):
    """A personal identifier stored SM4-GCM encrypted (see db/crypto.py); read back as text.

    Encryption happens in the bind step, so ORM and Core inserts alike never write it in the
    clear; the keys are the engine's (`dialect_keys`). Bind and result processors are built
    per dialect, so a cached statement never carries one engine's keys into another."""

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = String(200)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return dialect_keys(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return dialect_keys(dialect).decrypt(value)


def identity_hash_default(source_column: str, kind: IdentityKind):
    """A column default: the keyed hash of another column's plaintext in the same INSERT
    (so that a person can be found by certificate or phone without storing it in clear)."""

    def compute(context) -> str | None:
        value = context.get_current_parameters().get(source_column)
        return dialect_keys(context.dialect).identity_hash(value, kind)

    return compute


class LookupEncryptedString(EncryptedString):
    """Encrypted, but deterministically (the nonce comes from the value), so that an equality
    lookup still works; for addresses the system itself must find again (outbox recipients)."""

    impl = String(500)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # type: ignore[override]
        if value is None or value == "":
            return value
        return dialect_keys(dialect).encrypt(value, deterministic=True)


class EncryptedText(EncryptedString):
    """Encrypted free text of any length (a comment's original, as the rater typed it)."""

    impl = Text
    cache_ok = True
