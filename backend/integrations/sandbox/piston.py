"""The Piston backend: the same harness, run by a Piston code-execution service (`POST /api/v2/execute`).

The harness goes in as `main.py`, the job (code and test inputs) on stdin; Piston has no extra descriptor
to offer, so the harness reports on its own stdout, which no child inherits (user output goes to pipes the
harness reads). Grading happens here as for the local backend: Piston never sees an expected value.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import structlog

from backend.integrations.sandbox.base import (
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    HARNESS_SOURCE,
    Report,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    build_job,
    elapsed_ms,
    grade,
    record,
    slot,
)

log = structlog.get_logger(__name__)

HTTP_GRACE_SECONDS = 5.0  # Piston's own start-up and queueing on top of the run timeout


class PistonSandbox(Sandbox):
    backend = "piston"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        memory_mb: int,
        max_concurrency: int,
        queue_timeout_seconds: float = DEFAULT_QUEUE_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.memory_bytes = memory_mb * 1024 * 1024
        self.queue_timeout_seconds = queue_timeout_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(base_url=self.base_url)

    async def run(
        self, code: str, tests: list[dict], *, timeout_seconds: float | None = None, user: str | None = None
    ) -> RunResult:
        timeout = timeout_seconds or self.timeout_seconds
        body = {
            "language": "python",
            "version": "*",
            "files": [{"name": "main.py", "content": HARNESS_SOURCE}],
            "stdin": build_job(code, tests),
            "run_timeout": int(timeout * 1000),
            "run_memory_limit": self.memory_bytes,
        }
        async with slot(self._semaphore, self.queue_timeout_seconds):
            started = time.perf_counter()
            try:
                response = await self._client.post("/api/v2/execute", json=body, timeout=timeout + HTTP_GRACE_SECONDS)
            except httpx.HTTPError as error:
                log.error("sandbox.piston_unreachable", error=type(error).__name__)
                raise SandboxUnavailable("Piston is unreachable") from error
            duration = elapsed_ms(started, time.perf_counter())
        if response.status_code != 200:
            log.error("sandbox.piston_failed", status=response.status_code, detail=response.text[:500])
            raise SandboxUnavailable(f"Piston answered {response.status_code}")
        try:
            run = response.json()["run"]
            stdout = str(run.get("stdout") or "")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SandboxUnavailable("Piston sent an unreadable response") from error
        report = Report.parse(stdout.encode("utf-8", "surrogatepass").split(b"\n"))
        # Piston kills an over-time run with SIGKILL and (1.x) status "TO".
        is_timeout = not report.is_done and (run.get("status") == "TO" or run.get("signal") == "SIGKILL")
        if not is_timeout and not report.is_started and report.syntax_error is None:
            log.error("sandbox.piston_failed", code=run.get("code"), detail=str(run.get("stderr") or "")[:500])
            raise SandboxUnavailable("the harness did not start on Piston")
        crash = None if is_timeout or report.is_done else "the program stopped the grader"
        return record(self.backend, grade(tests, report, duration_ms=duration, is_timeout=is_timeout, crash=crash))

    async def isolation(self) -> str:
        """Piston isolates every run itself; reachable is all there is to check."""
        try:
            response = await self._client.get("/api/v2/runtimes", timeout=3)
        except httpx.HTTPError:
            return "unavailable"
        return "isolated" if response.status_code < 500 else "unavailable"

    async def close(self) -> None:
        await self._client.aclose()
