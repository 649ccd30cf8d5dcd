"""The sandbox runner's protocol: what the API sends to `python -m backend sandbox`, and what comes back.

The runner is a small HTTP/1.1 server on a Unix socket (`SANDBOX_URL=unix:///path`) or TCP
(`http://host:port`); it trusts whoever can connect, so the socket lives in a directory only the API's
uid (or `SANDBOX_SOCKET_GROUP`) can open, and TCP belongs on loopback or a private network. Bodies are JSON.

    POST /v1/run
      {"toolchain": "python",                 which harness runs the job (TOOLCHAINS in local.py and
                                              languages/toolchains.py)
       "files": {"main.py": "..."},           written into the job's read-only directory (/job)
       "stdin": "...",                        the harness's job, fed on its stdin
       "timeout_seconds": 10,                 wall clock of the run (at most the runner's own maximum)
       "queue_timeout_seconds": 30,           how long it may wait for a slot
       "user": "42"}                          an opaque key: one running job per key, round-robin across
                                              keys (none: a key of its own)
      200 {"timed_out": bool, "overflow": bool, "clean": bool, "returncode": int | null,
           "report": str, "diagnostics": str, "duration_ms": float, "compile_ms": float | null}
          `report` is everything the harness wrote on its result channel (JSON lines), `diagnostics`
          what bwrap / the harness wrote on stdout and stderr (for logs, never for students).
          A toolchain with a compile step compiles first, in the same job, unless the runner's artifact
          cache holds the same files (compiled.py): `compile_ms` is that compile's time (null when nothing
          was compiled); a compile error is a `syntax_error` event in `report`, and a compile over its
          time limit (MAX_COMPILE_SECONDS at most) a `timed_out` run.
      503 {"error": "busy", "detail": str}         no slot within queue_timeout_seconds
      503 {"error": "unavailable", "detail": str}  the sandbox could not start a run
      400 {"error": "bad_request", "detail": str}
    GET /v1/status
      200 {"isolation": "isolated" | "unisolated", "slots": int, "running": int, "queued": int,
           "memory_mb": int, "uids": [int],
           "artifacts": {"entries", "bytes", "hits", "misses", "compiles", "evictions": int}}

Nothing in a request or a response is an expected value: the runner executes and returns what the
harness reported; grading happens in the API (`base.grade`). A job is language-neutral: files, the name
of a toolchain the runner knows, stdin and limits; adding a language means adding a toolchain.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from backend.integrations.sandbox.base import Report, RunResult, SandboxUnavailable, grade

log = structlog.get_logger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_FILES = 16
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
DEFAULT_TOOLCHAIN = "python"
MAX_COMPILE_SECONDS = 30.0  # what a compile step may add to a job's time (a client waits that much longer)


class BadJob(ValueError):
    """A request the runner refuses (400)."""


@dataclass(frozen=True)
class Job:
    toolchain: str
    files: dict[str, str]
    stdin: str
    timeout_seconds: float
    queue_timeout_seconds: float
    user: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Any, *, max_timeout_seconds: float) -> Job:
        if not isinstance(body, dict):
            raise BadJob("the body must be a JSON object")
        toolchain, files, stdin = body.get("toolchain", DEFAULT_TOOLCHAIN), body.get("files", {}), body.get("stdin", "")
        if not isinstance(toolchain, str) or not isinstance(stdin, str) or not isinstance(files, dict):
            raise BadJob("toolchain and stdin must be strings, files an object")
        if len(files) > MAX_FILES or not all(
            isinstance(name, str) and FILE_NAME.match(name) and isinstance(text, str) for name, text in files.items()
        ):
            raise BadJob(f"files: at most {MAX_FILES}, plain names, text contents")
        try:
            timeout = min(float(body.get("timeout_seconds", max_timeout_seconds)), max_timeout_seconds)
            queue_timeout = min(float(body.get("queue_timeout_seconds", 30)), 600.0)
        except (TypeError, ValueError):
            raise BadJob("timeouts must be numbers") from None
        if not (timeout > 0 and queue_timeout > 0):
            raise BadJob("timeouts must be positive")
        user = str(body.get("user") or f"anonymous:{uuid.uuid4().hex}")[:200]  # no key: a queue of its own
        return cls(toolchain, dict(files), stdin, timeout, queue_timeout, user)


@dataclass(frozen=True)
class Execution:
    """What one run produced, before grading."""

    timed_out: bool
    overflow: bool  # the result channel went past its cap
    clean: bool  # the harness said "done": nothing of the run was left to kill
    returncode: int | None
    report: str
    diagnostics: str
    duration_ms: float
    compile_ms: float | None = None  # the compile step's time, when this job compiled (compiled.py)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Any) -> Execution:
        try:
            return cls(
                timed_out=bool(body["timed_out"]),
                overflow=bool(body["overflow"]),
                clean=bool(body["clean"]),
                returncode=body["returncode"] if isinstance(body["returncode"], int) else None,
                report=str(body["report"]),
                diagnostics=str(body["diagnostics"]),
                duration_ms=float(body["duration_ms"]),
                compile_ms=float(body["compile_ms"]) if isinstance(body.get("compile_ms"), int | float) else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SandboxUnavailable("the sandbox runner sent an unreadable answer") from error


def grade_execution(tests: list[dict], execution: Execution, *, quiet: bool = False) -> RunResult:
    """Grade a run from its harness report; a harness that never started is the sandbox's fault."""
    report = Report.parse(execution.report.encode("utf-8", "surrogateescape").split(b"\n"))
    is_timeout = execution.timed_out
    if not is_timeout and not report.is_started and report.syntax_error is None:
        # The harness never got to the user's code: bwrap refused, no python3 under /usr... Not the
        # submission's fault, so not a graded result.
        if not quiet:
            log.error("sandbox.failed", returncode=execution.returncode, detail=execution.diagnostics[:2000])
        first_line = next((line for line in execution.diagnostics.splitlines() if line.strip()), "")
        raise SandboxUnavailable(f"the sandbox did not start ({first_line[:200] or 'no diagnostics'})")
    crash = None
    if execution.overflow:
        crash = "output limit exceeded"
    elif not is_timeout and not report.is_done:
        crash = "the program stopped the grader"
        # Usually the submission's doing (it killed its harness); the log tells the rare other cases.
        log.warning("sandbox.harness_stopped", returncode=execution.returncode, detail=execution.diagnostics[-2000:])
    return grade(tests, report, duration_ms=execution.duration_ms, is_timeout=is_timeout, crash=crash)
