"""Sandbox runners for tests: real `python -m backend sandbox` processes, as the server starts them.

Apps built in a test process get `SANDBOX_URL` of one runner shared by the session (`make_settings`
does that), so every exercise and submission test goes through the real runner and its socket; tests
that need their own limits (one slot, a short queue) start one with `start_runner(...)`.
"""

from __future__ import annotations

import os
from typing import Any

from backend.config import Settings
from backend.integrations.sandbox.process import RunnerProcess

_shared: RunnerProcess | None = None


def start_runner(**settings: Any) -> RunnerProcess:
    """A runner of its own (stop it with `.stop()`); `settings` are Settings fields (sandbox_*)."""
    values: dict[str, Any] = {"environment": "test", "sandbox_max_concurrency": os.cpu_count() or 2}
    values.update(settings)
    runner = RunnerProcess(Settings(_env_file=None, **values))  # type: ignore[arg-type]
    runner.start()
    return runner


def shared_runner_url() -> str:
    """The session's runner, started on first use."""
    global _shared
    if _shared is None:
        _shared = start_runner()
    return _shared.url


def stop_shared_runner() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
