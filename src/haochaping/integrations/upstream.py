"""Reporting up: the parent instance's exchange routes over HTTP, with the child's API key."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import httpx

from haochaping.core.notify import DeliveryError


class Upstream(Protocol):
    """What the child's sender and reconciliation talk to."""

    async def post(self, path: str, body: bytes) -> dict[str, Any]: ...

    async def get(self, path: str, params: dict[str, str]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class HttpUpstream:
    """One kept-alive HTTP client to the parent; any answer but 2xx, or none, raises
    `DeliveryError` (the sender backs off and retries; nothing is lost)."""

    def __init__(self, *, url: str, key: str, timeout: float) -> None:
        self.client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            timeout=timeout,
            follow_redirects=False,
            headers={"X-API-Key": key, "User-Agent": "haochaping-upstream/1"},
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"上级平台无法连接：{type(exc).__name__}") from exc
        if not 200 <= answer.status_code < 300:
            code = ""
            with contextlib.suppress(ValueError):
                code = answer.json().get("error", {}).get("code", "")
            raise DeliveryError(f"上级平台答复 HTTP {answer.status_code} {code}".rstrip())
        try:
            body: dict[str, Any] = answer.json()
        except ValueError as exc:
            raise DeliveryError("上级平台答复不是 JSON") from exc
        return body

    async def post(self, path: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return await self._call("POST", path, content=body, headers=headers)

    async def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._call("GET", path, params=params)

    async def close(self) -> None:
        await self.client.aclose()
