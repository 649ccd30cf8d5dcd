"""The cache interface on both backends, and rate limits built on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from quart.testing import QuartClient
from redis.exceptions import RedisError

from backend.cache import Cache, RedisCache, ResilientCache, create_cache
from tests.servers import free_port


@pytest.fixture(params=["memory", "redis"])
def cache_url(request: pytest.FixtureRequest) -> str | None:
    # Redis is requested lazily so the memory variant runs on a laptop without it.
    return None if request.param == "memory" else request.getfixturevalue("clean_redis")


@pytest.fixture
async def cache(cache_url: str | None) -> AsyncIterator[Cache]:
    backend = create_cache(cache_url)  # Redis comes wrapped in ResilientCache, as the app gets it
    yield backend
    await backend.close()


async def test_set_get_and_delete(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("greeting", "hello")
    assert await cache.get("greeting") == "hello"
    await cache.delete("greeting", "missing")
    assert await cache.get("greeting") is None


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    await cache.set("short", "lived", ttl=0.2)
    await cache.set("long", "lived", ttl=60)
    assert await cache.get("short") == "lived"
    await asyncio.sleep(0.35)
    assert await cache.get("short") is None
    assert await cache.get("long") == "lived"


async def test_concurrent_increments_are_exact(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.incr("counter", ttl=60) for _ in range(1000)))
    assert sorted(results) == list(range(1, 1001))
    assert await cache.get("counter") == "1000"


async def test_increment_window_expires_and_restarts(cache: Cache) -> None:
    assert await cache.incr("window", ttl=0.2) == 1
    assert await cache.incr("window", ttl=0.2) == 2  # a later increment does not extend the window
    await asyncio.sleep(0.35)
    assert await cache.incr("window", ttl=0.2) == 1


async def test_several_increments_at_once_keep_each_keys_count_and_window(cache: Cache) -> None:
    """`incr_many` (a route's limits in one round trip) is `incr` of each key, on both backends."""
    assert await cache.incr_many([("minute", 60), ("short", 0.2)]) == [1, 1]
    assert await cache.incr("minute", ttl=60) == 2  # the same counters as `incr`
    assert await cache.incr_many([("minute", 60), ("short", 0.2)]) == [3, 2]
    await asyncio.sleep(0.35)
    assert await cache.incr_many([("minute", 60), ("short", 0.2)]) == [4, 1]  # each key keeps its own expiry
    results = await asyncio.gather(*(cache.incr_many([("a", 60), ("b", 60)]) for _ in range(200)))
    assert sorted(a for a, _ in results) == sorted(b for _, b in results) == list(range(1, 201))


async def test_additions_give_back_expire_once_and_ride_along_in_one_round_trip(cache: Cache) -> None:
    """`add` (the LLM budget's holds): a total at zero is gone, a key's expiry is set once and not
    extended, and `add_many` is `add` of each key (a rate limit's count and a hold in one round trip)."""
    assert await cache.add("held", 300, ttl=0.3) == 300
    assert await cache.add("held", 200, ttl=60) == 500  # a later addition does not extend the expiry
    assert await cache.add("held", -500, ttl=60) == 0
    assert await cache.get("held") is None
    assert await cache.add("gone", -5, ttl=60) == -5  # giving back what expired leaves nothing behind
    assert await cache.get("gone") is None
    assert await cache.add_many([("count", 1, 60), ("held", 300, 0.3)]) == [1, 300]
    assert await cache.add_many([("count", 1, 60), ("held", 100, 60)]) == [2, 400]
    await asyncio.sleep(0.45)
    assert await cache.get("held") is None
    assert await cache.get("count") == "2"


async def test_rate_limit_answers_429_with_retry_after(probe_client: QuartClient) -> None:
    for remaining in (2, 1, 0):
        response = await probe_client.get("/_probe/limited")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
    refused = await probe_client.get("/_probe/limited")
    assert refused.status_code == 429
    body = await refused.get_json()
    assert body["code"] == "rate_limited" and refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"


async def test_rate_limit_counts_each_client_ip_separately(probe_client: QuartClient) -> None:
    for _ in range(3):
        await probe_client.get("/_probe/limited", scope_base={"client": ("10.0.0.1", 1234)})
    assert (await probe_client.get("/_probe/limited", scope_base={"client": ("10.0.0.1", 1234)})).status_code == 429
    assert (await probe_client.get("/_probe/limited", scope_base={"client": ("10.0.0.2", 1234)})).status_code == 200


async def test_unreachable_redis_falls_back_to_memory_but_readiness_sees_it() -> None:
    cache = ResilientCache(RedisCache(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    await cache.set("session:1", "revoked", ttl=60)
    assert await cache.get("session:1") == "revoked"
    assert [await cache.incr("counter", ttl=60) for _ in range(3)] == [1, 2, 3]
    assert await cache.incr_many([("counter", 60), ("other", 60)]) == [4, 1]
    await cache.delete("session:1")
    assert await cache.get("session:1") is None
    assert cache.is_degraded
    with pytest.raises((RedisError, OSError)):
        await cache.ping()
    await cache.close()
