"""Evidence files on work orders: stored, size-limited, type-checked by content."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from haochaping.workorders.models import Attachment
from tests.factories import assert_error
from tests.workorders.conftest import rate_badly

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


async def upload(client, headers, order_id, name, data, content_type):
    return await client.post(
        f"/api/v1/work-orders/{order_id}/attachments",
        headers=headers,
        files={"file": (name, data, content_type)},
    )


async def test_upload_and_cite_an_attachment(client, db, bad, handlers, settings, tmp_path):
    _ev, order = bad
    unit = handlers["unit_a"]
    r = await upload(client, unit, order.id, "整改照片.png", PNG, "image/png")
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["content_type"] == "image/png" and att["size"] == len(PNG)
    r = await client.post(
        f"/api/v1/work-orders/{order.id}/actions",
        headers=unit,
        json={"action": "verify", "note": "属实", "attachment_ids": [att["id"]]},
    )
    assert r.status_code == 200, r.text
    row = await db.get(Attachment, att["id"])
    assert row.event_id is not None
    r = await client.get(f"/api/v1/work-orders/{order.id}/attachments/{att['id']}", headers=unit)
    assert r.status_code == 200 and r.content == PNG
    # An attachment cannot be cited twice.
    r = await client.post(
        f"/api/v1/work-orders/{order.id}/actions",
        headers=unit,
        json={"action": "report_rectified", "note": "x", "attachment_ids": [att["id"]]},
    )
    assert_error(r, 422, "invalid_attachment")


async def test_disguised_oversized_and_foreign_files_are_refused(
    client, db, bad, handlers, settings
):
    _ev, order = bad
    unit = handlers["unit_a"]
    before = (await db.execute(select(Attachment))).scalars().all()
    assert_error(
        await upload(client, unit, order.id, "photo.png", b"MZ\x90\x00" + b"x" * 50, "image/png"),
        422,
        "attachment_type",
    )
    assert_error(
        await upload(client, unit, order.id, "report.png", PDF, "image/png"),
        422,
        "attachment_disguised",
    )
    assert_error(
        await upload(client, unit, order.id, "empty.pdf", b"", "application/pdf"),
        422,
        "attachment_empty",
    )
    # Larger than a JSON body may be, within the attachment limit: accepted.
    r = await upload(
        client, unit, order.id, "scan.pdf", b"%PDF-" + b"0" * 3_000_000, "application/pdf"
    )
    assert r.status_code == 201, r.text
    before = (await db.execute(select(Attachment))).scalars().all()
    big = b"%PDF-" + b"0" * settings.attachment_max_bytes
    r = await upload(client, unit, order.id, "big.pdf", big, "application/pdf")
    assert r.status_code == 413
    assert_error(
        await upload(client, handlers["unit_b"], order.id, "a.pdf", PDF, "application/pdf"), 403
    )
    assert (await db.execute(select(Attachment))).scalars().all() == before


async def test_a_file_is_served_only_under_its_own_order(
    client, db, world, bad, handlers, settings
):
    _ev, order = bad
    _ev2, other = await rate_badly(client, db, world)
    unit = handlers["unit_a"]
    r = await upload(client, unit, order.id, "整改报告.pdf", PDF, "application/pdf")
    assert r.status_code == 201, r.text
    att = r.json()
    row = await db.get(Attachment, att["id"])
    stored = Path(settings.upload_dir) / row.storage_key
    assert stored.read_bytes() == PDF and row.sha256 == hashlib.sha256(PDF).hexdigest()
    r = await client.get(f"/api/v1/work-orders/{order.id}/attachments/{att['id']}", headers=unit)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f"attachment; filename*=UTF-8''{att['id']}.pdf"
    assert_error(
        await client.get(f"/api/v1/work-orders/{other.id}/attachments/{att['id']}", headers=unit),
        404,
        "attachment_not_found",
    )
