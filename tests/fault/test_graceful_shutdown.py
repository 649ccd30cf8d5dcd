"""SIGTERM to a real server (`python -m backend serve` in a subprocess, embedded settings), with one
worker and with two (our launcher: SIGTERM to it, or to its whole process group as systemd sends it).

Observed: Hypercorn stops accepting at once, lets the in-flight JSON request and the open chat stream
finish (both complete normally, the stream with its `done` event) within GRACEFUL_TIMEOUT_SECONDS, runs
the app's shutdown (jobs, LLM client, sandbox, cache, engine) and exits 0. A queued job row is untouched
by the shutdown and is still `queued` after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db import utcnow
from backend.models.github import Job
from tests.conftest import TEST_SECRET_KEY
from tests.fakes.llm_servers import FakeOpenAI
from tests.servers import backend_env, free_port

START_SECONDS = 30
EXIT_SECONDS = 35  # above the server's 20 s graceful timeout and its launcher's margin
PASSWORD = "Correct-horse-9-battery"


class Server:
    """`python -m backend serve` on a free port, run from an empty directory (no .env is read)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.process: asyncio.subprocess.Process | None = None
        self.log = cwd / "server.log"

    async def launch(self) -> None:
        """Start the process, without waiting for it to serve."""
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "backend",
                "serve",
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, as a service manager starts it
            )

    async def start(self) -> None:
        await self.launch()
        assert self.process is not None
        async with httpx.AsyncClient() as client:
            for _ in range(START_SECONDS * 10):
                assert self.process.returncode is None, self.log.read_text()
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    async def wait_for_log(self, text: str, count: int = 1) -> None:
        """Until the server's log holds `text` `count` times (every worker logs its own start)."""
        for _ in range(START_SECONDS * 10):
            if self.log.read_text().count(text) >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{text!r} not logged {count} times:\n{self.log.read_text()}")

    async def terminate(self, *, whole_group: bool = False) -> int:
        """SIGTERM to the server process, or to its whole process group (what systemd sends by default)."""
        assert self.process is not None
        if whole_group:
            os.killpg(self.process.pid, signal.SIGTERM)
        else:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), EXIT_SECONDS)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the workers too, when there are some
            await self.process.wait()


@pytest.fixture
async def server(tmp_path: Path, sqlite_url: str, openai_server: FakeOpenAI) -> AsyncIterator[Server]:
    openai_server.reset()
    env = backend_env(
        ENVIRONMENT="test",
        SECRET_KEY=TEST_SECRET_KEY,
        BCRYPT_ROUNDS="4",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        DATABASE_URL=sqlite_url,
        EMAIL_BACKEND="memory",
        LLM_PROVIDER="openai",
        LLM_MODEL=openai_server.model,
        LLM_BASE_URL=openai_server.sdk_base_url,
        LLM_API_KEY=openai_server.api_key,
        LLM_TIMEOUT_SECONDS="10",
    )
    running = Server(env, tmp_path)
    yield running
    await running.kill()


async def queue_job_for_later(database_url: str) -> int:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        job_id = await connection.scalar(
            Job.__table__.insert()
            .values(kind="review", payload={"review_id": 1}, status="queued", run_after=utcnow() + timedelta(days=1))
            .returning(Job.id)
        )
    await engine.dispose()
    return int(job_id)


async def job_status(database_url: str, job_id: int) -> str:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        status = await connection.scalar(select(Job.status).where(Job.id == job_id))
    await engine.dispose()
    return str(status)


async def sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": "shutdown@example.com", "password": PASSWORD, "name": "Grace"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sse_events(text: str) -> list[str]:
    return [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]


async def test_sigterm_finishes_in_flight_requests_and_streams_then_exits_zero(
    server: Server, sqlite_url: str, openai_server: FakeOpenAI
) -> None:
    job_id = await queue_job_for_later(sqlite_url)
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=EXIT_SECONDS) as client:
        headers = await sign_in(client)
        conversation = (await client.post("/api/v1/chat/conversations", json={}, headers=headers)).json()
        messages = f"/api/v1/chat/conversations/{conversation['id']}/messages"
        openai_server.delay_seconds, openai_server.chunk_delay = 1.0, 0.1  # both requests take ~1–3 s

        async def streamed() -> tuple[int, str]:
            body = {"content": "Stream me an answer", "stream": True}
            async with client.stream("POST", messages, json=body, headers=headers) as response:
                return response.status_code, (await response.aread()).decode()

        async def plain() -> tuple[int, Any]:
            response = await client.post(messages, json={"content": "Answer me plainly"}, headers=headers)
            return response.status_code, response.json()

        stream_task, plain_task = asyncio.create_task(streamed()), asyncio.create_task(plain())
        while len(openai_server.requests) < 2:  # noqa: ASYNC110 (both are waiting on the upstream)
            await asyncio.sleep(0.02)
        exit_code = await server.terminate()
        stream_status, stream_body = await stream_task
        plain_status, plain_body = await plain_task

    assert exit_code == 0, server.log.read_text()
    assert plain_status == 201, plain_body
    assert plain_body["assistant_message"]["content"] == openai_server.reply
    assert stream_status == 200 and sse_events(stream_body)[-1] == "done", stream_body
    done = json.loads(stream_body.rsplit("data: ", 1)[1])
    assert done["assistant_message"]["status"] == "complete"

    assert await job_status(sqlite_url, job_id) == "queued"
    await server.start()  # a restart: the queued row is still there, untouched
    assert await job_status(sqlite_url, job_id) == "queued"
    assert await server.terminate() == 0


@pytest.mark.parametrize("whole_group", [False, True], ids=["sigterm_to_launcher", "sigterm_to_process_group"])
async def test_two_workers_finish_every_in_flight_request_and_stream_on_sigterm(
    server: Server, openai_server: FakeOpenAI, whole_group: bool
) -> None:
    server.env.update(WORKERS="2", LOG_LEVEL="INFO")
    await server.start()
    await server.wait_for_log("app.started", 2)  # /health answers as soon as one of them serves
    async with httpx.AsyncClient(base_url=server.url, timeout=EXIT_SECONDS) as client:
        headers = await sign_in(client)
        conversation = (await client.post("/api/v1/chat/conversations", json={}, headers=headers)).json()
        messages = f"/api/v1/chat/conversations/{conversation['id']}/messages"
        openai_server.delay_seconds, openai_server.chunk_delay = 1.5, 0.1

        async def streamed() -> tuple[int, str]:
            # A connection each: the kernel spreads them over both workers.
            async with httpx.AsyncClient(base_url=server.url, timeout=EXIT_SECONDS) as own:
                body = {"content": "Stream me an answer", "stream": True}
                async with own.stream("POST", messages, json=body, headers=headers) as response:
                    return response.status_code, (await response.aread()).decode()

        async def plain() -> tuple[int, Any]:
            async with httpx.AsyncClient(base_url=server.url, timeout=EXIT_SECONDS) as own:
                response = await own.post(messages, json={"content": "Answer me plainly"}, headers=headers)
                return response.status_code, response.json()

        streams = [asyncio.create_task(streamed()) for _ in range(2)]
        plains = [asyncio.create_task(plain()) for _ in range(2)]
        while len(openai_server.requests) < 4:  # noqa: ASYNC110 (all are waiting on the upstream)
            await asyncio.sleep(0.02)
        exit_code = await server.terminate(whole_group=whole_group)
        stream_results = [await task for task in streams]
        plain_results = [await task for task in plains]

    assert exit_code == 0, server.log.read_text()
    log = server.log.read_text()
    assert log.count("app.stopped") == 2, log  # both workers ran the app's shutdown
    for status, body in plain_results:
        assert status == 201 and body["assistant_message"]["content"] == openai_server.reply, body
    for status, text in stream_results:
        assert status == 200 and sse_events(text)[-1] == "done", text


async def test_a_server_stopped_while_its_workers_start_exits_cleanly(server: Server) -> None:
    """systemd stopping a service it has just started: the SIGTERM reaches the workers while they still
    import (before Hypercorn installs its handlers), so they die of it; they had taken no request, and the
    launcher reports a clean stop (it answered 241, i.e. -SIGTERM, and systemd marked the unit failed)."""
    server.env.update(WORKERS="2", LOG_LEVEL="INFO")
    await server.launch()
    await server.wait_for_log("CodeMentor API on")  # the launcher is up; its workers have just been spawned
    await asyncio.sleep(0.3)
    assert "app.started" not in server.log.read_text()  # still starting: the case under test
    assert await server.terminate(whole_group=True) == 0, server.log.read_text()
