"""Security headers on every response; `/docs` gets a CSP that lets Swagger UI run from our own files."""

from __future__ import annotations

from quart import Quart, Response, request

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


def register_security_headers(app: Quart, settings: Settings) -> None:
    common = list(COMMON_HEADERS.items())
    if settings.is_production:
        common.append(("Strict-Transport-Security", HSTS))
    # API answers are per user and must not be stored by shared caches; the docs' static files may be.
    api_headers = [*common, ("Content-Security-Policy", API_CSP)]
    docs_headers = [*common, ("Content-Security-Policy", DOCS_CSP)]

    @app.after_request
    async def _add_security_headers(response: Response) -> Response:
        # Appending is several times cheaper than Headers.update, which scans the list per key;
        # nothing upstream sets these headers, so there is nothing to replace.
        headers = response.headers
        if request.path.startswith("/docs"):
            headers.extend(docs_headers)
        else:
            headers.extend(api_headers)
            if not any(name.lower() == "cache-control" for name in headers.keys()):  # noqa: SIM118
                headers.add("Cache-Control", "no-store")
        return response
