"""Redis going away: no 500s, limits fall back to per-process counters, revocation fails closed.

Decided (backend/cache.py): while Redis is unreachable, `ResilientCache` uses this process's memory and
logs `cache.redis_unavailable` once; Redis is retried every few seconds. Observed: signed-in requests keep
working (the database checks the session), a session revoked before or during the outage stays revoked,
the login limit still answers 429 (counted per worker), /health/ready stays 200 `degraded` (a load
balancer keeps the instance) with the cache unavailable, and everything returns to Redis by itself when
it is back.
"""

from __future__ import annotations

import asyncio

from quart import Quart
from quart.testing import QuartClient

from backend.cache import ResilientCache
from tests.fault.proxy import TCPProxy
from tests.helpers import bearer, login, register, unique_email

LOGIN_LIMIT_PER_MINUTE = 10


def use_short_retry(app: Quart) -> ResilientCache:
    cache = app.extensions["cache"]
    assert isinstance(cache, ResilientCache)
    cache.retry_after_seconds = 0.05
    return cache


async def failed_login(client: QuartClient) -> int:
    body = {"email": unique_email(), "password": "Nope-nope-123"}
    return (await client.post("/api/v1/auth/login", json=body)).status_code


async def me(client: QuartClient, tokens: dict) -> int:
    return (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code


async def test_redis_outage_keeps_sessions_honest_and_recovers(
    app_behind_redis_proxy: Quart, redis_proxy: TCPProxy
) -> None:
    cache = use_short_retry(app_behind_redis_proxy)
    client = app_behind_redis_proxy.test_client()
    email = unique_email()
    live = await register(client, email)
    revoked_before = await login(client, email)
    revoked_during = await login(client, email)
    assert (await client.post("/api/v1/auth/logout", headers=bearer(revoked_before))).status_code == 204

    await redis_proxy.cut()
    assert await me(client, live) == 200
    assert await me(client, revoked_before) == 401  # the database is the truth: still revoked
    assert (await client.post("/api/v1/auth/logout", headers=bearer(revoked_during))).status_code == 204
    assert await me(client, revoked_during) == 401
    assert await failed_login(client) == 401  # the rate limit counted in memory
    assert cache.is_degraded

    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and (await ready.get_json())["status"] == "degraded"  # it still serves
    assert (await ready.get_json())["checks"]["cache"]["status"] == "unavailable"

    await redis_proxy.restore()
    await asyncio.sleep(0.1)
    assert await me(client, live) == 200
    assert await failed_login(client) == 401  # rate limits use the cache: back on Redis
    assert not cache.is_degraded
    assert await me(client, revoked_during) == 401
    back = await client.get("/health/ready")
    assert back.status_code == 200 and (await back.get_json())["status"] == "ready"


async def test_redis_outage_rate_limits_fall_back_to_this_process(
    app_behind_redis_proxy: Quart, redis_proxy: TCPProxy
) -> None:
    client = app_behind_redis_proxy.test_client()
    await redis_proxy.cut()
    statuses = []
    for _ in range(LOGIN_LIMIT_PER_MINUTE + 1):
        response = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "Nope-nope-123"})
        statuses.append(response.status_code)
    assert statuses == [401] * LOGIN_LIMIT_PER_MINUTE + [429]
    assert response.headers["Retry-After"]


async def test_redis_outage_lockout_still_applies(app_behind_redis_proxy: Quart, redis_proxy: TCPProxy) -> None:
    client = app_behind_redis_proxy.test_client()
    email = unique_email()
    tokens = await register(client, email)
    await redis_proxy.cut()
    for _ in range(5):
        wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "Wrong-password-1"})
        assert wrong.status_code == 401
    right = await client.post("/api/v1/auth/login", json={"email": email, "password": "Correct-horse-9-battery"})
    assert right.status_code == 429 and (await right.get_json())["code"] == "account_locked"
    assert await me(client, tokens) == 200


async def test_redis_that_hangs_costs_one_timeout_then_memory_answers(
    app_behind_redis_proxy: Quart, redis_proxy: TCPProxy
) -> None:
    """A hung Redis (connections open, no answers) is worse than a dead one: a call waits for the socket
    timeout (2 s), then answers from memory; Redis is then left alone for RETRY_REDIS_AFTER_SECONDS."""
    cache = use_short_retry(app_behind_redis_proxy)
    client = app_behind_redis_proxy.test_client()
    tokens = await register(client)
    redis_proxy.stall()
    assert await failed_login(client) == 401  # waited for the socket timeout, then counted in memory
    assert cache.is_degraded
    assert await me(client, tokens) == 200
    await redis_proxy.restore()
    await asyncio.sleep(0.1)
    assert await failed_login(client) == 401
    assert not cache.is_degraded
    assert (await client.get("/health/ready")).status_code == 200
