"""Helpers of the window evaluator's tests: a pad paired through its page, a service
announced through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from haochaping.pads import service as pad_service
from tests.pages.helpers import csrf_of

SERVING = "/api/v1/windows/{}/serving"


async def pairing_code(db, settings, window_code: str) -> dict:
    """A fresh pairing code for a new pad of the window (as the console makes it)."""
    made = await pad_service.create_pairing(
        db=db, secret=settings.secret_key, window_code=window_code
    )
    await db.commit()
    return made


async def pair(client, code: str):
    """Enter a code on the pad's pairing page; returns the POST's answer."""
    form = await client.get("/pad/pair")
    return await client.post("/pad/pair", data={"csrf_token": csrf_of(form.text), "code": code})


async def paired_pad(client, db, settings, window_code: str) -> int:
    """A pad of the window, paired by this client (its cookie now in the client's jar)."""
    made = await pairing_code(db, settings, window_code)
    r = await pair(client, made["code"])
    assert r.status_code == 303, r.text
    return made["device_id"]


async def serve(client, key: str, window_code: str, **body) -> dict:
    r = await client.post(SERVING.format(window_code), json=body, headers={"X-Api-Key": key})
    assert r.status_code == 201, r.text
    return r.json()


def press(service_id: int, level: int = 5, reasons=(), delay_s: float = 3.0, **extra) -> dict:
    """A rating as the pad's script sends it: shown `delay_s` before it was pressed."""
    pressed = datetime.now(UTC)
    body = {
        "service_id": service_id,
        "level": level,
        "reasons": list(reasons),
        "displayed_at": (pressed - timedelta(seconds=delay_s)).isoformat(),
        "evaluated_at": pressed.isoformat(),
    }
    body.update(extra)
    return body
