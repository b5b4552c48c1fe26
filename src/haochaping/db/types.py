"""Portable column types shared by the models."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
