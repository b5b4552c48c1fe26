"""Behind a reverse proxy: X-Forwarded-For names the rater's address only when the connecting
peer is a configured trusted proxy (HAOCHAPING_TRUSTED_PROXIES)."""

from __future__ import annotations

import httpx
import pytest

from haochaping.app import create_app, startup
from haochaping.config import Settings
from tests.portal.conftest import invite
from tests.portal.test_rating_page import ratings_of


async def _rate_through(settings, engine, sessionmaker, world, case, *, peer: str, xff: str):
    app = create_app(settings)
    await startup(app, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app, client=(peer, 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        link = await invite(c, world, case["case_no"])
        r = await c.post(link, data={"level": "5"}, headers={"X-Forwarded-For": xff})
        assert r.status_code == 303


@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "stored"),
    [
        # From the trusted proxy: the client it names (a spoofed hop before it is skipped).
        ("10.0.0.0/8", "10.1.2.3", "198.51.100.66, 198.51.100.23", "198.51.100.23"),
        # The same header from anyone else is ignored: the peer is the client.
        ("10.0.0.0/8", "203.0.113.7", "198.51.100.23", "203.0.113.7"),
        # No proxy configured: never believed.
        ("", "10.1.2.3", "198.51.100.23", "10.1.2.3"),
    ],
)
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    settings, engine, sessionmaker, db, world, case, trusted, peer, xff, stored
):
    configured = settings.model_copy(update={"trusted_proxies": trusted})
    await _rate_through(configured, engine, sessionmaker, world, case, peer=peer, xff=xff)
    [row] = await ratings_of(db, case["case_no"])
    assert row.source_ip == stored


def test_a_trusted_proxy_must_be_an_address_or_network():
    with pytest.raises(ValueError, match="HAOCHAPING_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8,proxy.example")
    assert Settings(trusted_proxies=" 10.0.0.0/8 , 2001:db8::/32").proxy_networks == [
        "10.0.0.0/8",
        "2001:db8::/32",
    ]
