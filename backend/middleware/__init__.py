"""Cross-cutting request handling, wired by `create_app` in a fixed order (see `register_middleware`)."""

from __future__ import annotations

from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart

from backend.config import Settings
from backend.middleware.body import register_input_guards
from backend.middleware.rate_limit import register_rate_limit_headers
from backend.middleware.request_context import RequestMiddleware


def register_middleware(app: Quart, settings: Settings) -> None:
    # Request ids, the access log, metrics, security headers and CORS: one ASGI layer around the app,
    # which sees every response as it leaves (errors included) and logs and measures the final one.
    # (Quart types its ASGI app with per-kind scope TypedDicts, the middleware with plain ASGI mappings.)
    app.asgi_app = RequestMiddleware(app.asgi_app, settings)  # type: ignore[method-assign, arg-type, assignment]
    register_rate_limit_headers(app)
    register_input_guards(app)
    if settings.proxy_trusted_hops:
        app.asgi_app = ProxyFixMiddleware(  # type: ignore[method-assign]
            app.asgi_app, mode="legacy", trusted_hops=settings.proxy_trusted_hops
        )
