"""Starting the sandbox runner as a child of `python -m backend` / `serve`, and keeping it alive.

The runner is started before Hypercorn binds its sockets (so it could never inherit a listener; it also
closes every descriptor it did not ask for), with a clean environment — PATH and PYTHONPATH, nothing
else: no SECRET_KEY, DATABASE_URL, REDIS_URL, tokens or keys — in `/` (no `.env` to find), on a Unix
socket in a fresh directory only our uid can open. Its configuration is its argv. A thread waits on it:
if it dies while we serve, the error is logged and it is started again (runs in flight fail with 503
`sandbox_unavailable` meanwhile). It is told to exit when we do (PR_SET_PDEATHSIG) and stopped with
SIGTERM on shutdown.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import structlog

import backend
from backend.config import Settings

log = structlog.get_logger(__name__)

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)  # seconds before each further attempt after a crash
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RunnerFailed(Exception):
    """The runner refused to start or died before it was ready; the message is its one line."""


class RunnerProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = Path(tempfile.mkdtemp(prefix="codementor-sandbox-runner-"))  # 0700, ours alone
        self.url = f"unix://{self.directory / 'runner.sock'}"
        self.isolation = "unavailable"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def argv(self) -> list[str]:
        settings = self.settings
        return [
            sys.executable, "-m", "backend", "sandbox",
            "--listen", self.url,
            "--max-concurrency", str(settings.sandbox_max_concurrency),
            "--memory-mb", str(settings.sandbox_memory_mb),
            "--max-timeout-seconds", str(settings.sandbox_timeout_seconds),
            "--bwrap", settings.sandbox_bwrap,
            "--require-isolation" if settings.requires_sandbox_isolation else "--allow-unisolated",
            "--parent-pid", str(os.getpid()),
            "--log-format", settings.effective_log_format,
            "--log-level", settings.effective_log_level,
        ]  # fmt: skip

    def start(self) -> str:
        """Start the runner and wait for its ready line; raises RunnerFailed with its one-line reason."""
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="sandbox-runner-watcher", daemon=True)
        self._watcher.start()
        return self.url

    def _spawn(self) -> None:
        root = str(Path(backend.__file__).resolve().parent.parent)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env={"PATH": CLEAN_PATH, "PYTHONPATH": root, "LANG": "C.UTF-8"},
            cwd="/",
            close_fds=True,
            # Its own session: a Ctrl+C or a SIGTERM to our process group must not stop it while Hypercorn
            # still finishes in-flight submissions; we stop it ourselves at the end (or it dies with us).
            start_new_session=True,
        )
        assert process.stdout is not None
        line = read_line(process.stdout.fileno(), READY_TIMEOUT_SECONDS)
        process.stdout.close()
        if not line.startswith("sandbox: ready"):
            if process.poll() is None:
                process.kill()
            process.wait()
            raise RunnerFailed(line or f"sandbox: the runner exited with {process.returncode} before it was ready")
        self.isolation = line.split("isolation=", 1)[1].split()[0] if "isolation=" in line else "unavailable"
        with self._lock:
            self._process = process

    def _watch(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            log.error("sandbox.runner_died", returncode=code, restart_in_seconds=delay)
            if self._stopping.wait(delay):
                return
            attempt += 1
            try:
                self._spawn()
                log.warning("sandbox.runner_restarted", isolation=self.isolation)
                attempt = 0
            except (RunnerFailed, OSError) as error:
                log.error("sandbox.runner_restart_failed", error=str(error))
                with self._lock:
                    self._process = process  # still dead: wait() returns at once, and we try again later

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def read_line(fd: int, seconds: float) -> str:
    """The first line the runner writes, or what came before it exited or the time ran out."""
    data = b""
    deadline = time.monotonic() + seconds
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return "sandbox: the runner did not become ready in time"
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
