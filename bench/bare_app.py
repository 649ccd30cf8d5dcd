"""The baseline for bench/run.py and bench/health.py: plain Quart with nothing but the same `/health` route.

No QuartSchema, no middleware, no logging set-up, no database: what Quart alone costs on the same server.
The body matches `backend.api.health.get_health` (same keys, same order, same version).
Served as `python -m bench.bare_app` (the Hypercorn config of `python -m backend serve`: HOST, PORT and
WORKERS from the environment), or by uvicorn as `bench.bare_app:create_app` with `--factory`.
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


def main() -> int:
    """Serve the bare app exactly as `python -m backend serve` serves ours: the same Hypercorn config, one
    worker in this process or the same launcher starting WORKERS of them (backend/server.py)."""
    from backend.config import load_settings
    from backend.server import Launcher, _worker, bind, hypercorn_config

    settings = load_settings()
    config = hypercorn_config(settings)
    config.application_path = "bench.bare_app:create_app()"
    sockets = bind(config)
    if settings.workers == 1:
        _worker(config, sockets)
        return 0
    return Launcher(config, sockets, settings.workers).run()


if __name__ == "__main__":
    raise SystemExit(main())
