"""Abuse limits: fixed-window counters shared across processes through Redis when
configured (`HAOCHAPING_REDIS_URL`), in memory otherwise; 429 with the error body."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from redis.exceptions import RedisError

from haochaping.config import Settings
from haochaping.core.errors import RateLimited


class Counter(Protocol):
    async def incr(self, key: str, window: int) -> int:
        """Count one hit in the current window of `window` seconds; returns the count."""

    async def get(self, key: str, window: int) -> int:
        """The count in the current window."""

    async def reset(self, key: str, window: int) -> None:
        """Forget the current window's count."""

    async def strike(self, key: str, ttl: int) -> int:
        """Count one more of something remembered for `ttl` seconds after the last one."""

    async def expire(self, key: str, ttl: int) -> None:
        """Remember a struck count for `ttl` seconds from now."""

    async def hold(self, key: str, seconds: int, *, only_if_free: bool = False) -> bool:
        """Hold `key` for `seconds` (a lock); with only_if_free, only when not held already.
        True when the hold was placed."""

    async def held_for(self, key: str) -> int:
        """Seconds left of a hold on `key`, 0 when free."""

    async def forget(self, *keys: str) -> None:
        """Drop struck counts and holds."""

    async def value(self, key: str) -> int:
        """A plain shared number that never expires (0 until bumped)."""

    async def bump(self, key: str) -> int:
        """Add one to a plain shared number; returns the new value."""


def _slot(key: str, window: int) -> tuple[str, int]:
    start = int(time.time()) // window * window
    return f"hcp:rl:{key}:{window}:{start}", start + window


class CounterUnavailable(Exception):
    """The shared store (Redis) did not answer."""


def _kv(key: str) -> str:
    return f"hcp:kv:{key}"


class MemoryCounter:
    """Per-process counters (the embedded default: one process)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._clock = clock  # struck counts and holds expire by it (tests pass their own)
        self._expiring: dict[str, tuple[int, float]] = {}
        self._values: dict[str, int] = {}

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

    def _live(self, key: str) -> tuple[int, float] | None:
        hit = self._expiring.get(key)
        if hit is not None and hit[1] <= self._clock():
            del self._expiring[key]
            return None
        return hit

    async def strike(self, key: str, ttl: int) -> int:
        if len(self._expiring) > 50_000:
            now = self._clock()
            self._expiring = {k: v for k, v in self._expiring.items() if v[1] > now}
        hit = self._live(_kv(key))
        count = (hit[0] if hit else 0) + 1
        self._expiring[_kv(key)] = (count, self._clock() + ttl)
        return count

    async def expire(self, key: str, ttl: int) -> None:
        hit = self._live(_kv(key))
        if hit is not None:
            self._expiring[_kv(key)] = (hit[0], self._clock() + ttl)

    async def hold(self, key: str, seconds: int, *, only_if_free: bool = False) -> bool:
        if only_if_free and self._live(_kv(key)) is not None:
            return False
        self._expiring[_kv(key)] = (1, self._clock() + seconds)
        return True

    async def held_for(self, key: str) -> int:
        hit = self._live(_kv(key))
        return max(1, math.ceil(hit[1] - self._clock())) if hit else 0

    async def forget(self, *keys: str) -> None:
        for key in keys:
            self._expiring.pop(_kv(key), None)

    async def value(self, key: str) -> int:
        return self._values.get(key, 0)

    async def bump(self, key: str) -> int:
        self._values[key] = self._values.get(key, 0) + 1
        return self._values[key]


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

    async def strike(self, key: str, ttl: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(_kv(key))
            pipe.expire(_kv(key), ttl)
            count, _ = await pipe.execute()
        return int(count)

    async def expire(self, key: str, ttl: int) -> None:
        await self._redis.expire(_kv(key), ttl)

    async def hold(self, key: str, seconds: int, *, only_if_free: bool = False) -> bool:
        return bool(await self._redis.set(_kv(key), 1, ex=seconds, nx=only_if_free))

    async def held_for(self, key: str) -> int:
        return max(0, int(await self._redis.ttl(_kv(key))))

    async def forget(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(_kv(k) for k in keys))

    async def value(self, key: str) -> int:
        try:
            return int(await self._redis.get(_kv(key)) or 0)
        except (RedisError, OSError) as exc:
            raise CounterUnavailable() from exc

    async def bump(self, key: str) -> int:
        try:
            return int(await self._redis.incr(_kv(key)))
        except (RedisError, OSError) as exc:
            raise CounterUnavailable() from exc

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
        raise RateLimited(
            f"请求过于频繁，请 {limit.window} 秒后再试",
            code="rate_limited",
            details=[{"limit": limit.hits, "window_seconds": limit.window}],
        )


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
    """Lock-out after repeated failed sign-ins, per username *and* source IP, so that
    nobody can lock a person out from elsewhere: the IP's lock doubles with each further
    failure (up to a ceiling). Failures of one username from every IP together past
    `account_ceiling` in a lock-out window slow its sign-ins to one per `throttle_seconds`
    (a distributed guess is slowed, the account is never locked)."""

    def __init__(
        self,
        counter: Counter,
        *,
        max_failures: int,
        lockout_seconds: int,
        lockout_max_seconds: int = 24 * 3600,
        account_ceiling: int = 50,
        throttle_seconds: int = 3,
    ) -> None:
        self.counter, self.max_failures, self.window = counter, max_failures, lockout_seconds
        self.max_lock = max(lockout_max_seconds, lockout_seconds)
        self.account_ceiling, self.throttle = account_ceiling, throttle_seconds

    @classmethod
    def from_settings(cls, counter: Counter, settings: Settings) -> LoginGuard:
        return cls(
            counter,
            max_failures=settings.login_max_failures,
            lockout_seconds=settings.login_lockout_seconds,
            lockout_max_seconds=settings.login_lockout_max_seconds,
            account_ceiling=settings.login_account_ceiling,
            throttle_seconds=settings.login_throttle_seconds,
        )

    @staticmethod
    def _keys(username: str, ip: str) -> tuple[str, str]:
        return f"login-fail:{username}:{ip}", f"login-lock:{username}:{ip}"

    def lock_seconds(self, failures: int) -> int:
        """How long the `failures`-th failure in a row locks its IP out (0: not yet)."""
        if failures < self.max_failures:
            return 0
        return min(self.window * 2 ** min(failures - self.max_failures, 32), self.max_lock)

    async def check(self, username: str, ip: str) -> None:
        """429 while this IP is locked out of this account, or the account is throttled."""
        left = await self.counter.held_for(self._keys(username, ip)[1])
        if left > 0:
            minutes = max(1, math.ceil(left / 60))
            raise RateLimited(
                f"登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试",
                code="login_locked",
                details=[{"retry_after_seconds": left}],
            )
        if await self.counter.get(
            f"login-account:{username}", self.window
        ) >= self.account_ceiling and not await self.counter.hold(
            f"login-gate:{username}", self.throttle, only_if_free=True
        ):
            raise RateLimited(
                f"该账号近期登录失败过多，请 {self.throttle} 秒后再试",
                code="login_throttled",
                details=[{"retry_after_seconds": self.throttle}],
            )

    async def failed(self, username: str, ip: str) -> None:
        """Count a failure; lock the IP out of the account once there are enough."""
        strikes_key, lock_key = self._keys(username, ip)
        strikes = await self.counter.strike(strikes_key, self.window)
        await self.counter.incr(f"login-account:{username}", self.window)
        seconds = self.lock_seconds(strikes)
        if seconds:
            await self.counter.hold(lock_key, seconds)
            # The failures are remembered past the lock, so the next failure doubles it.
            await self.counter.expire(strikes_key, seconds + self.window)

    async def succeeded(self, username: str, ip: str) -> None:
        await self.counter.forget(*self._keys(username, ip))
