"""The thank-you page names the rating's number and links its proof in the public ledger,
which holds once the rating is sealed."""

from __future__ import annotations

import re

from haochaping.ledger import jobs


async def test_thanks_page_shows_the_number_and_the_proof(client, sessionmaker, link):
    r = await client.post(link, data={"level": "5", "reasons": ["517"]})
    assert r.status_code == 303
    thanks = await client.get(r.headers["location"])
    match = re.search(r"评价编号：<strong>(\d+)</strong>", thanks.text)
    assert match, thanks.text
    number = match.group(1)
    assert f'<a href="/ledger/evaluations/{number}">查看这条评价的存证证明</a>' in thanks.text
    before = await client.get(f"/ledger/evaluations/{number}")
    assert before.status_code == 200 and f"评价 {number} 尚未封存" in before.text
    await jobs.seal_pending(sessionmaker)
    proof = await client.get(f"/ledger/evaluations/{number}")
    assert f"评价 {number} 的存证证明" in proof.text and "核对通过" in proof.text
