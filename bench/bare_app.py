"""The baseline for bench/health.py: plain Quart with nothing but the same `/health` route.

No QuartSchema, no middleware, no logging set-up, no database: what Quart alone costs on the same server.
The body matches `backend.api.health.get_health` (same keys, same order, same version).
Served as `hypercorn 'bench.bare_app:create_app()'` from the repository root.
"""

from __future__ import annotations

import time

from quart import Quart

VERSION = "0.1.0"  # kept literal so the baseline imports nothing from backend/
STARTED_AT = time.monotonic()


def create_app() -> Quart:
    app = Quart(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]  (the full app keeps declaration order too)

    @app.get("/health")
    async def get_health() -> dict:
        return {"status": "ok", "version": VERSION, "uptime_seconds": round(time.monotonic() - STARTED_AT, 3)}

    return app
