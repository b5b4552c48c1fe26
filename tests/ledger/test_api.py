"""The public ledger API and page: block roots, proofs a third party can check, no sign-in."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

from haochaping.evaluations.models import Evaluation
from haochaping.ledger import jobs, service
from tests.factories import assert_error
from tests.ledger.conftest import add_ratings, tamper


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _root_of(block: dict) -> str:
    """The block root as documented, recomputed without the package's code."""
    sealed = datetime.fromisoformat(block["sealed_at"]).astimezone(UTC)
    micros = (sealed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    header = struct.pack(
        ">Q32s32sQQQqH",
        block["height"],
        bytes.fromhex(block["prev_root"]),
        bytes.fromhex(block["merkle_root"]),
        block["first_seq"],
        block["entry_count"],
        block["high_water"],
        micros,
        block["content_version"],
    )
    return _sm3(b"\x02" + header).hex()


async def test_blocks_are_listed_newest_first_with_a_cursor(client, db, sessionmaker, world):
    await add_ratings(db, 5)
    await jobs.seal_pending(sessionmaker, block_size=2)
    head = await service.head(db)
    r = await client.get("/api/v1/ledger/blocks", params={"limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [b["height"] for b in page["items"]] == [head.height, head.height - 1]
    assert page["items"][0]["root"] == head.root.hex()
    assert page["items"][0]["prev_root"] == page["items"][1]["root"]
    nxt = await client.get(
        "/api/v1/ledger/blocks", params={"limit": 2, "cursor": page["next_cursor"]}
    )
    assert [b["height"] for b in nxt.json()["items"]] == [
        h for h in (head.height - 2, head.height - 3) if h >= 1
    ]
    one = await client.get(f"/api/v1/ledger/blocks/{head.height}")
    assert one.status_code == 200 and one.json() == page["items"][0]
    assert _root_of(one.json()) == head.root.hex()


async def test_unknown_block_and_bad_cursor(client, world):
    assert_error(await client.get("/api/v1/ledger/blocks/999999999"), 404, "ledger_block_not_found")
    assert_error(
        await client.get("/api/v1/ledger/blocks", params={"cursor": "!!"}), 400, "invalid_cursor"
    )
    assert (await client.get("/api/v1/ledger/blocks/0")).status_code == 422


async def test_proof_leads_from_the_content_hash_to_the_published_root(
    client, db, sessionmaker, world
):
    ids = await add_ratings(db, 7)
    await jobs.seal_pending(sessionmaker)
    r = await client.get(f"/api/v1/ledger/evaluations/{ids[4]}/proof")
    assert r.status_code == 200, r.text
    proof = r.json()
    assert proof["content_matches"] is True
    assert proof["current_content_hash"] == proof["content_hash"]
    assert proof["content_columns"][0] == "id" and "received_at" in proof["content_columns"]
    h = bytes.fromhex(proof["content_hash"])
    for step in proof["audit_path"]:
        sibling = bytes.fromhex(step["hash"])
        h = _sm3(b"\x01" + (sibling + h if step["side"] == "left" else h + sibling))
    block = proof["block"]
    assert h.hex() == block["merkle_root"] == proof["merkle_root_from_path"]
    assert _root_of(block) == block["root"]
    published = (await client.get(f"/api/v1/ledger/blocks/{block['height']}")).json()
    assert published["root"] == block["root"]
    # No personal data in a public answer.
    rated = await db.get(Evaluation, ids[4])
    assert rated.rater_phone not in r.text and rated.rater_cert_no not in r.text
    assert rated.rater_name not in r.text


async def test_proof_of_an_altered_rating_says_so(client, db, sessionmaker, world):
    ids = await add_ratings(db, 2, level=2)
    await jobs.seal_pending(sessionmaker)
    await tamper(db, "evaluation", "UPDATE evaluation SET level = 4 WHERE id = :id", id=ids[0])
    proof = (await client.get(f"/api/v1/ledger/evaluations/{ids[0]}/proof")).json()
    assert proof["content_matches"] is False
    assert proof["current_content_hash"] != proof["content_hash"]


async def test_proof_of_unsealed_and_unknown_ratings(client, db, world):
    [fresh] = await add_ratings(db, 1)
    assert_error(
        await client.get(f"/api/v1/ledger/evaluations/{fresh}/proof"), 404, "evaluation_not_sealed"
    )
    assert_error(
        await client.get("/api/v1/ledger/evaluations/987654321/proof"), 404, "evaluation_not_found"
    )


async def test_public_page_lists_recent_roots_in_chinese(client, db, sessionmaker, world):
    await add_ratings(db, 3)
    await jobs.seal_pending(sessionmaker)
    head = await service.head(db)
    r = await client.get("/ledger")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN"' in r.text
    assert '<h1 class="page-title">评价存证账本</h1>' in r.text
    assert head.root.hex() in r.text
    assert f'<a href="/ledger/blocks/{head.height}">区块 {head.height}</a>' in r.text
    assert '<th scope="col">根哈希（SM3）</th>' in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_proof_of_an_entry_moved_out_of_its_block_is_refused(client, db, sessionmaker, world):
    ids = await add_ratings(db, 2)
    await jobs.seal_pending(sessionmaker)
    await tamper(
        db,
        "ledger_entry",
        "UPDATE ledger_entry SET seq = seq + 1000000 WHERE evaluation_id = :id",
        id=ids[0],
    )
    assert_error(
        await client.get(f"/api/v1/ledger/evaluations/{ids[0]}/proof"), 409, "ledger_inconsistent"
    )
