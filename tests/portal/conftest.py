"""Fixtures of the citizen portal tests: a completed case and its rating link."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.factories import make_case


async def invite(client, world, case_no: str, **body) -> str:
    """A rating link for a case, issued through the API; returns its path (/r/<token>)."""
    r = await client.post(
        f"/api/v1/cases/{case_no}/invitations",
        json=body or None,
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
    )
    assert r.status_code == 201, r.text
    return urlsplit(r.json()["url"]).path


@pytest.fixture
async def case(db, world):
    return await make_case(db, world)


@pytest.fixture
async def link(client, world, case) -> str:
    return await invite(client, world, case["case_no"])
