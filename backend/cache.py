"""The cache behind rate limits, login lockout and short-lived state: Redis, or memory for one process.

Both backends share one small interface so callers never know which they got. Values are strings;
`incr` is atomic and sets the expiry when it creates the key, which is what fixed-window rate limits
and counters need.

Redis going away must not turn requests into 500s, so Redis is always wrapped in `ResilientCache`: while
Redis is unreachable, this process's memory stands in. What that means for each user of the cache:
- rate limits and login lockout count per process (a warning is logged when the outage starts), so a
  client spread over N workers gets up to N times its limit for the duration: degraded, never open;
- revocation fails closed: authentication checks the session row in the database, the truth, so a
  revoked session stays revoked and a live one keeps working, whatever the cache says or fails to say;
- OAuth sign-in flows started during the outage finish only on the worker that started them;
- the LLM budget's reservation for calls in flight (services/llm_gateway.py) is held per process, as it
  was before it was shared: degraded like the rate limits, never open.
`/health/ready` still reports the Redis outage (503), so the orchestrator sees it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import redis.asyncio as redis
import structlog
from quart import current_app
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
T = TypeVar("T")

KEY_PREFIX = "cm:"
SWEEP_EVERY_WRITES = 1000
REDIS_MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 5
# After a failure, Redis is left alone this long: requests must not each wait for a connect timeout.
RETRY_REDIS_AFTER_SECONDS = 5.0
UNREACHABLE = (RedisError, OSError, TimeoutError)

# INCR and set the expiry in one step; a crash between two commands would leave a key that never expires.
INCR_WITH_EXPIRY = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# The same for several keys in one round trip (a route's several rate limits); ARGV[i] is KEYS[i]'s expiry.
INCR_MANY_WITH_EXPIRY = """
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  counts[i] = n
end
return counts
"""


# INCRBY a (possibly negative) amount; a total at or below zero is deleted, and a key without an expiry
# (a new one) gets one, in the same step: what a reservation of a crashed worker leaves behind expires.
ADD_WITH_EXPIRY = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n <= 0 then
  redis.call('DEL', KEYS[1])
elseif redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
"""

# `ADD_WITH_EXPIRY` of several keys in one round trip (a route's rate limits and an LLM budget hold).
ADD_MANY_WITH_EXPIRY = """
local totals = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCRBY', key, ARGV[2 * i - 1])
  if n <= 0 then
    redis.call('DEL', key)
  elseif redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[2 * i])
  end
  totals[i] = n
end
return totals
"""


class Cache(ABC):
    backend: str

    @abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abstractmethod
    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store `value`; with `ttl` (seconds) it disappears after that long."""

    @abstractmethod
    async def incr(self, key: str, ttl: float) -> int:
        """Add one and return the new count; a new key starts at 1 and expires after `ttl` seconds."""

    async def incr_many(self, items: Sequence[tuple[str, float]]) -> list[int]:
        """`incr` of each `(key, ttl)`, in order; one round trip on Redis."""
        return [await self.incr(key, ttl) for key, ttl in items]

    @abstractmethod
    async def add(self, key: str, amount: int, ttl: float) -> int:
        """Add `amount` (negative to give back) and return the new total, atomically. A new key expires after
        `ttl` seconds (later additions do not extend it); a total at or below zero deletes the key."""

    async def add_many(self, items: Sequence[tuple[str, int, float]]) -> list[int]:
        """`add` of each `(key, amount, ttl)`, in order; one round trip on Redis. With an amount of 1 a key
        counts as `incr` counts it."""
        return [await self.add(key, amount, ttl) for key, amount, ttl in items]

    @abstractmethod
    async def delete(self, *keys: str) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the backend cannot be reached."""

    async def close(self) -> None:
        return None


class MemoryCache(Cache):
    """One process's cache (the embedded default). Every method runs without awaiting, so it is atomic."""

    backend = "memory"

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float | None]] = {}
        self._writes = 0

    async def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= time.monotonic():
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._write(key, value, time.monotonic() + ttl if ttl is not None else None)

    async def incr(self, key: str, ttl: float) -> int:
        now = time.monotonic()
        item = self._items.get(key)
        expires_at: float | None
        if item is None or (item[1] is not None and item[1] <= now):
            count, expires_at = 1, now + ttl
        else:
            count, expires_at = int(item[0]) + 1, item[1]
        self._write(key, str(count), expires_at)
        return count

    async def add(self, key: str, amount: int, ttl: float) -> int:
        now = time.monotonic()
        item = self._items.get(key)
        expires_at: float | None
        if item is None or (item[1] is not None and item[1] <= now):
            total, expires_at = amount, now + ttl
        else:
            total, expires_at = int(item[0]) + amount, item[1] if item[1] is not None else now + ttl
        if total <= 0:
            self._items.pop(key, None)
        else:
            self._write(key, str(total), expires_at)
        return total

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._items.pop(key, None)

    async def ping(self) -> None:
        return None

    def _write(self, key: str, value: str, expires_at: float | None) -> None:
        self._items[key] = (value, expires_at)
        self._writes += 1
        if self._writes % SWEEP_EVERY_WRITES == 0:
            # Expired keys nobody reads again would otherwise accumulate forever.
            now = time.monotonic()
            expired = [k for k, (_, at) in self._items.items() if at is not None and at <= now]
            for k in expired:
                del self._items[k]


class RedisCache(Cache):
    backend = "redis"

    def __init__(self, url: str) -> None:
        # A blocking pool queues a burst for a free connection; the default pool raises once 100 are busy.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        self._redis = redis.Redis.from_pool(pool)
        self._incr = self._redis.register_script(INCR_WITH_EXPIRY)
        self._incr_many = self._redis.register_script(INCR_MANY_WITH_EXPIRY)
        self._add = self._redis.register_script(ADD_WITH_EXPIRY)
        self._add_many = self._redis.register_script(ADD_MANY_WITH_EXPIRY)

    async def get(self, key: str) -> str | None:
        return await self._redis.get(KEY_PREFIX + key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        await self._redis.set(KEY_PREFIX + key, value, px=int(ttl * 1000) if ttl is not None else None)

    async def incr(self, key: str, ttl: float) -> int:
        return int(await self._incr(keys=[KEY_PREFIX + key], args=[max(1, int(ttl * 1000))]))

    async def incr_many(self, items: Sequence[tuple[str, float]]) -> list[int]:
        keys = [KEY_PREFIX + key for key, _ in items]
        counts = await self._incr_many(keys=keys, args=[max(1, int(ttl * 1000)) for _, ttl in items])
        return [int(count) for count in counts]

    async def add(self, key: str, amount: int, ttl: float) -> int:
        return int(await self._add(keys=[KEY_PREFIX + key], args=[amount, max(1, int(ttl * 1000))]))

    async def add_many(self, items: Sequence[tuple[str, int, float]]) -> list[int]:
        keys = [KEY_PREFIX + key for key, _, _ in items]
        args = [arg for _, amount, ttl in items for arg in (amount, max(1, int(ttl * 1000)))]
        return [int(total) for total in await self._add_many(keys=keys, args=args)]

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(KEY_PREFIX + key for key in keys))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


class ResilientCache(Cache):
    """`primary` (Redis) while it answers; this process's `MemoryCache` while it does not (see the module
    docstring for what each caller gets). Reads after an outage also consult memory, so a revocation or a
    lockout recorded during the outage is not forgotten when Redis returns."""

    def __init__(self, primary: Cache, *, retry_after_seconds: float = RETRY_REDIS_AFTER_SECONDS) -> None:
        self.primary = primary
        self.fallback = MemoryCache()
        self.backend = primary.backend
        self.retry_after_seconds = retry_after_seconds
        self._down_until: float | None = None  # monotonic time before which Redis is not tried again
        self._used_fallback = False  # memory holds something written during an outage

    @property
    def is_degraded(self) -> bool:
        return self._down_until is not None

    async def get(self, key: str) -> str | None:
        value = await self._call(lambda: self.primary.get(key), None)
        if value is None and self._used_fallback:
            return await self.fallback.get(key)
        return value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        if not await self._call(lambda: self._done(self.primary.set(key, value, ttl)), False):
            await self.fallback.set(key, value, ttl)

    async def incr(self, key: str, ttl: float) -> int:
        count = await self._call(lambda: self.primary.incr(key, ttl), None)
        return count if count is not None else await self.fallback.incr(key, ttl)

    async def incr_many(self, items: Sequence[tuple[str, float]]) -> list[int]:
        counts = await self._call(lambda: self.primary.incr_many(items), None)
        return counts if counts is not None else await self.fallback.incr_many(items)

    async def add(self, key: str, amount: int, ttl: float) -> int:
        total = await self._call(lambda: self.primary.add(key, amount, ttl), None)
        return total if total is not None else await self.fallback.add(key, amount, ttl)

    async def add_many(self, items: Sequence[tuple[str, int, float]]) -> list[int]:
        totals = await self._call(lambda: self.primary.add_many(items), None)
        return totals if totals is not None else await self.fallback.add_many(items)

    async def delete(self, *keys: str) -> None:
        await self.fallback.delete(*keys)
        await self._call(lambda: self._done(self.primary.delete(*keys)), False)

    async def ping(self) -> None:
        await self.primary.ping()  # readiness must see the outage, not the fallback

    async def close(self) -> None:
        await self.primary.close()

    @staticmethod
    async def _done(operation: Awaitable[None]) -> bool:
        await operation
        return True

    async def _call(self, operation: Callable[[], Awaitable[T]], on_failure: T) -> T:
        """Run `operation` against Redis, or answer `on_failure` (and use memory) while it is away."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            self._used_fallback = True
            return on_failure
        try:
            result = await operation()
        except UNREACHABLE as error:
            if self._down_until is None:
                log.warning(
                    "cache.redis_unavailable",
                    error_type=type(error).__name__,
                    detail="using per-process memory: rate limits count per worker until Redis returns",
                )
            self._down_until = time.monotonic() + self.retry_after_seconds
            self._used_fallback = True
            return on_failure
        if self._down_until is not None:
            self._down_until = None
            log.info("cache.redis_recovered")
        return result


def create_cache(redis_url: str | None) -> Cache:
    return ResilientCache(RedisCache(redis_url)) if redis_url else MemoryCache()


def get_cache() -> Cache:
    return current_app.extensions["cache"]
