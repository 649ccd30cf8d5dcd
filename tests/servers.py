"""The backend as a real process: `python -m backend ...` on a free port, for tests that need a real server.

The child gets this process's environment minus every variable `Settings` reads, so a developer's
shell (or .env habits) cannot change what a test starts; the test passes what it means explicitly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from backend.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def backend_env(**settings: str) -> dict[str, str]:
    """The environment for a backend process: ours without any setting, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in SETTINGS_VARIABLES}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return env


def wait_until_serving(base_url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Poll `/health` until it answers 200; fail at once if the process exits first."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1) as client:  # one client: each new one builds a TLS context (~20 ms of CPU)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.communicate()[1] if process.stderr is not None else ""
                pytest.fail(f"the server exited with {process.returncode} before serving: {output}")
            try:
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
    pytest.fail("the server did not start in time")


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM (a graceful stop), then SIGKILL if it does not end in time; the exit code."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@asynccontextmanager
async def serving(app: Quart) -> AsyncIterator[str]:
    """`app` served by Hypercorn on a free port of this event loop, answering `/health`: its base URL. For
    what only a real server shows (a client hanging up mid-stream); stopped gracefully on exit."""
    config = Config()
    config.bind = [f"127.0.0.1:{free_port()}"]
    config.accesslog = config.errorlog = None
    shutdown = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
    base_url = f"http://{config.bind[0]}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            for _ in range(100):
                try:
                    await http.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
        yield base_url
    finally:
        shutdown.set()
        await server
