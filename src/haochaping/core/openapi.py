"""Every answer declared: the error answers of each operation in the OpenAPI document.

Most error answers follow from what a route is made of, so they are derived from its
dependencies and parameters rather than written by hand: an authentication dependency can
answer 401 and 403, a path parameter 404 and 422, a body 400, 413 and 422, a `cursor` 400
`invalid_cursor`, a rate limit 429, the database 503 (and a write 409 when a concurrent write
wins). Business answers a route gives on top (a duplicate, an illegal state change) are named
on the route with `errors.declare(...)`. Each declared error carries the error body schema and
its stable codes (`x-error-codes`, also named in the description).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from haochaping.core.auth import get_principal, get_user
from haochaping.core.db import get_db
from haochaping.core.errors import CODES_KEY, ERROR_LABELS, ErrorBody
from haochaping.core.ratelimit import RouteLimit

ERROR_REF = "#/components/schemas/ErrorBody"

# The codes each derived answer can carry (handlers.py, auth.py, schemas.py, middleware.py).
AUTH_401 = ("unauthenticated", "invalid_api_key", "invalid_token")
AUTH_403 = ("forbidden", "out_of_scope", "role_forbidden")
USER_403 = ("user_required",)
BODY_400 = ("malformed_json", "malformed_request")
INPUT_422 = ("invalid_input",)
STORE_422 = ("invalid_value",)
PATH_404 = ("not_found",)
CURSOR_400 = ("invalid_cursor",)
SIZE_413 = ("payload_too_large",)
RATE_429 = ("rate_limited",)
CONFLICT_409 = ("conflict",)
DB_503 = ("database_unavailable",)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _params(dependant: Dependant, kind: str) -> list[Any]:
    out = list(getattr(dependant, f"{kind}_params"))
    for dep in dependant.dependencies:
        out += _params(dep, kind)
    return out


def _api_routes(routes: list[Any]) -> Iterator[Any]:
    """The API routes as the document sees them (FastAPI >= 0.130 wraps included routers)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        yield from (r for r in routes if isinstance(r, APIRoute))
        return
    for context in contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def derived_answers(route: Any, method: str) -> dict[int, list[str]]:
    """The error answers a route gives by its shape, with their stable codes."""
    answers: dict[int, list[str]] = {}

    def add(status: int, codes: tuple[str, ...]) -> None:
        answers.setdefault(status, [])
        answers[status] += [c for c in codes if c not in answers[status]]

    dependant = route.dependant
    calls = list(_calls(dependant))
    if get_principal in calls:
        add(401, AUTH_401)
        add(403, AUTH_403)
    if get_user in calls:
        add(403, USER_403)
    if any(isinstance(call, RouteLimit) for call in calls):
        add(429, RATE_429)
    if _params(dependant, "path"):
        add(404, PATH_404)
        add(422, INPUT_422)
    query = _params(dependant, "query")
    if query or _params(dependant, "header") or _params(dependant, "cookie"):
        add(422, INPUT_422)
    if any(p.name == "cursor" for p in query):
        add(400, CURSOR_400)
    if route.body_field is not None:
        add(400, BODY_400)
        add(413, SIZE_413)
        add(422, INPUT_422)
    if get_db in calls:
        add(503, DB_503)
        if 422 in answers:
            # Input the database cannot hold (SQLSTATE class 22) is refused, not a 500.
            add(422, STORE_422)
        if method not in ("GET", "HEAD"):
            add(409, CONFLICT_409)
    return answers


def _describe(status: int, codes: list[str], given: str | None) -> str:
    label = given or ERROR_LABELS.get(status, "请求无法处理")
    missing = [c for c in codes if c not in label]
    return f"{label}（{', '.join(missing)}）" if missing else label


def declare_errors(schema: dict[str, Any], routes: list[Any]) -> None:
    """Add each operation's error answers, with the error body, to an OpenAPI document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body
    for route in _api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            op = schema["paths"].get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            main = responses.get(str(route.status_code or 200), {}).get("content")
            for key, entry in responses.items():
                if key[:1] == "2" and "content" not in entry and main:
                    # Another success status of the route (200 "updated" beside 201
                    # "created") answers the same model.
                    entry["content"] = main
            derived = derived_answers(route, method)
            statuses = {str(s) for s in derived} | {s for s in responses if s[:1] in "45"}
            for key in sorted(statuses):
                entry = responses.setdefault(key, {})
                codes = list(entry.get(CODES_KEY, []))
                codes += [c for c in derived.get(int(key), []) if c not in codes]
                given = entry.get("description")
                if given in (None, "Validation Error"):  # FastAPI's default 422
                    given = None
                entry["description"] = _describe(int(key), codes, given)
                entry[CODES_KEY] = codes
                entry["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    # FastAPI's own validation error shape is never answered (handlers.py answers ErrorBody).
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def install(app: FastAPI) -> None:
    """Make `app.openapi()` declare every error answer of every operation."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's document, cached (rebuilt when routes are added)
        if "ErrorBody" not in schema.get("components", {}).get("schemas", {}):
            declare_errors(schema, app.routes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
