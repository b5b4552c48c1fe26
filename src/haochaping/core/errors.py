"""Domain errors and their mapping to the API's error body.

Every 4xx/5xx answer is `{"error": {"code", "message", "details"}}`: `code` is a stable
English identifier, `message` is for people (Simplified Chinese), `details` names fields.
"""

from __future__ import annotations

from typing import Any


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
