"""Cross-cutting request handling, wired by `create_app` in a fixed order (see `register_middleware`)."""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any

from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart

from backend.config import Settings
from backend.middleware.body import register_input_guards
from backend.middleware.rate_limit import register_rate_limit_headers
from backend.middleware.request_context import RequestMiddleware


def remember_async_functions(app: Quart) -> None:
    """Quart asks `inspect` whether each hook and view is a coroutine function on every request (seven
    times for a GET); the answer for a function never changes, so keep it (docs/PERFORMANCE.md)."""
    ensure_async = app.ensure_async
    known: dict[Callable[..., Any], Callable[..., Any]] = {}

    def remembered(func: Callable[..., Any]) -> Callable[..., Any]:
        found = known.get(func)
        if found is None:
            found = ensure_async(func)
            if type(func) is FunctionType:  # module-level functions and closures: a bounded set
                known[func] = found
        return found

    app.ensure_async = remembered  # type: ignore[method-assign]


def register_middleware(app: Quart, settings: Settings) -> None:
    # Request ids, the access log, metrics, security headers and CORS: one ASGI layer around the app,
    # which sees every response as it leaves (errors included) and logs and measures the final one.
    # (Quart types its ASGI app with per-kind scope TypedDicts, the middleware with plain ASGI mappings.)
    app.asgi_app = RequestMiddleware(app.asgi_app, settings)  # type: ignore[method-assign, arg-type, assignment]
    register_rate_limit_headers(app)
    register_input_guards(app)
    remember_async_functions(app)
    if settings.proxy_trusted_hops:
        app.asgi_app = ProxyFixMiddleware(  # type: ignore[method-assign]
            app.asgi_app, mode="legacy", trusted_hops=settings.proxy_trusted_hops
        )
