"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs throughput on every request)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _too_large_body(limit: int) -> bytes:
    return json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"请求体过大（上限 {limit // 1024} KB）",
                "details": [{"limit_bytes": limit}],
            }
        },
        ensure_ascii=False,
    ).encode()


class BodySizeLimit:
    """Refuses request bodies over a limit with 413, before they are read into memory."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int | None = None,
        upload_suffix: str | tuple[str, ...] = "/attachments",
    ) -> None:
        self.app = app
        self.default_max = max_bytes
        # File uploads (attachments, inspection photos: the paths ending in `upload_suffix`)
        # may be larger than JSON bodies; their routes check again.
        self.upload_max = max(upload_bytes or max_bytes, max_bytes) + 64 * 1024
        self.upload_suffix = upload_suffix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.upload_max
            if scope.get("path", "").endswith(self.upload_suffix)
            else self.default_max
        )
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._refuse(send, limit)
                    return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # A chunked body grew past the limit: answer now, end the request.
                    refused = True
                    await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class NoCookies:
    """Drops every Set-Cookie from the answers under some path prefixes (the public results
    pages): shared caches may keep those answers, so they must carry nobody's session. A
    signed-in visitor's session cookie is then simply not refreshed by them."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    def _covers(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._covers(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def without_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        (k, v) for k, v in message.get("headers", []) if k.lower() != b"set-cookie"
                    ],
                }
            await send(message)

        await self.app(scope, receive, without_cookies)
