"""CORS for the SPA: only the configured origins, always with credentials (cookies).

Our own few lines rather than quart-cors: quart-cors re-parses its whole configuration on every
response, which cost about a fifth of a `GET /health` (measured; see bench/). Everything here is
computed once at start-up; the request middleware (request_context.py) adds the headers.
"""

from __future__ import annotations

from collections.abc import Iterable

from backend.config import Settings

ALLOWED_HEADERS = ("Content-Type", "Authorization", "X-CSRF-Token", "X-Request-ID")
EXPOSED_HEADERS = ("X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PREFLIGHT_MAX_AGE_SECONDS = 600
Header = tuple[bytes, bytes]
VARY_ORIGIN: Header = (b"vary", b"Origin")  # the answer differs by origin: shared caches must key on it


class Cors:
    def __init__(self, settings: Settings) -> None:
        self.allowed_origins = frozenset(settings.cors_origins)
        self.allowed_headers = {header.lower(): header for header in ALLOWED_HEADERS}
        self.actual_headers = [(b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())]
        self.preflight_headers = [
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode()),
        ]

    def headers(self, origin: str | None, method: str, request_headers: Iterable[Header]) -> list[Header]:
        """The CORS headers of the answer to a request from `origin` (none for an origin not allowed:
        the browser then refuses to hand the response to that page)."""
        if origin is None or origin not in self.allowed_origins:
            return [VARY_ORIGIN]
        headers = [
            VARY_ORIGIN,
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
        ]
        requested_method = requested = None
        if method == "OPTIONS":
            for name, value in request_headers:
                if name == b"access-control-request-method":
                    requested_method = value
                elif name == b"access-control-request-headers":
                    requested = value.decode("latin-1")
        if requested_method is None:
            headers += self.actual_headers
            return headers
        headers += self.preflight_headers
        allowed = self.allowed_headers
        granted = [allowed[name] for name in _header_names(requested or "") if name in allowed]
        if granted:
            headers.append((b"access-control-allow-headers", ", ".join(granted).encode()))
        return headers


def _header_names(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]
