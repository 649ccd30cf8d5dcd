"""The API's side of the sandbox runner: a `Sandbox` that sends jobs to `python -m backend sandbox`.

The runner executes and returns the harness's report; grading stays here (`protocol.grade_execution`),
so expected values never leave the API process. Queueing is the runner's (fair across users, see
`fairness.py`): this client holds no slots of its own, and passes the user's key with every job.

The protocol is the runner's own small HTTP/1.1 (runner.py: one request with a Content-Length body, one
JSON answer with one), spoken here on a connection per request over asyncio's streams: httpx cost ~0.35 ms
more of the API's CPU per run (docs/PERFORMANCE.md, session 6), and closing the connection is how a client
that went away cancels its job.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import structlog

from backend.integrations.sandbox.base import (
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    RunResult,
    Sandbox,
    SandboxBusy,
    SandboxUnavailable,
    record,
)
from backend.integrations.sandbox.local import python_job
from backend.integrations.sandbox.protocol import MAX_COMPILE_SECONDS, Execution, Job, grade_execution
from backend.metrics import SANDBOX_QUEUE_WAIT

log = structlog.get_logger(__name__)

GRACE_SECONDS = 10.0  # the runner's own work around a run: starting, killing, cleaning up
STATUS_TIMEOUT_SECONDS = 3.0


def parse_url(url: str) -> tuple[str | None, str, int]:
    """(the Unix socket's path or None, the TCP host, the TCP port)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and parts.path:
        return parts.path, "", 0
    if parts.scheme == "http" and parts.hostname:
        return None, parts.hostname, parts.port or 80
    raise ValueError(f"SANDBOX_URL must be unix:///path or http://host:port, not {url!r}")


class RunnerUnreachable(Exception):
    """The runner could not be reached, or answered something that is not its protocol."""


class RunnerSandbox(Sandbox):
    backend = "local"

    def __init__(
        self,
        url: str | None,
        *,
        timeout_seconds: float,
        queue_timeout_seconds: float = DEFAULT_QUEUE_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.queue_timeout_seconds = queue_timeout_seconds
        # No connection limit: every waiting run is a request parked in the runner's fair queue.
        self._address = parse_url(url) if url is not None else None

    async def run(
        self, code: str, tests: list[dict], *, timeout_seconds: float | None = None, user: str | None = None
    ) -> RunResult:
        timeout = timeout_seconds or self.timeout_seconds
        job = python_job(code, tests, timeout, self.queue_timeout_seconds, user)
        body = await self._post(job.to_json(), timeout + self.queue_timeout_seconds + GRACE_SECONDS)
        return record(self.backend, grade_execution(tests, Execution.from_json(body)))

    async def execute(self, job: Job) -> Execution:
        """Run any runner job (another language's toolchain, see languages/) and return it ungraded."""
        seconds = job.timeout_seconds + job.queue_timeout_seconds + GRACE_SECONDS + MAX_COMPILE_SECONDS
        body = await self._post(job.to_json(), seconds)
        return Execution.from_json(body)

    async def _post(self, job: dict[str, Any], seconds: float) -> Any:
        if self._address is None:
            raise SandboxUnavailable("no sandbox runner: SANDBOX_URL is not set (python -m backend starts one)")
        # Serialised here, ASCII-escaped: submitted code may hold lone surrogates, which UTF-8 cannot carry.
        content = json.dumps(job).encode()
        try:
            status, body = await self._request(b"POST /v1/run", content, seconds)
        except (RunnerUnreachable, OSError, TimeoutError, EOFError, ValueError, asyncio.LimitOverrunError) as error:
            log.error("sandbox.runner_unreachable", url=self.url, error=type(error).__name__)
            raise SandboxUnavailable("the sandbox runner is unreachable") from error
        if isinstance(body, dict) and isinstance(body.get("queued_ms"), int | float):
            SANDBOX_QUEUE_WAIT.observe(body["queued_ms"] / 1000)
        if status == 503 and isinstance(body, dict) and body.get("error") == "busy":
            raise SandboxBusy(str(body.get("detail") or "every sandbox slot stayed busy"))
        if status != 200:
            log.error("sandbox.runner_failed", status=status, detail=str(body)[:500])
            raise SandboxUnavailable(f"the sandbox runner answered {status}")
        return body

    async def _request(self, request_line: bytes, content: bytes, seconds: float) -> tuple[int, Any]:
        """One request on a connection of its own, closed afterwards (also when cancelled: the runner then
        cancels the job); (status, JSON body)."""
        assert self._address is not None
        socket_path, host, port = self._address
        async with asyncio.timeout(seconds):
            if socket_path is not None:
                reader, writer = await asyncio.open_unix_connection(socket_path)
            else:
                reader, writer = await asyncio.open_connection(host, port)
            try:
                head = b"%s HTTP/1.1\r\nhost: sandbox\r\ncontent-type: application/json\r\n" % request_line
                writer.write(head + b"content-length: %d\r\n\r\n" % len(content) + content)
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                version, _, rest = lines[0].partition(" ")
                if not version.startswith("HTTP/1."):
                    raise RunnerUnreachable(f"not an HTTP answer: {lines[0][:100]!r}")
                length = next(
                    (int(value) for name, _, value in (line.partition(":") for line in lines[1:])
                     if name.strip().lower() == "content-length"),
                    None,
                )  # fmt: skip
                if length is None:
                    raise RunnerUnreachable("an answer without a Content-Length")
                return int(rest.split(" ", 1)[0]), json.loads(await reader.readexactly(length))
            finally:
                writer.close()

    async def status(self) -> dict[str, Any]:
        """The runner's own status (`isolation`, slots...); `{"isolation": "unavailable"}` when unreachable."""
        if self._address is None:
            return {"isolation": "unavailable"}
        try:
            status, body = await self._request(b"GET /v1/status", b"", STATUS_TIMEOUT_SECONDS)
        except (RunnerUnreachable, OSError, TimeoutError, EOFError, ValueError, asyncio.LimitOverrunError):
            return {"isolation": "unavailable"}
        if status != 200 or not isinstance(body, dict):
            return {"isolation": "unavailable"}
        return body

    async def isolation(self) -> str:
        return str((await self.status()).get("isolation", "unavailable"))

    async def close(self) -> None:
        return None  # a connection per request: nothing held between them
