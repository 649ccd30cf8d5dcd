"""Cross-cutting request handling, wired by `create_app` in a fixed order (see `register_middleware`)."""

from __future__ import annotations

from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart

from backend.config import Settings
from backend.middleware.body import register_input_guards
from backend.middleware.cors import register_cors
from backend.middleware.rate_limit import register_rate_limit_headers
from backend.middleware.request_context import register_request_context
from backend.middleware.security_headers import register_security_headers


def register_middleware(app: Quart, settings: Settings) -> None:
    # after_request hooks run in reverse order of registration: the request-context hook registered
    # first therefore runs last and logs and measures the final response.
    register_request_context(app)
    register_security_headers(app, settings)
    register_cors(app, settings)
    register_rate_limit_headers(app)
    register_input_guards(app)
    if settings.proxy_trusted_hops:
        app.asgi_app = ProxyFixMiddleware(  # type: ignore[method-assign]
            app.asgi_app, mode="legacy", trusted_hops=settings.proxy_trusted_hops
        )
