"""Fixed-window rate limits on the shared cache, as a `@rate_limit(name)` decorator.

Every limit of the API lives in `RATE_LIMITS`, so the table below is the whole policy. A limit counts
per client IP or per signed-in user; a route may carry several (e.g. 10/minute and 200/day).
Over the limit is `429 rate_limited` with `Retry-After`; every limited response carries the
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers of its tightest limit.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Literal, ParamSpec, TypeVar

from quart import Quart, Response, current_app, g, request

from backend.cache import Cache, get_cache
from backend.errors import RateLimited

P = ParamSpec("P")
R = TypeVar("R")

MINUTE, HOUR, DAY = 60, 3600, 86400


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds
    per: Literal["ip", "user"] = "ip"


RATE_LIMITS: dict[str, tuple[Limit, ...]] = {
    "register": (Limit(5, MINUTE),),
    "login": (Limit(10, MINUTE),),
    "password_reset": (Limit(3, HOUR),),
    # Emails are capped per address (3/hour) in services/auth/; this only stops floods, and a classroom
    # behind one NAT address must not run into it.
    "resend_verification": (Limit(100, HOUR),),
    "oauth_start": (Limit(20, MINUTE),),
    "account_delete": (Limit(5, HOUR, per="user"),),  # it checks a password: no guessing through it
    "password_change": (Limit(5, HOUR, per="user"),),  # so does this (a stolen access token must not find it)
    "chat": (Limit(10, MINUTE, per="user"), Limit(200, DAY, per="user")),
    "conversation": (Limit(20, MINUTE, per="user"), Limit(300, DAY, per="user")),  # each one is a stored row
    "generate": (Limit(3, HOUR, per="user"),),
    "submit": (Limit(30, MINUTE, per="user"),),  # each one runs code in the sandbox
    "github": (Limit(30, MINUTE, per="user"),),  # each one calls the GitHub API with the user's token
    "review": (Limit(20, HOUR, per="user"),),  # each one becomes an LLM review job
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


async def hit(cache: Cache, name: str, identity: str, limits: tuple[Limit, ...], also: Also | None = None) -> Decision:
    """Count one request of `identity` against each limit (all in one round trip); the tightest outcome decides.
    `also` rides along in the same round trip (see `Also`)."""
    now = time.time()
    windows = [int(now // limit.period) for limit in limits]
    keys = [
        (f"rl:{name}:{limit.period}:{identity}:{window}", limit.period)
        for limit, window in zip(limits, windows, strict=True)
    ]
    if also is None:
        counts = await cache.incr_many(keys)
    else:
        try:
            *counts, total = await cache.add_many([(key, 1, ttl) for key, ttl in keys] + [also.item])
        except BaseException:
            also.fail()
            raise
        also.total.set_result(total)
    decisions = []
    for limit, window, count in zip(limits, windows, counts, strict=True):
        reset = max(1, math.ceil((window + 1) * limit.period - now))
        decisions.append(Decision(count <= limit.count, limit.count, max(0, limit.count - count), reset))
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.reset_seconds)
    return min(decisions, key=lambda d: d.remaining)


@dataclass(frozen=True)
class Also:
    """One more `Cache.add` of `item` (key, amount, ttl) in the round trip of a request's per-user limits:
    the chat takes the LLM budget's hold of its reply this way. `total` gets the new total, or is cancelled
    when the round trip did not happen (whatever the limits decided)."""

    item: tuple[str, int, float]
    total: asyncio.Future[int]

    def fail(self) -> None:
        if not self.total.done():
            self.total.cancel()


def client_ip() -> str:
    return request.remote_addr or "unknown"


@functools.lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """What per-IP limits count: an IPv6 client by its /64 (one subscriber's prefix: counting each of its
    2^64 addresses apart let anyone with a home connection dodge every limit), an IPv4-mapped address as
    the IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def rate_limit(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Apply the limits named `name` in `RATE_LIMITS` (put it below `@require_user` for per-user limits)."""
    limits = RATE_LIMITS[name]  # a typo fails at import time, not on the first request

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if current_app.config["RATE_LIMITS_ENABLED"]:
                await enforce(name, limits)
            return await func(*args, **kwargs)

        return wrapper

    return decorator


async def enforce(name: str, limits: tuple[Limit, ...], also: Also | None = None) -> None:
    try:
        for per in ("ip", "user"):
            scoped = tuple(limit for limit in limits if limit.per == per)
            if not scoped:
                continue
            user = g.get("user")
            identity = client_key(client_ip()) if per == "ip" or user is None else f"user:{user.id}"
            decision = await hit(get_cache(), name, identity, scoped, also if per == "user" else None)
            g.rate_limit_headers = decision.headers()
            if not decision.allowed:
                raise RateLimited(headers=decision.headers())
    finally:
        if also is not None:
            also.fail()  # never counted (no per-user limit, an IP limit refused first, or cancelled)


def register_rate_limit_headers(app: Quart) -> None:
    @app.after_request
    async def _add_rate_limit_headers(response: Response) -> Response:
        headers = g.pop("rate_limit_headers", None)
        if headers:
            for key, value in headers.items():
                response.headers.setdefault(key, value)
        return response
