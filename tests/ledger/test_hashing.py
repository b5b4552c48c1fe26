"""SM3 against the reference implementation, the canonical content, Merkle trees, block roots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3

from haochaping.evaluations.models import Evaluation
from haochaping.ledger import hashing

SAMPLES = [
    b"",
    b"abc",  # GB/T 32905-2016, example 1
    b"abcd" * 16,  # GB/T 32905-2016, example 2 (one full 512-bit block)
    "政务服务“好差评”：办事很快，服务态度好".encode(),
    bytes(range(256)) * 5,
]


@pytest.mark.parametrize("data", SAMPLES)
def test_openssl_sm3_agrees_with_the_reference_implementation(data):
    assert hashing.sm3(data).hex() == gm_sm3.sm3_hash(gm_func.bytes_to_list(data))


def test_sm3_standard_examples():
    assert hashing.sm3(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    assert hashing.sm3(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_every_evaluation_column_is_hashed_or_deliberately_left_out():
    columns = set(Evaluation.__table__.columns.keys())
    hashed = set(hashing.CONTENT_COLUMNS[hashing.CONTENT_VERSION])
    assert hashed | hashing.UNHASHED_COLUMNS == columns
    assert not hashed & hashing.UNHASHED_COLUMNS


def _values(**changes):
    base = dict.fromkeys(hashing.CONTENT_COLUMNS[hashing.CONTENT_VERSION])
    base.update(
        id=7,
        level=2,
        reasons=["209"],
        comment="等了很久",
        anonymous=False,
        evaluated_at=datetime(2026, 11, 22, 2, 30, tzinfo=UTC),
        received_at=datetime(2026, 11, 22, 2, 30, 0, 123456, tzinfo=UTC),
    )
    base.update(changes)
    return [base[name] for name in hashing.CONTENT_COLUMNS[hashing.CONTENT_VERSION]]


def test_canonical_content_is_compact_utf8_json_with_utc_microsecond_times():
    raw = hashing.canonical(_values()).decode()
    assert raw.startswith('[7,null,null,null,null,2,["209"],"等了很久",')
    assert '"2026-11-22T02:30:00.000000+00:00","2026-11-22T02:30:00.123456+00:00",' in raw
    assert " " not in raw and "false" in raw


def test_the_same_moment_in_another_zone_hashes_the_same():
    shanghai = timezone(timedelta(hours=8))
    moved = _values(evaluated_at=datetime(2026, 11, 22, 10, 30, tzinfo=shanghai))
    assert hashing.content_hashes([moved]) == hashing.content_hashes([_values()])


@pytest.mark.parametrize(
    "change",
    [
        {"level": 3},
        {"comment": "等了很久。"},
        {"reasons": []},
        {"anonymous": True},
        {"rater_phone": "13800001234"},
        {"received_at": datetime(2026, 11, 22, 2, 30, tzinfo=UTC)},
        {"call_id": "12345-0001"},
        {"displayed_at": datetime(2026, 11, 22, 2, 29, tzinfo=UTC)},
        {"origin_client_id": 3, "origin_ref": 41},
    ],
)
def test_any_change_changes_the_hash(change):
    assert hashing.content_hashes([_values(**change)]) != hashing.content_hashes([_values()])


def test_batch_and_single_hashing_agree():
    rows = [_values(id=i, level=1 + i % 5) for i in range(1, 40)]
    assert hashing.content_hashes(rows) == [hashing.sm3(hashing.canonical(r)) for r in rows]


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash (split at the largest power of two), leaves as given."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashing.sm3(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:]))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 100])
def test_merkle_root_is_rfc6962_and_every_audit_path_leads_to_it(n):
    leaves = [hashing.sm3(str(i).encode()) for i in range(n)]
    root = hashing.merkle_root(leaves)
    assert root == _reference_root(leaves)
    for i in range(n):
        path = hashing.merkle_path(leaves, i)
        assert len(path) <= max(1, (n - 1).bit_length())
        assert hashing.root_from_path(leaves[i], path) == root
    if n > 1:
        forged = hashing.sm3(b"forged")
        assert hashing.root_from_path(forged, hashing.merkle_path(leaves, 0)) != root


def test_block_root_covers_every_header_field():
    header = {
        "height": 3,
        "prev_root": hashing.sm3(b"prev"),
        "merkle_root": hashing.sm3(b"m"),
        "first_seq": 21,
        "entry_count": 10,
        "high_water": 130,
        "sealed_at": datetime(2026, 11, 22, 3, 0, 0, 5, tzinfo=UTC),
        "content_version": 1,
    }
    root = hashing.block_root(**header)
    for name, other in [
        ("height", 4),
        ("prev_root", hashing.sm3(b"x")),
        ("merkle_root", hashing.sm3(b"y")),
        ("first_seq", 22),
        ("entry_count", 11),
        ("high_water", 131),
        ("sealed_at", header["sealed_at"] + timedelta(microseconds=1)),
        ("content_version", 2),
    ]:
        assert hashing.block_root(**{**header, name: other}) != root, name
