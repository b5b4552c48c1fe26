"""Helpers of the 监督查评 tests: real image bytes and the visit form as a browser posts it."""

from __future__ import annotations

import struct
import zlib

from tests.pages.helpers import csrf_of


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid, decodable PNG (solid red), so that a browser really renders it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\xff\x00\x00" * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64


async def post_visit(client, *, photos=(), **fields):
    """The inspector's form, posted as multipart like the browser does."""
    form = await client.get("/console/inspections/new")
    assert form.status_code == 200, form.text[-1500:]
    data = {"csrf_token": csrf_of(form.text), **fields}
    files = [("photos", photo) for photo in photos] or None
    return await client.post("/console/inspections", data=data, files=files)
