"""Lean routes: a few hot JSON routes served without the framework's per-request machinery.

Rating intake spends most of its CPU per request in the HTTP framework (docs/benchmarks.md,
"Rating intake: the lean path"): route matching over every route of the app, dependency
solving, the session and cookie middleware, a request object and a JSON decode before
validation. `LeanRoutes` sits in the middleware stack (inside the proxy-header and body-size
middleware, so both still apply) and answers the requests of a few (method, path) pairs
itself: the body is read once, the handler validates it in one pass and answers with bytes it
encoded once.

The framework's route stays declared (the OpenAPI document, and every request the lean
handler declines): a handler raises `Fallback` for anything it does not serve in the common
way (an unknown key, a body that does not validate, ...), and the request, body included, is
replayed to the framework, which answers exactly as it always has. A refusal the handler
raises (a `DomainError`, a database error) is answered by the app's own exception handlers,
so error codes and bodies are the same on both paths by construction.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The lean handler declines: the framework's route serves the request instead."""


@dataclass(slots=True)
class LeanRequest:
    """What a lean handler sees: the scope, the first value of each header, the body."""

    scope: Scope
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def state(self) -> Any:
        """The app's state (what `request.app.state` is on the framework's path)."""
        return self.scope["app"].state

    def header(self, name: bytes) -> str | None:
        """A header's first value (latin-1, as Starlette decodes them), or None."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None


@dataclass(slots=True)
class LeanResponse:
    """An answer already encoded: status, JSON bytes, extra headers."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


LeanHandler = Callable[[LeanRequest], Awaitable[LeanResponse]]


@dataclass(frozen=True, slots=True)
class LeanRoute:
    """A lean handler, and the headers a request must bring (`requires`) or must not bring
    (`declines`) to be served by it; any other request goes to the framework untouched."""

    handler: LeanHandler
    requires: tuple[bytes, ...] = ()
    declines: tuple[bytes, ...] = ()


# Requests carrying a cookie are left to the framework: the session middleware may refresh
# the console's cookie on any answer, which the lean path does not do.
_ALWAYS_DECLINED = (b"cookie",)
_JSON = b"application/json"


def _is_json(content_type: bytes | None) -> bool:
    return content_type is not None and content_type.split(b";", 1)[0].strip().lower() == _JSON


class LeanRoutes:
    """ASGI middleware answering `routes` ((method, path) -> LeanRoute) itself."""

    def __init__(
        self, app: ASGIApp, routes: Mapping[tuple[str, str], LeanRoute], enabled: bool = True
    ) -> None:
        self.app = app
        self.routes = dict(routes) if enabled else {}
        # Figures for the tests: requests answered here (stored or refused), and handed back.
        self.served = 0
        self.fell_back = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and self.routes and not scope.get("root_path")
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        if (
            not _is_json(headers.get(b"content-type"))
            or any(h in headers for h in _ALWAYS_DECLINED)
            or any(h in headers for h in route.declines)
            or not all(h in headers for h in route.requires)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its request was complete
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            response = await route.handler(LeanRequest(scope, headers, body))
        except Fallback:
            self.fell_back += 1
            await self.app(scope, _replay(body, receive), send)
            return
        except Exception as exc:
            handler = _handler_for(scope["app"], exc)
            if handler is None:
                raise  # the outermost middleware answers 500 and logs it, as for any route
            self.served += 1
            request = Request(scope, receive)
            answer = handler(request, exc)
            if inspect.isawaitable(answer):
                answer = await answer
            await answer(scope, receive, send)
            return
        self.served += 1
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-length", str(len(response.body)).encode()),
                    (b"content-type", _JSON),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the framework the body already read, then what follows."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _handler_for(app: Any, exc: Exception) -> Any:
    """The app's exception handler for this error (by class, nearest first), as the
    framework's exception middleware finds it; None for the catch-all (500)."""
    handlers = getattr(app, "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
