"""SMS gateways: a JSON-lines file (development, audits) and a generic HTTP operator API."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from string import Template
from typing import Any

import httpx

from haochaping.core.notify import DeliveryError
from haochaping.core.security import mask_phone
from haochaping.db.base import utcnow

# The signed token of a progress (/p/) or rating (/r/) link: whoever holds it reads or rates.
_LINK_TOKEN = re.compile(r"(/[pr]/)([A-Za-z0-9_\-.~]{8,})")


def mask_links(text: str) -> str:
    """Link tokens in a message cut to their first four characters (`/p/eyJl****`)."""
    return _LINK_TOKEN.sub(lambda m: m.group(1) + m.group(2)[:4] + "****", text)


class LogSmsGateway:
    """An `SmsGateway` that appends each message as one JSON line to a file, masked: the
    number as 138****5678 and link tokens cut short, so the file holds no usable personal
    data or links (nothing is delivered; production must ask for it by name)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def send(self, *, to: str, text: str, key: str) -> None:
        """Append `{"at", "to", "text", "key"}` as one line, number and links masked."""
        line = json.dumps(
            {
                "at": utcnow().isoformat(),
                "to": mask_phone(to),
                "text": mask_links(text),
                "key": key,
            },
            ensure_ascii=False,
        )
        try:
            await asyncio.to_thread(self._append, (line + "\n").encode())
        except OSError as exc:
            raise DeliveryError(f"无法写入短信日志 {self.path}：{exc}") from exc

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND descriptor: lines from several processes never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def parse_template(raw: str) -> dict[str, Any]:
    """The operator's JSON body template, checked once at startup."""
    try:
        template = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"HAOCHAPING_SMS_HTTP_TEMPLATE is not valid JSON: {exc}") from exc
    if not isinstance(template, dict):
        raise ValueError("HAOCHAPING_SMS_HTTP_TEMPLATE must be a JSON object")
    return template


def render_template(template: Any, values: dict[str, str]) -> Any:
    """The template with `$name` replaced in every string value (keys and numbers kept)."""
    if isinstance(template, str):
        return Template(template).safe_substitute(values)
    if isinstance(template, dict):
        return {k: render_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, values) for v in template]
    return template


class HttpSmsGateway:
    """An `SmsGateway` that POSTs a JSON body to an operator; any non-2xx answer is a failure."""

    def __init__(
        self,
        *,
        url: str,
        template: dict[str, Any],
        token: str = "",
        auth_header: str = "Authorization",
        auth_prefix: str = "Bearer ",
        timeout: float = 15.0,
    ) -> None:
        self.url = url
        self.template = template
        self.headers = {auth_header: auth_prefix + token} if token else {}
        self.timeout = timeout

    async def send(self, *, to: str, text: str, key: str) -> None:
        """POST one message to the operator."""
        body = render_template(self.template, {"to": to, "text": text, "key": key})
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"无法连接短信网关：{exc or type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryError(f"短信网关返回 HTTP {response.status_code}：{response.text[:200]}")
