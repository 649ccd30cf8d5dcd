"""The sandbox runner process and its queue: fairness, its protocol, cancellation and supervision.

The runner is started as the server starts it (`RunnerProcess`: a child with an empty environment);
the API side is `RunnerSandbox`, the client every app uses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from backend.integrations.sandbox import RunnerSandbox, SandboxUnavailable
from backend.integrations.sandbox.fairness import FairQueue, QueueTimeout
from backend.integrations.sandbox.process import RunnerProcess
from tests.runners import start_runner
from tests.servers import backend_env

ADD = "def add(a, b):\n    return a + b\n"
TESTS = [{"name": "adds", "call": "add(1, 2)", "expected": "3"}]
SLOW = "import time\ndef add(a, b):\n    time.sleep(30)\n"


# --- the fair queue ----------------------------------------------------------------------------------


async def test_fair_queue_runs_one_job_per_user_and_rotates_across_users() -> None:
    queue = FairQueue(slots=1)
    order: list[str] = []
    release = asyncio.Event()

    async def job(user: str, name: str) -> None:
        async with queue.slot(user, queue_timeout_seconds=5):
            order.append(name)
            await release.wait()

    flood = [asyncio.create_task(job("a", f"a{i}")) for i in range(3)]
    await asyncio.sleep(0)
    other = asyncio.create_task(job("b", "b0"))  # arrives after the whole flood
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*flood, other)
    assert order == ["a0", "b0", "a1", "a2"]  # b's job did not wait behind a's queue

    two_slots = FairQueue(slots=2)
    async with two_slots.slot("a", 1):
        with pytest.raises(QueueTimeout):  # a free slot, but "a" already runs a job
            async with two_slots.slot("a", 0.05):
                pass
        async with two_slots.slot("b", 0.05):
            assert two_slots.running == {"a", "b"}
    assert two_slots.running == set() and two_slots.queued == 0


# --- the runner process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerProcess]:
    process = start_runner(sandbox_max_concurrency=1)
    yield process
    process.stop()


@pytest.fixture
async def client(runner: RunnerProcess) -> AsyncIterator[RunnerSandbox]:
    sandbox = RunnerSandbox(runner.url, timeout_seconds=10)
    yield sandbox
    await sandbox.close()


async def test_runner_holds_no_secret_and_no_descriptor_but_its_own(runner: RunnerProcess) -> None:
    assert runner.pid is not None
    environ = open(f"/proc/{runner.pid}/environ", "rb").read().split(b"\0")  # noqa: ASYNC230, SIM115
    assert sorted(name.split(b"=", 1)[0] for name in environ if name) == [b"LANG", b"PATH", b"PYTHONPATH"]
    assert os.readlink(f"/proc/{runner.pid}/cwd") == "/"  # no .env to find
    targets = [os.readlink(f"/proc/{runner.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{runner.pid}/fd")]
    sockets = [target for target in targets if target.startswith("socket:")]
    assert len(sockets) <= 3  # its listener and asyncio's self-pipe pair; nothing of ours
    assert not any(target.endswith((".db", ".env")) for target in targets)


async def test_runner_refuses_bad_requests(runner: RunnerProcess) -> None:
    transport = httpx.AsyncHTTPTransport(uds=runner.url.removeprefix("unix://"))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        bad = await http.post("/v1/run", content=b"{not json")
        unknown = await http.post("/v1/run", json={"toolchain": "cobol", "files": {}, "stdin": ""})
        traversal = await http.post("/v1/run", json={"files": {"../etc/passwd": "x"}, "stdin": ""})
        missing = await http.get("/v1/nothing")
        status = await http.get("/v1/status")
    assert (bad.status_code, traversal.status_code, missing.status_code) == (400, 400, 404)
    assert unknown.status_code == 503 and unknown.json()["error"] == "unavailable"
    assert status.json()["slots"] == 1 and status.json()["running"] == 0


async def test_a_client_that_goes_away_cancels_its_run(client: RunnerSandbox) -> None:
    run = asyncio.create_task(client.run(SLOW, TESTS, user="leaver"))
    while (await client.status())["running"] != 1:  # noqa: ASYNC110 - polls another process
        await asyncio.sleep(0.02)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    deadline = time.monotonic() + 2
    while (await client.status())["running"] != 0:
        assert time.monotonic() < deadline, "the runner kept running a job nobody waits for"
        await asyncio.sleep(0.02)
    assert (await client.run(ADD, TESTS, user="next")).status == "passed"  # the one slot is free again


async def test_a_runner_that_dies_is_restarted() -> None:
    runner = start_runner(sandbox_max_concurrency=1)
    sandbox = RunnerSandbox(runner.url, timeout_seconds=10)
    try:
        assert runner.pid is not None
        os.kill(runner.pid, signal.SIGKILL)
        with pytest.raises(SandboxUnavailable):
            await sandbox.run(ADD, TESTS)  # in between: 503 sandbox_unavailable, never a hang
        deadline = time.monotonic() + 15
        while await sandbox.isolation() == "unavailable":
            assert time.monotonic() < deadline, "the runner was not restarted"
            await asyncio.sleep(0.1)
        assert (await sandbox.run(ADD, TESTS)).status == "passed"
    finally:
        await sandbox.close()
        runner.stop()


def test_runner_stops_on_sigterm_quietly_with_a_client_connected(tmp_path) -> None:
    """SIGTERM (systemd, docker stop, Ctrl-C of `python -m backend`) while the API holds a keep-alive
    connection: exit 0 with no traceback in the log."""
    socket_path = tmp_path / "runner.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "backend", "sandbox", "--listen", f"unix://{socket_path}", "--max-concurrency", "1"],
        env=backend_env(SANDBOX_LOG_FORMAT="console"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("sandbox: ready")
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://sandbox") as http:
            assert http.get("/v1/status").status_code == 200  # the connection stays open (keep-alive)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
