"""Security headers on every response; `/docs` gets a CSP that lets Swagger UI run from our own files.

Computed once at start-up; the request middleware (request_context.py) appends them to each response
(nothing upstream sets them, so there is nothing to replace), and `Cache-Control: no-store` to every
answer outside /docs that does not set its own."""

from __future__ import annotations

from backend.config import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI sets inline styles and shows data: images; its scripts are all ours, served from /docs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def response_headers(settings: Settings) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The headers of API answers and of the docs' pages, as ASGI byte pairs."""
    common = list(COMMON_HEADERS.items())
    if settings.is_production:
        common.append(("Strict-Transport-Security", HSTS))
    # API answers are per user and must not be stored by shared caches; the docs' static files may be.
    api = [*common, ("Content-Security-Policy", API_CSP)]
    docs = [*common, ("Content-Security-Policy", DOCS_CSP)]
    return _encoded(api), _encoded(docs)


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers]
