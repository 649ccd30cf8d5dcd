"""Serving with Hypercorn, tuned as PITFALLS.md measured: a deep backlog, uvloop, graceful shutdown."""

from __future__ import annotations

import importlib.util
import logging

from hypercorn.config import Config
from hypercorn.run import run

from backend.config import Settings

APP_PATH = "backend.app:create_app()"
BACKLOG = 2048  # Hypercorn's default (100) stalls bursts of new connections for seconds
GRACEFUL_TIMEOUT_SECONDS = 20  # in-flight requests (and chat streams) get this long after SIGTERM


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.application_path = APP_PATH
    config.bind = [f"{settings.host}:{settings.port}"]
    config.backlog = BACKLOG
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    # One worker serves in this process (workers=0); more are spawned as separate processes.
    config.workers = 0 if settings.workers == 1 else settings.workers
    config.worker_class = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    config.accesslog = None  # our middleware writes one structured line per request
    config.errorlog = logging.getLogger("hypercorn.error")  # rendered by our structlog formatter
    return config


def serve(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; Hypercorn then stops accepting and drains in-flight requests."""
    return run(hypercorn_config(settings))
