"""Helpers of the page tests: CSRF tokens from forms, signing in, rating through the API."""

from __future__ import annotations

import re

from tests.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def sign_in(client, username: str, password: str = PASSWORD, next: str = ""):
    """Sign in through the login form; returns the POST's answer."""
    form = await client.get("/login")
    return await client.post("/login", data={"csrf_token": csrf_of(form.text),
                                             "username": username, "password": password,
                                             "next": next})


async def rate(client, key: str, case_no: str, level: int, **extra) -> dict:
    """A rating posted through the JSON API by a channel client."""
    body = {"case_no": case_no, "channel": "pad", "level": level, **extra}
    r = await client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": key})
    assert r.status_code == 201, r.text
    return r.json()
