"""Attachment storage: size-limited, type-checked by content (not by the name given)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.errors import Invalid, NotFound, PayloadTooLarge
from haochaping.workorders.models import Attachment, WorkOrder

# What the file's first bytes must be for each allowed type.
# Evidence comes from the people who handle orders (offices, units, administrators); window
# staff and assessors read an order but add nothing to it.
UPLOADERS_ONLY = "只有办理工单的人员可以上传附件"
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}
EXTENSIONS = {
    "application/pdf": {".pdf"},
    "image/png": {".png"},
    "image/jpeg": {".jpg", ".jpeg"},
    "image/webp": {".webp"},
}


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are, among the allowed ones."""
    for content_type, magics in SIGNATURES.items():
        if any(data.startswith(m) for m in magics):
            if content_type == "image/webp" and data[8:12] != b"WEBP":
                continue
            return content_type
    return None


def check(*, filename: str, declared: str | None, data: bytes, max_bytes: int) -> str:
    """The verified content type, or a 413/422 naming what is wrong."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"附件过大（上限 {max_bytes // (1024 * 1024)} MB）", code="attachment_too_large"
        )
    if not data:
        raise Invalid("附件为空", code="attachment_empty", details=[{"field": "file"}])
    real = sniff(data)
    if real is None:
        raise Invalid(
            "只接受 PDF、PNG、JPEG、WebP 格式的附件",
            code="attachment_type",
            details=[{"field": "file"}],
        )
    ext = Path(filename).suffix.lower()
    if ext not in EXTENSIONS[real] or (declared and declared.split(";")[0].strip() != real):
        raise Invalid(
            "附件的文件名或类型与实际内容不符",
            code="attachment_disguised",
            details=[{"field": "file", "detected": real}],
        )
    return real


def store(folder: Path, data: bytes) -> tuple[str, str]:
    """Write the bytes under a random key; returns (key, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    (folder / key).write_bytes(data)
    return key, hashlib.sha256(data).hexdigest()


async def add(
    *,
    db: AsyncSession,
    order: WorkOrder,
    filename: str,
    declared: str | None,
    data: bytes,
    max_bytes: int,
    folder: Path,
    uploaded_by: str,
) -> Attachment:
    """Check and store an evidence file of a work order; the next action cites it by id."""
    content_type = check(filename=filename, declared=declared, data=data, max_bytes=max_bytes)
    # The disk write runs in a worker thread: the event loop serves other requests meanwhile.
    key, digest = await asyncio.to_thread(store, folder, data)
    attachment = Attachment(
        work_order_id=order.id,
        filename=(filename or "file")[:200],
        content_type=content_type,
        size=len(data),
        sha256=digest,
        storage_key=key,
        uploaded_by=uploaded_by,
    )
    db.add(attachment)
    await db.flush()
    return attachment


async def read(
    *, db: AsyncSession, order: WorkOrder, attachment_id: int, folder: Path
) -> tuple[Attachment, bytes]:
    """An evidence file of the order and its bytes (404 when it belongs to another order)."""
    attachment = await db.get(Attachment, attachment_id)
    if attachment is None or attachment.work_order_id != order.id:
        raise NotFound("附件不存在", code="attachment_not_found")
    data = await asyncio.to_thread((folder / attachment.storage_key).read_bytes)
    return attachment, data
