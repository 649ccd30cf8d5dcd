"""The API's side of the sandbox runner: a `Sandbox` that sends jobs to `python -m backend sandbox`.

The runner executes and returns the harness's report; grading stays here (`protocol.grade_execution`),
so expected values never leave the API process. Queueing is the runner's (fair across users, see
`fairness.py`): this client holds no slots of its own, and passes the user's key with every job.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
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
from backend.integrations.tls import client_ssl_context
from backend.metrics import SANDBOX_QUEUE_WAIT

log = structlog.get_logger(__name__)

GRACE_SECONDS = 10.0  # the runner's own work around a run: starting, killing, cleaning up
STATUS_TIMEOUT_SECONDS = 3.0


def parse_url(url: str) -> tuple[str | None, str]:
    """(the Unix socket's path or None, the base URL to request)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and parts.path:
        return parts.path, "http://sandbox"
    if parts.scheme == "http" and parts.hostname:
        return None, url.rstrip("/")
    raise ValueError(f"SANDBOX_URL must be unix:///path or http://host:port, not {url!r}")


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
        self._client: httpx.AsyncClient | None = None
        if url is not None:
            socket_path, base_url = parse_url(url)
            # No connection limit: every waiting run is a request parked in the runner's fair queue.
            transport = httpx.AsyncHTTPTransport(
                uds=socket_path,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
                verify=client_ssl_context(),  # never used (plain HTTP): the process's, not one built per client
            )
            self._client = httpx.AsyncClient(transport=transport, base_url=base_url)

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
        if self._client is None:
            raise SandboxUnavailable("no sandbox runner: SANDBOX_URL is not set (python -m backend starts one)")
        # Serialised here, ASCII-escaped: submitted code may hold lone surrogates, which UTF-8 cannot carry.
        content = json.dumps(job).encode()
        try:
            response = await self._client.post(
                "/v1/run", content=content, headers={"content-type": "application/json"}, timeout=seconds
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.error("sandbox.runner_unreachable", url=self.url, error=type(error).__name__)
            raise SandboxUnavailable("the sandbox runner is unreachable") from error
        if isinstance(body, dict) and isinstance(body.get("queued_ms"), int | float):
            SANDBOX_QUEUE_WAIT.observe(body["queued_ms"] / 1000)
        if response.status_code == 503 and isinstance(body, dict) and body.get("error") == "busy":
            raise SandboxBusy(str(body.get("detail") or "every sandbox slot stayed busy"))
        if response.status_code != 200:
            log.error("sandbox.runner_failed", status=response.status_code, detail=str(body)[:500])
            raise SandboxUnavailable(f"the sandbox runner answered {response.status_code}")
        return body

    async def status(self) -> dict[str, Any]:
        """The runner's own status (`isolation`, slots...); `{"isolation": "unavailable"}` when unreachable."""
        if self._client is None:
            return {"isolation": "unavailable"}
        try:
            response = await self._client.get("/v1/status", timeout=STATUS_TIMEOUT_SECONDS)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return {"isolation": "unavailable"}
        if response.status_code != 200 or not isinstance(body, dict):
            return {"isolation": "unavailable"}
        return body

    async def isolation(self) -> str:
        return str((await self.status()).get("isolation", "unavailable"))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
