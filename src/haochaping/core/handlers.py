"""One place that turns every refusal into the API's error body."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from haochaping.core.errors import DomainError

log = logging.getLogger("haochaping")

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
        out.append({"field": ".".join(loc) or None, "type": err.get("type"),
                    "message": msg or _FALLBACK_MESSAGE})
    return out


def validation_message(details: list[dict[str, Any]]) -> str:
    """One sentence a person can act on, naming the first offending field."""
    if not details:
        return "请求数据不符合要求"
    first = details[0]
    field = f"字段 {first['field']}：" if first["field"] else ""
    more = f"（另有 {len(details) - 1} 处问题）" if len(details) > 1 else ""
    return f"{field}{first['message']}{more}"


def error_response(status: int, code: str, message: str,
                   details: list[Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or []}},
                        status_code=status)


def install(app: FastAPI) -> None:
    """Register the exception handlers on an app."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "请求体不是合法的 UTF-8 JSON",
                                  validation_details(errors))
        details = validation_details(errors)
        return error_response(422, "invalid_input", validation_message(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        # 400 is FastAPI's "There was an error parsing the body" (bytes that are not UTF-8).
        codes = {400: ("malformed_request", "请求体无法解析，请使用 UTF-8 编码的 JSON 或表单"),
                 404: ("not_found", "页面或接口不存在"),
                 405: ("method_not_allowed", "不支持此请求方法"),
                 401: ("unauthenticated", "请先登录"), 403: ("forbidden", "无权访问"),
                 413: ("payload_too_large", "请求体过大")}
        code, message = codes.get(exc.status_code, ("http_error", "请求无法处理"))
        return error_response(exc.status_code, code, message)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError):
        # A concurrent write won a uniqueness race: the caller may retry and will get 200/409.
        log.info("integrity conflict: %s", exc.orig)
        return error_response(409, "conflict", "数据已被并发修改或已存在，请重试")

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError):
        # SQLSTATE class 22 (data exception: a NUL byte, a number out of range, ...) is the
        # caller's input that the database cannot hold; anything else is our fault.
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith("22"):
            log.info("data exception: %s", exc.orig)
            return error_response(422, "invalid_value", "请求中含有无法保存的字符或超出范围的数值")
        raise exc  # to the 500 handler below, which logs it

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Runs in the outermost middleware; the exception is still logged and re-raised there.
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError):
        log.error("database unavailable: %s", exc.orig)
        return error_response(503, "database_unavailable", "数据库暂时不可用，请稍后重试")
