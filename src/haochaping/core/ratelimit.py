"""Abuse limits: fixed-window counters shared across processes through Redis when
configured (`HAOCHAPING_REDIS_URL`), in memory otherwise; 429 with the error body."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from haochaping.core.errors import RateLimited


class Counter(Protocol):
    async def incr(self, key: str, window: int) -> int:
        """Count one hit in the current window of `window` seconds; returns the count."""

    async def get(self, key: str, window: int) -> int:
        """The count in the current window."""

    async def reset(self, key: str, window: int) -> None:
        """Forget the current window's count."""


def _slot(key: str, window: int) -> tuple[str, int]:
    start = int(time.time()) // window * window
    return f"hcp:rl:{key}:{window}:{start}", start + window


class MemoryCounter:
    """Per-process counters (the embedded default: one process)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    def _sweep(self) -> None:
        if len(self._counts) > 50_000:
            now = time.time()
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}

    async def incr(self, key: str, window: int) -> int:
        slot, ends = _slot(key, window)
        count = self._counts.get(slot, (0, ends))[0] + 1
        self._counts[slot] = (count, ends)
        self._sweep()
        return count

    async def get(self, key: str, window: int) -> int:
        return self._counts.get(_slot(key, window)[0], (0, 0))[0]

    async def reset(self, key: str, window: int) -> None:
        self._counts.pop(_slot(key, window)[0], None)


class RedisCounter:
    """Counters in Redis: every process of the service shares them."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def incr(self, key: str, window: int) -> int:
        slot, _ = _slot(key, window)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(slot)
            pipe.expire(slot, window + 5)
            count, _ = await pipe.execute()
        return int(count)

    async def get(self, key: str, window: int) -> int:
        value = await self._redis.get(_slot(key, window)[0])
        return int(value or 0)

    async def reset(self, key: str, window: int) -> None:
        await self._redis.delete(_slot(key, window)[0])

    async def close(self) -> None:
        await self._redis.aclose()


def build_counter(redis_url: str) -> Counter:
    """Redis when a URL is configured, else memory."""
    return RedisCounter(redis_url) if redis_url else MemoryCounter()


@dataclass(frozen=True)
class Limit:
    """`hits` per `window` seconds for one purpose."""

    name: str
    hits: int
    window: int


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def enforce(request: Request, limit: Limit, key: str | None = None) -> None:
    """Count a hit for the caller (by IP unless a key is given); 429 past the limit."""
    counter: Counter = request.app.state.rate_counter
    count = await counter.incr(f"{limit.name}:{key or client_ip(request)}", limit.window)
    if count > limit.hits:
        raise RateLimited(f"请求过于频繁，请 {limit.window} 秒后再试", code="rate_limited",
                          details=[{"limit": limit.hits, "window_seconds": limit.window}])


class RouteLimit:
    """A route dependency counting hits per IP (a class, so the OpenAPI document can tell a
    rate-limited route by its dependencies and declare its 429)."""

    def __init__(self, name: str, hits_setting: str, window: int) -> None:
        self.name, self.hits_setting, self.window = name, hits_setting, window

    async def __call__(self, request: Request) -> None:
        hits = getattr(request.app.state.settings, self.hits_setting)
        if hits > 0:
            await enforce(request, Limit(self.name, hits, self.window))


def limiter(name: str, hits_setting: str, window: int = 60) -> RouteLimit:
    """A route dependency: at most the configured hits per minute per IP."""
    return RouteLimit(name, hits_setting, window)


class LoginGuard:
    """Lock-out after repeated failed sign-ins of one username (and a cap per IP)."""

    def __init__(self, counter: Counter, *, max_failures: int, lockout_seconds: int) -> None:
        self.counter, self.max_failures, self.window = counter, max_failures, lockout_seconds

    async def check(self, username: str) -> None:
        if await self.counter.get(f"login-fail:{username}", self.window) >= self.max_failures:
            minutes = max(1, self.window // 60)
            raise RateLimited(f"登录失败次数过多，账号已暂时锁定，请 {minutes} 分钟后再试",
                              code="login_locked",
                              details=[{"retry_after_seconds": self.window}])

    async def failed(self, username: str) -> None:
        await self.counter.incr(f"login-fail:{username}", self.window)

    async def succeeded(self, username: str) -> None:
        await self.counter.reset(f"login-fail:{username}", self.window)
