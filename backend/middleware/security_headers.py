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
    fixed = dict(COMMON_HEADERS)
    if settings.is_production:
        fixed["Strict-Transport-Security"] = HSTS

    @app.after_request
    async def _add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.update(fixed)
        headers["Content-Security-Policy"] = DOCS_CSP if request.path.startswith("/docs") else API_CSP
        if "Cache-Control" not in headers and not request.path.startswith("/docs"):
            headers["Cache-Control"] = "no-store"
        return response
