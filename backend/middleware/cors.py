"""CORS for the SPA: only the configured origins, always with credentials (cookies).

A small hook of our own rather than quart-cors: quart-cors re-parses its whole configuration on every
response, which cost about a fifth of a `GET /health` (measured; see bench/). Everything here is
computed once at start-up.
"""

from __future__ import annotations

from quart import Quart, Response, request

from backend.config import Settings

ALLOWED_HEADERS = ("Content-Type", "Authorization", "X-CSRF-Token", "X-Request-ID")
EXPOSED_HEADERS = ("X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PREFLIGHT_MAX_AGE_SECONDS = 600


def register_cors(app: Quart, settings: Settings) -> None:
    allowed_origins = frozenset(settings.cors_origins)
    allowed_headers = {header.lower(): header for header in ALLOWED_HEADERS}
    actual_headers = [("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))]
    preflight_headers = [
        ("Access-Control-Allow-Methods", ", ".join(ALLOWED_METHODS)),
        ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECONDS)),
    ]

    @app.after_request
    async def _apply_cors(response: Response) -> Response:
        headers = response.headers
        headers.add("Vary", "Origin")  # the answer differs by origin: shared caches must key on it
        origin = request.headers.get("Origin")
        if origin is None or origin not in allowed_origins:
            return response  # no CORS headers: the browser refuses to hand the response to that page
        headers.add("Access-Control-Allow-Origin", origin)
        headers.add("Access-Control-Allow-Credentials", "true")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            requested = request.headers.get("Access-Control-Request-Headers", "")
            granted = [allowed_headers[name] for name in _header_names(requested) if name in allowed_headers]
            headers.extend(preflight_headers)
            if granted:
                headers.add("Access-Control-Allow-Headers", ", ".join(granted))
        else:
            headers.extend(actual_headers)
        return response


def _header_names(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]
