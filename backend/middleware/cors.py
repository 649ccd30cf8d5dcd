"""CORS for the SPA: only the configured origins, always with credentials (cookies)."""

from __future__ import annotations

from quart import Quart
from quart_cors import cors

from backend.config import Settings

ALLOWED_HEADERS = ["Content-Type", "Authorization", "X-CSRF-Token", "X-Request-ID"]
EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PREFLIGHT_MAX_AGE_SECONDS = 600


def register_cors(app: Quart, settings: Settings) -> None:
    cors(
        app,
        allow_origin=settings.cors_origins,
        allow_credentials=True,
        allow_headers=ALLOWED_HEADERS,
        allow_methods=ALLOWED_METHODS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
