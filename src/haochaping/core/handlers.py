"""One place that turns every refusal into the API's error body."""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
import traceback
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from haochaping.core.errors import DomainError
from haochaping.core.templating import ERROR_TITLES, error_context, error_page, wants_page

log = logging.getLogger("haochaping")

# How long a client should wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_CODE = "database_unavailable"
UNAVAILABLE_MESSAGE = "数据库暂时不可用，请稍后重试"
# SQLSTATEs of a server that is away for now: connection exceptions (class 08), shutdown
# by an administrator or a crash, "cannot connect now" (starting, stopping, recovering) and
# too many connections.
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked")
# What a browser is told at an address no page answers (JSON clients get the error body).
PAGE_MESSAGES = {
    404: "您访问的页面不存在，请检查网址是否正确，或通过上方导航返回。",
    405: "此页面不能这样打开，请通过上方导航返回。",
}

_TYPE_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不认识的字段",
    "int_type": "应为整数",
    "string_type": "应为字符串",
    "bool_type": "应为布尔值 true/false",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "string_too_long": "内容过长",
    "string_too_short": "内容过短",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "string_pattern_mismatch": "格式不正确",
    "datetime_from_date_parsing": "时间格式不正确，应为带时区的 ISO 8601",
    "datetime_parsing": "时间格式不正确，应为带时区的 ISO 8601",
    "datetime_type": "时间格式不正确，应为带时区的 ISO 8601",
    "timezone_aware": "时间须带时区，例如 2026-01-01T09:00:00+08:00",
    "int_parsing": "应为整数",
    "value_error": "取值无效",
    "union_tag_invalid": "未知的操作类型",
    "union_tag_not_found": "缺少操作类型字段",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值 true/false",
    "date_from_datetime_parsing": "日期格式不正确，应为 YYYY-MM-DD",
    "date_parsing": "日期格式不正确，应为 YYYY-MM-DD",
    "date_type": "日期格式不正确，应为 YYYY-MM-DD",
    "json_invalid": "不是合法的 JSON",
    "int_from_float": "应为整数",
    "model_attributes_type": "应为 JSON 对象",
    "string_unicode": "应为合法的 UTF-8 字符串",
}
# For the pydantic error types above that have no sentence of their own: people read Chinese.
_FALLBACK_MESSAGE = "取值不符合要求"


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as `details`: the field path, a stable type, a Chinese reason."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        msg = _TYPE_MESSAGES.get(err.get("type", ""), "")
        if err.get("type") == "value_error":
            # Our own validators speak Chinese already; pydantic prefixes "Value error, ".
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
        out.append(
            {
                "field": ".".join(loc) or None,
                "type": err.get("type"),
                "message": msg or _FALLBACK_MESSAGE,
            }
        )
    return out


def validation_message(details: list[dict[str, Any]]) -> str:
    """One sentence a person can act on, naming the first offending field."""
    if not details:
        return "请求数据不符合要求"
    first = details[0]
    field = f"字段 {first['field']}：" if first["field"] else ""
    more = f"（另有 {len(details) - 1} 处问题）" if len(details) > 1 else ""
    return f"{field}{first['message']}{more}"


def error_response(
    status: int, code: str, message: str, details: list[Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or []}}, status_code=status
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """The error, the driver's error it wraps and what that was raised from."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < 6:
        out.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return out


def is_database_unavailable(exc: BaseException) -> bool:
    """True when the database cannot be reached or is starting/stopping (retry later)."""
    for err in _chain(exc):
        if isinstance(err, DBAPIError) and err.connection_invalidated:
            return True
        if isinstance(err, PoolTimeout | ConnectionError | socket.gaierror):
            return True
        if isinstance(err, OSError) and (
            err.errno in _UNREACHABLE_ERRNOS
            or "connect call failed" in str(err).lower()
            or str(err).startswith("Multiple exceptions")
        ):
            return True
        sqlstate = str(getattr(err, "sqlstate", "") or "")
        if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            return True
        if isinstance(err, sqlite3.OperationalError) and str(err).startswith(_SQLITE_UNAVAILABLE):
            return True
    return False


def describe_db_error(exc: BaseException) -> str:
    """A database error for the log without the values it may quote.

    PostgreSQL's messages and DETAIL lines quote the values of a key or a bad input (a phone
    number, a certificate number); SQL parameters are hidden by the engine. This names the
    error class, SQLSTATE, constraint and table only."""
    parts: list[str] = []
    for err in _chain(exc):
        parts.append(f"{type(err).__module__}.{type(err).__qualname__}")
        for attr in (
            "sqlstate",
            "sqlite_errorname",
            "constraint_name",
            "table_name",
            "column_name",
        ):
            value = getattr(err, attr, None)
            if value and f"{attr}={value}" not in parts:
                parts.append(f"{attr}={value}")
        if isinstance(err, OSError) and err.errno is not None:
            parts.append(f"errno={errno.errorcode.get(err.errno, err.errno)}")
    return " ".join(parts)


def _stack(exc: BaseException) -> str:
    """Where an error was raised, without its message (which may quote values)."""
    return "".join(traceback.format_tb(exc.__traceback__))


def unavailable_response(request: Request) -> Response:
    """503 with Retry-After: a Chinese page for the pages, the error body for the API."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    path = request.url.path
    if not path.startswith(("/api/", "/healthz", "/static/")):  # a page or a page's form
        template = (
            "console/error.html" if path.startswith(("/console", "/login")) else "portal/error.html"
        )
        return error_page(
            request,
            template,
            status_code=503,
            title="服务暂时不可用",
            message=UNAVAILABLE_MESSAGE,
            headers=headers,
        )
    response = error_response(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)
    response.headers.update(headers)
    return response


def install(app: FastAPI) -> None:
    """Register the exception handlers on an app."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(
                400, "malformed_json", "请求体不是合法的 UTF-8 JSON", validation_details(errors)
            )
        details = validation_details(errors)
        return error_response(422, "invalid_input", validation_message(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        # 400 is FastAPI's "There was an error parsing the body" (bytes that are not UTF-8).
        codes = {
            400: ("malformed_request", "请求体无法解析，请使用 UTF-8 编码的 JSON 或表单"),
            404: ("not_found", "页面或接口不存在"),
            405: ("method_not_allowed", "不支持此请求方法"),
            401: ("unauthenticated", "请先登录"),
            403: ("forbidden", "无权访问"),
            413: ("payload_too_large", "请求体过大"),
        }
        code, message = codes.get(exc.status_code, ("http_error", "请求无法处理"))
        if exc.status_code in PAGE_MESSAGES and wants_page(request):
            # A browser at an unknown address: a page in Chinese with the way back.
            template = (
                "console/error.html"
                if request.url.path.startswith("/console")
                else "portal/error.html"
            )
            return error_page(
                request,
                template,
                status_code=exc.status_code,
                title=ERROR_TITLES.get(exc.status_code, "出错了"),
                message=PAGE_MESSAGES[exc.status_code],
                headers=getattr(exc, "headers", None),
                context=await error_context(request, template),
            )
        return error_response(exc.status_code, code, message)

    async def _database(request: Request, exc: Exception):
        # Logged by class, SQLSTATE and constraint, never by message: messages quote values.
        if is_database_unavailable(exc):
            log.warning("database unavailable: %s", describe_db_error(exc))
            return unavailable_response(request)
        if isinstance(exc, IntegrityError):
            # A concurrent write won a uniqueness race: a retry will get 200/409.
            log.info("integrity conflict: %s", describe_db_error(exc))
            return error_response(409, "conflict", "数据已被并发修改或已存在，请重试")
        if str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "").startswith("22"):
            # SQLSTATE class 22 (data exception: a NUL byte, a number out of range, ...) is
            # the caller's input that the database cannot hold.
            log.info("data exception: %s", describe_db_error(exc))
            return error_response(422, "invalid_value", "请求中含有无法保存的字符或超出范围的数值")
        log.error(
            "database error on %s %s: %s\n%s",
            request.method,
            request.url.path,
            describe_db_error(exc),
            _stack(exc),
        )
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")

    # Connecting raises the driver's or the socket's own errors, not SQLAlchemy's.
    for error_class in (
        DBAPIError,
        PoolTimeout,
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ):
        app.add_exception_handler(error_class, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Runs in the outermost middleware; the exception is still logged and re-raised there.
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")
