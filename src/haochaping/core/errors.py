"""Domain errors and their mapping to the API's error body.

Every 4xx/5xx answer is `{"error": {"code", "message", "details"}}`: `code` is a stable
English identifier, `message` is for people (Simplified Chinese), `details` names fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel


class DomainError(Exception):
    """A refusal that the caller can understand and act on."""

    status_code = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: list[Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details or []
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def headers(self) -> dict[str, str] | None:
        """Headers the answer carries: Retry-After on a 429, from the limit's window or the
        lock-out's remaining time when the refusal names it (60 s otherwise)."""
        if self.status_code != 429:
            return None
        for detail in self.details:
            if isinstance(detail, dict):
                seconds = detail.get("window_seconds") or detail.get("retry_after_seconds")
                if seconds:
                    return {"Retry-After": str(int(seconds))}
        return {"Retry-After": "60"}


class Malformed(DomainError):
    status_code = 400
    code = "malformed_request"
    message = "请求格式错误"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"
    message = "请先登录或提供有效的 API 密钥"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    message = "无权执行此操作"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    message = "资源不存在"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    message = "与现有数据冲突"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    message = "请求体过大"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"
    message = "数据不符合要求"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"
    message = "请求过于频繁，请稍后再试"


class ErrorDetail(BaseModel):
    """The inside of every error answer."""

    code: str
    message: str
    details: list[Any]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


# What each status means, for the OpenAPI document (people read it: Chinese).
ERROR_LABELS: dict[int, str] = {
    200: "已存在，按请求更新",  # the "updated" answer of a create-or-update route
    400: "请求格式错误",
    401: "未认证",
    403: "超出权限范围",
    404: "资源不存在",
    409: "与现有数据或状态冲突",
    413: "请求体过大",
    422: "数据不符合要求",
    429: "请求过于频繁",
    503: "数据库暂时不可用",
}
# The OpenAPI extension that lists an answer's stable error codes (read by core/openapi.py).
CODES_KEY = "x-error-codes"


def declare(
    *statuses: int, codes: Mapping[int, str | Iterable[str]] | None = None
) -> dict[int | str, Any]:
    """Business answers of a route for FastAPI's `responses=`: `declare(409, 422)`, optionally
    naming their stable codes (`codes={409: "status_regression"}`); 200 is the "updated"
    answer of a create-or-update route. The error body schema and the answers every route of
    its shape gives are added by `core.openapi`."""
    named = {
        status: [value] if isinstance(value, str) else list(value)
        for status, value in (codes or {}).items()
    }
    out: dict[int | str, Any] = {}
    for status in sorted({*statuses, *named}):
        out[status] = {"description": ERROR_LABELS.get(status, "请求无法处理")}
        if status >= 400:
            out[status][CODES_KEY] = named.get(status, [])
    return out
