"""`python -m backend sandbox`: the process that runs untrusted code, so that the API never does.

It holds no secret and reads no Settings or `.env`: its configuration is its argv, with SANDBOX_*
variables as defaults. At start it closes every descriptor but stdin/stdout/stderr, probes the sandbox
with a real run (bubblewrap when available), prints one line on stdout — `sandbox: ready isolation=...
url=...` or `sandbox: refusing to start: ...` (exit 2) — and then serves the protocol of `protocol.py` on
its socket: each job waits in a fair queue (`fairness.py`), runs in `local.LocalSandbox`, and the raw
report goes back to the API, which grades it. Plain asyncio, not uvloop: uvloop's subprocess start does
not honour close_fds. A client that disconnects cancels its job (queued or running).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import grp
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import structlog

from backend.integrations.sandbox.base import SandboxUnavailable
from backend.integrations.sandbox.fairness import FairQueue, QueueTimeout
from backend.integrations.sandbox.local import LocalSandbox, python_job, warn_no_isolation
from backend.integrations.sandbox.protocol import MAX_REQUEST_BYTES, BadJob, Job, grade_execution

log = structlog.get_logger(__name__)

DEFAULT_URL = "unix:///run/codementor/sandbox.sock"
MAX_HEADER_BYTES = 16 * 1024
PROBE_CODE = "def probe():\n    return 41 + 1\n"
PROBE_TESTS = [{"name": "probe", "call": "probe()", "expected": "42"}]
PR_SET_PDEATHSIG = 1
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Content Too Large", 503: "Service Unavailable"}


class Refused(Exception):
    """The runner cannot provide what it was asked to (isolation), so it does not start."""


class Runner:
    def __init__(self, sandbox: LocalSandbox, max_timeout_seconds: float) -> None:
        self.sandbox = sandbox
        self.queue = FairQueue(sandbox.max_concurrency)
        self.max_timeout_seconds = max_timeout_seconds

    def status(self) -> dict[str, Any]:
        return {
            "isolation": "isolated" if self.sandbox.is_isolated else "unisolated",
            "slots": self.queue.slots,
            "running": len(self.queue.running),
            "queued": self.queue.queued,
            "memory_mb": self.sandbox.limits.memory_bytes // (1024 * 1024),
            "uids": sorted(self.sandbox.claimed_uids),
            "artifacts": self.sandbox.artifacts.status(),
        }

    async def run(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            job = Job.from_json(json.loads(body), max_timeout_seconds=self.max_timeout_seconds)
        except (ValueError, RecursionError) as error:  # BadJob and JSONDecodeError are ValueErrors
            return 400, {"error": "bad_request", "detail": str(error) if isinstance(error, BadJob) else "not JSON"}
        arrived, started = time.perf_counter(), None
        try:
            async with self.queue.slot(job.user, job.queue_timeout_seconds):
                started = time.perf_counter()
                execution = await self.sandbox.execute(job)
        except QueueTimeout as error:
            return 503, {"error": "busy", "detail": str(error), "queued_ms": _ms_since(arrived)}
        except SandboxUnavailable as error:
            log.error("sandbox.unavailable", detail=str(error))
            return 503, {"error": "unavailable", "detail": str(error)}
        # How long the job waited for a slot: the API turns it into the sandbox_queue_wait_seconds metric.
        return 200, {**execution.to_json(), "queued_ms": round(((started or arrived) - arrived) * 1000, 1)}

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await read_request(reader):
                method, path, body = request
                if (method, path) == ("GET", "/v1/status"):
                    status, payload = 200, self.status()
                elif (method, path) == ("POST", "/v1/run"):
                    answer = await until_disconnected(self.run(body), reader)
                    if answer is None:
                        return  # the client went away: its job was cancelled, nobody to answer
                    status, payload = answer
                else:
                    status, payload = 404, {"error": "not_found", "detail": f"{method} {path}"}
                write_response(writer, status, payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Only at shutdown: asyncio.run cancels the handlers of connections still open (the API keeps
            # one alive). A cancelled handler task makes asyncio's stream callback raise from
            # task.exception(), which printed a traceback on every SIGTERM; a job it was running has
            # already been cancelled (and its processes killed) on the way here.
            return
        except RequestTooLarge:
            with contextlib.suppress(ConnectionError):
                write_response(writer, 413, {"error": "too_large", "detail": f"at most {MAX_REQUEST_BYTES} bytes"})
                await writer.drain()
        finally:
            writer.close()


class RequestTooLarge(Exception):
    pass


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """One HTTP/1.1 request with a Content-Length body; None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    if len(head) > MAX_HEADER_BYTES:
        raise RequestTooLarge
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length > MAX_REQUEST_BYTES:
        raise RequestTooLarge
    return method, path, await reader.readexactly(length) if length else b""


def write_response(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)


async def until_disconnected(work: Any, reader: asyncio.StreamReader) -> Any:
    """Await `work`, cancelling it if the client closes the connection first (None then)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(reader.read(1))  # the client sends nothing more until our answer
    try:
        done, _ = await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            if gone.done():
                raise ConnectionError("the client sent more than one request at a time")
            return task.result()
        return None
    finally:
        for pending in (task, gone):
            pending.cancel()
        # Wait for both to end: the reader serves the next request only once this read has let go of it.
        await asyncio.wait({task, gone})


# --- start-up --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="python -m backend sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--listen", default=env.get("SANDBOX_URL") or DEFAULT_URL, help="unix:///path, http://host:port"
    )
    parser.add_argument("--max-concurrency", type=int, default=int(env.get("SANDBOX_MAX_CONCURRENCY") or cpus))
    parser.add_argument("--memory-mb", type=int, default=int(env.get("SANDBOX_MEMORY_MB") or 512))
    parser.add_argument(
        "--max-timeout-seconds", type=float, default=float(env.get("SANDBOX_MAX_TIMEOUT_SECONDS") or 300)
    )
    parser.add_argument("--bwrap", default=env.get("SANDBOX_BWRAP") or "bwrap")
    parser.add_argument(
        "--artifact-cache-mb",
        type=int,
        default=int(env.get("SANDBOX_ARTIFACT_CACHE_MB") or 256),
        help="compiled artifacts kept (least recently used evicted)",
    )
    parser.add_argument("--socket-group", default=env.get("SANDBOX_SOCKET_GROUP"))
    isolation = env.get("SANDBOX_REQUIRE_ISOLATION", "true").strip().lower() not in ("0", "false", "no", "off")
    parser.add_argument("--require-isolation", dest="require_isolation", action="store_true", default=isolation)
    parser.add_argument("--allow-unisolated", dest="require_isolation", action="store_false")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    parser.add_argument("--log-format", choices=("console", "json"), default=env.get("SANDBOX_LOG_FORMAT"))
    parser.add_argument("--log-level", default=env.get("SANDBOX_LOG_LEVEL") or "INFO")
    args = parser.parse_args(argv)
    if args.max_concurrency < 1 or args.memory_mb < 64:
        parser.error("--max-concurrency must be at least 1 and --memory-mb at least 64")
    return args


def close_inherited_descriptors() -> None:
    """Whatever our parent left open (a listener, a database connection) is not ours to hand on."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):
                os.close(fd)


def exit_with_parent(parent_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the prctl
        raise SystemExit(1)


async def probe(args: argparse.Namespace) -> LocalSandbox:
    """A real run: bubblewrap counts as usable only if a job passes under it."""
    common = {
        "timeout_seconds": 10,
        "memory_mb": args.memory_mb,
        "max_concurrency": args.max_concurrency,
        "artifact_cache_bytes": args.artifact_cache_mb * 1024 * 1024,
    }
    reason = f"bubblewrap ({args.bwrap}) is not installed"
    candidate = None
    with contextlib.suppress(ValueError):
        candidate = LocalSandbox(**common, use_isolation=True, bwrap=args.bwrap)
    if candidate is not None:
        try:
            status = await probe_run(candidate)
            if status == "passed":
                return candidate
            reason = f"a probe run under bubblewrap ended {status}"
        except SandboxUnavailable as error:
            reason = f"bubblewrap cannot run a sandbox here: {error}"
        await candidate.close()
    if args.require_isolation:
        raise Refused(f"isolation is required (SANDBOX_REQUIRE_ISOLATION) but {reason}")
    fallback = LocalSandbox(**common, use_isolation=False)
    try:
        status = await probe_run(fallback)
    except SandboxUnavailable as error:
        raise Refused(f"{reason}, and the unisolated fallback failed too: {error}") from None
    if status != "passed":
        raise Refused(f"{reason}, and a probe run in the unisolated fallback ended {status}")
    warn_no_isolation(fallback.can_switch_uid)
    return fallback


async def probe_run(sandbox: LocalSandbox) -> str:
    execution = await sandbox.execute(python_job(PROBE_CODE, PROBE_TESTS, 10, 10, "probe"))
    return grade_execution(PROBE_TESTS, execution, quiet=True).status


def prepare_socket_path(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket of a previous runner


def share_socket(path: Path, socket_group: str) -> None:
    """Let the API's group (another uid, e.g. in another container) open the socket, and nobody else."""
    gid = int(socket_group) if socket_group.isdigit() else grp.getgrnam(socket_group).gr_gid
    os.chown(path.parent, -1, gid)
    path.parent.chmod(0o750)
    os.chown(path, -1, gid)
    path.chmod(0o660)


async def listen(runner: Runner, url: str, socket_group: str | None) -> asyncio.Server:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = Path(parts.path)
        prepare_socket_path(path)
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(runner.serve_connection, path=str(path))
        finally:
            os.umask(old_umask)
        if socket_group:
            share_socket(path, socket_group)
        return server
    if parts.scheme == "http" and parts.hostname and parts.port:
        return await asyncio.start_server(runner.serve_connection, parts.hostname, parts.port)
    raise Refused(f"cannot listen on {url!r}: use unix:///path or http://host:port")


async def serve(args: argparse.Namespace) -> int:
    sandbox = await probe(args)
    runner = Runner(sandbox, args.max_timeout_seconds)
    server = await listen(runner, args.listen, args.socket_group)
    isolation = runner.status()["isolation"]
    print(f"sandbox: ready isolation={isolation} url={args.listen}", flush=True)
    os.dup2(2, 1)  # nothing else goes to stdout (a parent may have stopped reading it)
    log.info("sandbox.runner_started", url=args.listen, isolation=isolation, slots=sandbox.max_concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    server.close()  # running jobs are cancelled with the loop: their processes are killed on the way out
    await sandbox.close()
    log.info("sandbox.runner_stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    close_inherited_descriptors()
    args = parse_args(argv)
    if args.parent_pid:
        exit_with_parent(args.parent_pid)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    configure(args)
    try:
        return asyncio.run(serve(args))
    except Refused as error:
        print(f"sandbox: refusing to start: {error}", flush=True)
        return 2


def configure(args: argparse.Namespace) -> None:
    from backend.logging import configure_logging

    log_format = args.log_format or ("console" if sys.stderr.isatty() else "json")
    settings = SimpleNamespace(effective_log_level=args.log_level.upper(), effective_log_format=log_format)
    configure_logging(cast(Any, settings), stream=sys.stderr)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
