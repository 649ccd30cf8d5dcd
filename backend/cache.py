"""The cache behind rate limits, revocation and short-lived state: Redis, or memory for one process.

Both backends share one small interface so callers never know which they got. Values are strings;
`incr` is atomic and sets the expiry when it creates the key, which is what fixed-window rate limits
and counters need.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import redis.asyncio as redis
from quart import current_app

KEY_PREFIX = "cm:"
SWEEP_EVERY_WRITES = 1000
REDIS_MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 5

# INCR and set the expiry in one step; a crash between two commands would leave a key that never expires.
INCR_WITH_EXPIRY = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
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
        if item is None or (item[1] is not None and item[1] <= now):
            count, expires_at = 1, now + ttl
        else:
            count, expires_at = int(item[0]) + 1, item[1]
        self._write(key, str(count), expires_at)
        return count

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

    async def get(self, key: str) -> str | None:
        return await self._redis.get(KEY_PREFIX + key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        await self._redis.set(KEY_PREFIX + key, value, px=int(ttl * 1000) if ttl is not None else None)

    async def incr(self, key: str, ttl: float) -> int:
        return int(await self._incr(keys=[KEY_PREFIX + key], args=[max(1, int(ttl * 1000))]))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(KEY_PREFIX + key for key in keys))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


def create_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


def get_cache() -> Cache:
    return current_app.extensions["cache"]
