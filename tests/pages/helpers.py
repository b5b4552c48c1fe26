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
    return await client.post(
        "/login",
        data={
            "csrf_token": csrf_of(form.text),
            "username": username,
            "password": password,
            "next": next,
        },
    )


async def rate(client, key: str, case_no: str, level: int, **extra) -> dict:
    """A rating posted through the JSON API by a channel client."""
    body = {"case_no": case_no, "channel": "pad", "level": level, **extra}
    r = await client.post("/api/v1/evaluations", json=body, headers={"X-Api-Key": key})
    assert r.status_code == 201, r.text
    return r.json()


_VERSION = re.compile(r'name="version" value="(\d+)"')


async def page_form(client, path: str) -> tuple[str, str | None]:
    """The CSRF token and the work-order version shown on a page."""
    r = await client.get(path)
    assert r.status_code == 200, r.text[-2000:]
    version = _VERSION.search(r.text)
    return csrf_of(r.text), version.group(1) if version else None


async def act(
    client, order_id: int, action: str, *, version: str | int | None = "current", **fields
):
    """Post one action form of the work-order page, as the browser would."""
    csrf, shown = await page_form(client, f"/console/work-orders/{order_id}")
    data = {"csrf_token": csrf, "action": action, **fields}
    if version == "current":
        version = shown
    if version is not None:
        data["version"] = str(version)
    return await client.post(f"/console/work-orders/{order_id}/actions", data=data)


def alert(html: str) -> str:
    """The text of the page's role=alert message."""
    match = re.search(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no alert on the page"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()
