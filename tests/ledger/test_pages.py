"""The public ledger pages over HTTP: each block linked and checked, a rating's proof page
with the server's recomputation (which fails once the rating is altered), and refusals."""

from __future__ import annotations

import re

from haochaping.ledger import jobs, service
from tests.ledger.conftest import add_ratings, tamper


def verdict(html: str) -> str:
    match = re.search(r'id="server-verdict">([^<]+)<', html)
    assert match, "no server verdict on the page"
    return match.group(1)


async def test_ledger_page_has_the_layout_and_links_blocks(client, db, sessionmaker, world):
    await add_ratings(db, 5)
    sealed = await jobs.seal_pending(sessionmaker, block_size=2)
    assert sealed.last_height is not None and sealed.blocks >= 3
    r = await client.get("/ledger")
    assert r.status_code == 200
    html = r.text
    assert 'aria-label="主导航"' in html and 'href="/ledger" aria-current="page"' in html
    assert 'class="font-switch"' in html
    assert "它能证明什么" in html and "封存以后，评价不能被悄悄改动" in html
    # The newest blocks first (other tests' committed ratings may have been sealed before).
    for height in range(sealed.last_height - 2, sealed.last_height + 1):
        assert f'<a href="/ledger/blocks/{height}">区块 {height}</a>' in html
    assert "script-src 'self'" in r.headers["content-security-policy"]


async def test_block_page_recomputes_its_root_and_link(client, db, sessionmaker, world):
    await add_ratings(db, 3)
    await jobs.seal_pending(sessionmaker, block_size=2)
    head = await service.head(db)
    r = await client.get(f"/ledger/blocks/{head.height}")
    assert r.status_code == 200
    assert head.root.hex() in r.text
    assert verdict(r.text).startswith("核对通过")
    assert f'href="/ledger/blocks/{head.height - 1}"' in r.text
    # The previous block's root rewritten: the link from this block no longer holds.
    await tamper(
        db,
        "ledger_block",
        "UPDATE ledger_block SET root = :root WHERE height = :h",
        root=bytes(32),
        h=head.height - 1,
    )
    r = await client.get(f"/ledger/blocks/{head.height}")
    assert verdict(r.text).startswith("核对未通过")
    assert f"区块 {head.height} 记录的上一区块根，与区块 {head.height - 1} 公布的根" in r.text


async def test_proof_page_states_what_the_server_recomputed(client, db, sessionmaker, world):
    ids = await add_ratings(db, 3, level=2)
    await jobs.seal_pending(sessionmaker)
    proof = (await client.get(f"/api/v1/ledger/evaluations/{ids[1]}/proof")).json()
    r = await client.get(f"/ledger/evaluations/{ids[1]}")
    assert r.status_code == 200
    html = r.text
    assert verdict(html).startswith("核对通过")
    assert html.count("<strong>一致</strong>") == 4
    assert proof["content_hash"] in html and proof["block"]["root"] in html
    for step in proof["audit_path"]:
        assert f'data-side="{step["side"]}" data-hash="{step["hash"]}"' in html
    assert '<script src="/static/vendor/sm3.js' in html
    assert "<script>" not in html  # the CSP allows no inline script

    await tamper(db, "evaluation", "UPDATE evaluation SET level = 5 WHERE id = :id", id=ids[1])
    r = await client.get(f"/ledger/evaluations/{ids[1]}")
    assert verdict(r.text).startswith("核对未通过")
    assert "<strong>不一致</strong>：评价的当前内容重新计算的 SM3 内容哈希" in r.text


async def test_proof_page_of_an_unsealed_unknown_or_bad_id(client, db, world):
    [fresh] = await add_ratings(db, 1)
    r = await client.get(f"/ledger/evaluations/{fresh}")
    assert r.status_code == 200
    assert f"评价 {fresh} 尚未封存" in r.text
    unknown = await client.get("/ledger/evaluations/987654321")
    assert unknown.status_code == 404 and "评价不存在" in unknown.text
    assert 'aria-label="主导航"' in unknown.text
    for bad in ("0", "abc", str(2**63)):
        r = await client.get(f"/ledger/evaluations/{bad}")
        assert r.status_code == 422 and "请求参数不符合要求" in r.text
    assert (await client.get("/ledger/blocks/424242")).status_code == 404


async def test_search_box_goes_to_the_proof(client, world):
    r = await client.get("/ledger/proof", params={"evaluation_id": "42"})
    assert r.status_code == 303 and r.headers["location"] == "/ledger/evaluations/42"
    assert (await client.get("/ledger/proof", params={"evaluation_id": "x"})).status_code == 422
