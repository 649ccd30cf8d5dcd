"""Serving with Hypercorn, tuned as docs/PERFORMANCE.md measured: a deep backlog, uvloop, graceful shutdown.

One worker serves in this process. With WORKERS > 1 this process is our own small launcher instead of
Hypercorn's: Hypercorn 0.18's master terminates every worker as soon as one exits, and its workers
ignore SIGTERM, so a `kill` (or systemd stopping the whole process group) dropped every in-flight
request and stream. Here each worker is a process serving the shared listening socket with Hypercorn's
own graceful shutdown on SIGTERM/SIGINT; the launcher relays SIGTERM to every worker, waits for all of
them (GRACEFUL_TIMEOUT_SECONDS to drain, plus a margin for the app's shutdown), and only then exits. A
worker that dies while serving is replaced; one that dies right after starting stops everything (the
app cannot start, and restarting it in a loop would hide why).
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import h2.events
import hypercorn.protocol
from hypercorn.config import Config, Sockets
from hypercorn.protocol.h2 import H2Protocol

from backend.config import Settings

APP_PATH = "backend.app:create_app()"
BACKLOG = 2048  # Hypercorn's default (100) stalls bursts of new connections for seconds
GRACEFUL_TIMEOUT_SECONDS = 20  # in-flight requests (and chat streams) get this long after SIGTERM
SHUTDOWN_MARGIN_SECONDS = 10  # the app's own shutdown (jobs, clients, engine) after the drain
CRASH_ON_START_SECONDS = 5  # a worker dying sooner than this after its start cannot start at all

log = logging.getLogger("backend.server")


class PortInUse(Exception):
    pass


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.application_path = APP_PATH
    config.bind = [f"{settings.host}:{settings.port}"]
    config.backlog = BACKLOG
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    config.workers = 0  # every Hypercorn serves in its own process: ours, or one the launcher started
    config.worker_class = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    config.accesslog = None  # our middleware writes one structured line per request
    config.errorlog = logging.getLogger("hypercorn.error")  # rendered by our structlog formatter
    return config


def bind(config: Config) -> Sockets:
    """The listening sockets, or `PortInUse` when another process has the address."""
    try:
        return config.create_sockets()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(config.bind[0]) from None
        raise


def port_is_free(settings: Settings) -> bool:
    try:
        sockets = bind(hypercorn_config(settings))
    except PortInUse:
        return False
    for sock in sockets.insecure_sockets + sockets.secure_sockets:
        sock.close()
    return True


def serve(settings: Settings, on_listening: Callable[[], None] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, then stop accepting, drain in-flight requests and streams, and exit."""
    config = hypercorn_config(settings)
    sockets = bind(config)
    if on_listening is not None:
        on_listening()
    if settings.workers == 1:
        _worker(config, sockets)
        return 0
    return Launcher(config, sockets, settings.workers).run()


def _worker(config: Config, sockets: Sockets) -> None:
    """One Hypercorn worker: it installs its own SIGTERM/SIGINT handlers and drains on either."""
    _drop_data_of_answered_http2_streams()
    if config.worker_class == "uvloop":
        from hypercorn.asyncio.run import uvloop_worker as worker
    else:
        from hypercorn.asyncio.run import asyncio_worker as worker
    worker(config, sockets)


class _AnsweredStreamsH2Protocol(H2Protocol):
    """Hypercorn 0.18's HTTP/2 (served to any client that asks for it, also without TLS) with one fix: body
    data arriving for a stream it has already answered and closed (a 413 sent before the body's end) is
    acknowledged and dropped. Hypercorn looked the stream up, raised KeyError out of the connection's handler
    and logged an unhandled exception for every such connection: a log flood any anonymous client could
    drive (hypercorn issue #329; tests/security/test_outsider_server.py)."""

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        kept = []
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                kept.append(event)
        await super()._handle_events(kept)


def _drop_data_of_answered_http2_streams() -> None:
    """Serve HTTP/2 connections with `_AnsweredStreamsH2Protocol` (Hypercorn picks its class by this name)."""
    hypercorn.protocol.H2Protocol = _AnsweredStreamsH2Protocol  # type: ignore[misc]


class Launcher:
    def __init__(self, config: Config, sockets: Sockets, workers: int) -> None:
        self.config, self.sockets, self.count = config, sockets, workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[BaseProcess, float] = {}  # process → when it started
        self.stopping_since: float | None = None
        self.exit_code = 0

    def run(self) -> int:
        metrics_dir = self._share_metrics()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        try:
            for _ in range(self.count):
                self._start()
            while self.processes:
                self._supervise()
        finally:
            for process in self.processes:  # only after the deadline: whatever is left is stuck
                process.kill()
            for sock in self.sockets.insecure_sockets + self.sockets.secure_sockets:
                sock.close()
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
        return self.exit_code

    def _share_metrics(self) -> str | None:
        """Workers write their metrics to one directory, so /metrics sums all of them (prometheus_client
        reads PROMETHEUS_MULTIPROC_DIR when it is imported: the workers inherit it)."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            return None
        directory = tempfile.mkdtemp(prefix="codementor-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        return directory

    @staticmethod
    def _forget_metrics(process: BaseProcess) -> None:
        if process.pid is not None and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(process.pid)

    def _start(self) -> None:
        process = self.context.Process(target=_worker, kwargs={"config": self.config, "sockets": self.sockets})
        process.start()
        self.processes[process] = time.monotonic()

    def _stop(self, *_: Any) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            log.info("server.stopping workers=%d", len(self.processes))
        # Relayed every time: a worker started in between must hear it too. Workers that got the signal
        # from the process group already are draining; a second SIGTERM changes nothing for them.
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)

    def _supervise(self) -> None:
        wait([process.sentinel for process in self.processes], timeout=0.5)
        for process, started in list(self.processes.items()):
            if process.exitcode is None:
                continue
            process.join()
            del self.processes[process]
            self._forget_metrics(process)
            if self.stopping_since is not None:
                # A worker still starting when the stop came (importing, before Hypercorn's handlers)
                # dies of the signal itself: it had taken no request, so that is a clean stop too.
                if process.exitcode != -signal.SIGTERM:
                    self.exit_code = self.exit_code or process.exitcode
                continue
            log.error("server.worker_exited pid=%s exit_code=%s", process.pid, process.exitcode)
            if time.monotonic() - started < CRASH_ON_START_SECONDS:
                self.exit_code = process.exitcode or 1
                self._stop()
            else:
                self._start()
        deadline = GRACEFUL_TIMEOUT_SECONDS + SHUTDOWN_MARGIN_SECONDS
        if self.stopping_since is not None and time.monotonic() - self.stopping_since > deadline:
            log.error("server.workers_killed count=%d", len(self.processes))
            self.exit_code = self.exit_code or 1
            for process in list(self.processes):
                process.kill()
                process.join()
                del self.processes[process]
