"""SM3 hashes, the canonical content of a rating, Merkle trees and block roots (no database).

The algorithm, for anyone who wants to check a published root without our code:

* content hash = SM3(canonical content), where the canonical content is the UTF-8 JSON array
  (no spaces, non-ASCII kept as is, nested keys sorted) of the rating's columns in the order
  of ``CONTENT_COLUMNS[version]``; times are UTC ISO 8601 with microseconds
  (``2026-11-22T02:30:00.123456+00:00``), booleans and null as JSON has them.
* Merkle root of a block = the content hashes in sealing order (seq), combined level by level
  with node = SM3(0x01 || left || right); an odd node at the end of a level moves up unchanged
  (the same tree as RFC 6962). A leaf is the content hash itself: canonical content starts
  with ``[`` (0x5B), never 0x01, so a leaf can never pass for an inner node.
* block root = SM3(0x02 || height || prev_root || merkle_root || first_seq || entry_count ||
  high_water || sealed_at || content_version), integers big-endian (8 bytes each, the version
  2 bytes), sealed_at in microseconds since the Unix epoch (signed); the first block's
  prev_root is 32 zero bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

try:
    _SM3 = hashlib.new("sm3")
except ValueError as exc:  # pragma: no cover - depends on how OpenSSL was built
    raise RuntimeError(
        "此 Python 链接的 OpenSSL 不提供 SM3 算法，无法使用评价存证账本"
        "（OpenSSL lacks SM3: use OpenSSL 1.1.1+ built with SM3）"
    ) from exc

HASH_SIZE = 32
GENESIS_ROOT = bytes(HASH_SIZE)

# The columns whose values a content hash covers, by content version. A block records the
# version its entries were sealed with, so a new version (say, once rater_cert_no and
# rater_phone are stored encrypted) is added here and made current; sealed blocks keep
# verifying under the version they were sealed with. Never edit a version that has sealed
# blocks: add a new one.
CONTENT_COLUMNS: dict[int, tuple[str, ...]] = {
    1: (
        "id",
        "case_id",
        "stage",
        "eval_count",
        "channel",
        "level",
        "reasons",
        "comment",
        "tagset_version",
        "org_id",
        "item_id",
        "window_id",
        "staff_id",
        "region_code",
        "rater_type",
        "rater_name",
        "rater_cert_type",
        "rater_cert_no",
        "rater_phone",
        "anonymous",
        "is_public",
        "is_default",
        "client_id",
        "user_id",
        "invitation_id",
        "source_ip",
        "user_agent",
        "device_id",
        "evaluated_at",
        "received_at",
    ),
}
# Version 2: identifiers are stored SM4-encrypted (their ciphertext is what is hashed, see
# ledger/service.py content_columns) and their keyed hashes are covered too.
CONTENT_COLUMNS[2] = (*CONTENT_COLUMNS[1], "rater_cert_hash", "rater_phone_hash")
# Version 3: `comment` holds the comment with phone and ID numbers masked (as every answer
# and page shows it), `comment_original` the comment as typed, SM4-encrypted, when it
# differed. Both are covered: the masked text, so that what the public and the handlers see
# is what was sealed; the original as its ciphertext, like the identifiers of version 2, so
# that it cannot be swapped either while a published proof never needs a number in the clear.
CONTENT_COLUMNS[3] = (*CONTENT_COLUMNS[2], "comment_original")
# Version 4: the 12345 call a hotline agent recorded the rating in (`call_id`), the moment a
# window evaluator showed the faces (`displayed_at`, the instant-press check's evidence) and,
# for a rating reported up by a child instance, its origin (`origin_client_id`, `origin_ref`):
# none of them can be changed, nor a reported rating made to look local.
CONTENT_COLUMNS[4] = (
    *CONTENT_COLUMNS[3],
    "call_id",
    "displayed_at",
    "origin_client_id",
    "origin_ref",
)
CONTENT_VERSION = 4
# Evaluation columns deliberately left out of every content hash (none so far); a test fails
# when a column is added to the table and appears in neither list.
UNHASHED_COLUMNS: frozenset[str] = frozenset()

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)
_HEADER = struct.Struct(">Q32s32sQQQqH")


def sm3(data: bytes) -> bytes:
    """The SM3 digest (GB/T 32905-2016) of data, from OpenSSL."""
    h = _SM3.copy()
    h.update(data)
    return h.digest()


def sm3_hasher() -> Any:
    """A fresh SM3 hash object (update, digest, hexdigest), for data read in pieces."""
    return _SM3.copy()


def _time_positions(version: int) -> tuple[int, ...]:
    cols = CONTENT_COLUMNS[version]
    return tuple(i for i, name in enumerate(cols) if name.endswith("_at"))


_TIME_POSITIONS = {v: _time_positions(v) for v in CONTENT_COLUMNS}


def canonical(values: Sequence[Any], version: int = CONTENT_VERSION) -> bytes:
    """The canonical bytes of one rating: its values in the version's column order."""
    row = list(values)
    for i in _TIME_POSITIONS[version]:
        v = row[i]
        if v is not None:
            row[i] = v.astimezone(UTC).isoformat(timespec="microseconds")
    return _ENCODER.encode(row).encode()


def content_hashes(rows: Sequence[Sequence[Any]], version: int = CONTENT_VERSION) -> list[bytes]:
    """The content hash of each row (values in the version's column order), in a tight loop."""
    times = _TIME_POSITIONS[version]
    encode = _ENCODER.encode
    copy = _SM3.copy
    out: list[bytes] = []
    append = out.append
    for values in rows:
        row = list(values)
        for i in times:
            v = row[i]
            if v is not None:
                row[i] = v.astimezone(UTC).isoformat(timespec="microseconds")
        h = copy()
        h.update(encode(row).encode())
        append(h.digest())
    return out


def _node(left: bytes, right: bytes) -> bytes:
    return sm3(b"\x01" + left + right)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle root of the leaves (at least one), odd nodes moving up unchanged."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = list(leaves)
    copy = _SM3.copy
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            h = copy()
            h.update(b"\x01" + level[i] + level[i + 1])
            nxt.append(h.digest())
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_path(leaves: Sequence[bytes], index: int) -> list[tuple[str, bytes]]:
    """The audit path of leaf `index`: (side of the sibling, sibling hash), bottom up."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    path = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(("left" if sibling < index else "right", level[sibling]))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        index //= 2
    return path


def root_from_path(leaf: bytes, path: Sequence[tuple[str, bytes]]) -> bytes:
    """The Merkle root that a leaf and its audit path lead to."""
    h = leaf
    for side, sibling in path:
        h = _node(sibling, h) if side == "left" else _node(h, sibling)
    return h


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def block_root(
    *,
    height: int,
    prev_root: bytes,
    merkle_root: bytes,
    first_seq: int,
    entry_count: int,
    high_water: int,
    sealed_at: datetime,
    content_version: int,
) -> bytes:
    """The root of a block: its header, chained to the previous block's root."""
    return sm3(
        b"\x02"
        + _HEADER.pack(
            height,
            prev_root,
            merkle_root,
            first_seq,
            entry_count,
            high_water,
            micros(sealed_at),
            content_version,
        )
    )
