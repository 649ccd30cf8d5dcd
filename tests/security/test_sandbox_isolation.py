"""Submitted code attacks the real server, started as the README does (`python -m backend`, uvloop).

Each test submits hostile code to a visible `probe()` test, so what the code saw comes back as the test's
`actual` value, and asserts it found nothing: no socket descriptor (the API's listener reached user code
under uvloop before the runner existed), no other process's environment, no file outside its job dir,
no database, no loopback service; one run holds at most SANDBOX_MEMORY_MB whatever it writes or forks;
a user flooding the sandbox with endless loops does not delay another user's submission. And production
without isolation does not start at all.
"""

from __future__ import annotations

import ast
import asyncio
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from backend.app import create_app
from tests.api.test_exercises import SOLUTION, add_exercise
from tests.conftest import make_settings
from tests.helpers import PASSWORD, unique_email
from tests.runners import start_runner
from tests.servers import backend_env, free_port, stop, wait_until_serving

MEMORY_MB = 256
# Without bubblewrap (development only; production refuses to start) there are no namespaces to test.
requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
THIS_FILE = str(Path(__file__).resolve())
RUN_SECONDS = 3
PROBE_TEST = {"name": "probe", "call": "probe()", "expected": "None"}
ADD_TESTS = [{"name": "adds", "call": "add_numbers(1, 2)", "expected": "3"}]


@dataclass
class Server:
    base: str
    port: int
    directory: Path
    probe_id: int
    add_id: int
    env_marker: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("sandbox-server")
    marker = "env-marker-" + os.urandom(8).hex()
    (directory / ".env").write_text(f"CODEMENTOR_UNUSED_MARKER={marker}\n")  # a .env next to the server
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "backend"],
        cwd=directory,
        env=backend_env(
            PORT=str(port),
            SANDBOX_MEMORY_MB=str(MEMORY_MB),
            SANDBOX_TIMEOUT_SECONDS=str(RUN_SECONDS),
            SANDBOX_MAX_CONCURRENCY="2",
            RATE_LIMITS_ENABLED="false",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        probe_id, add_id = asyncio.run(add_exercises(directory / "codementor.db"))
        yield Server(base, port, directory, probe_id, add_id, marker)
    finally:
        stop(process)


async def add_exercises(database: Path) -> tuple[int, int]:
    """Written straight into the server's database: a probe exercise whose one test is visible."""
    app = create_app(make_settings(database_url=f"sqlite+aiosqlite:///{database}", sandbox_url="unix:///none"))
    try:
        probe = await add_exercise(
            app, examples=[PROBE_TEST], tests=[PROBE_TEST], solution="def probe():\n    return None\n",
            reference_duration_ms=50,
        )  # fmt: skip
        adds = await add_exercise(app, examples=ADD_TESTS, tests=ADD_TESTS, reference_duration_ms=50)
    finally:
        await app.extensions["db_engine"].dispose()
    return probe, adds


async def sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": unique_email(), "password": PASSWORD, "name": "Mallory"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def submit(client: httpx.AsyncClient, headers: dict[str, str], exercise_id: int, code: str) -> dict:
    response = await client.post(f"/api/v1/exercises/{exercise_id}/submit", json={"code": code}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["submission"]


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
        yield http


async def probe(client: httpx.AsyncClient, server: Server, code: str) -> object:
    """Run `code` (which defines probe()) and return what probe() returned."""
    submission = await submit(client, await sign_in(client), server.probe_id, code)
    [result] = submission["results"]
    assert result["actual"] is not None, submission
    return ast.literal_eval(result["actual"])


SOCKETS = """
import os, socket, stat
def probe():
    found = []
    for pid in ['self'] + [p for p in os.listdir('/proc') if p.isdigit()]:
        try:
            names = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            continue
        for name in names:
            try:
                fd = os.open(f'/proc/{pid}/fd/{name}', os.O_RDONLY) if pid != 'self' else os.dup(int(name))
            except OSError:
                continue
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                listening = socket.socket(fileno=fd).getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                found.append((pid, int(name), listening))
            else:
                os.close(fd)
    return found
"""


async def test_submitted_code_holds_no_socket(client: httpx.AsyncClient, server: Server) -> None:
    assert await probe(client, server, SOCKETS) == []


@requires_bwrap
async def test_submitted_code_reaches_no_secret_file_or_service(client: httpx.AsyncClient, server: Server) -> None:
    targets = {
        "files": [str(server.directory / name) for name in (".env", "codementor.db", "codementor.db-wal")]
        + ["/etc/passwd", "/etc/shadow", THIS_FILE],
        "ports": [5432, 6379, server.port],
    }
    code = f"""
import os, socket
TARGETS = {targets!r}
def probe():
    reached = []
    for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['self']:
        try:
            if open(f'/proc/{{pid}}/environ', 'rb').read().strip(b'\\0'):
                reached.append('environ of ' + pid)
        except OSError:
            pass
    for path in TARGETS['files']:
        try:
            open(path, 'rb').read(1)
            reached.append(path)
        except OSError:
            pass
    for port in TARGETS['ports']:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            reached.append(port)
        except OSError:
            pass
    return reached
"""
    reached = await probe(client, server, code)
    # bwrap sets no variable; Python's locale coercion may put LC_CTYPE in the run's own environment.
    assert [item for item in reached if not str(item).startswith("environ of")] == []
    assert server.env_marker not in repr(reached)


HOARD = """
import os, time
MB = 1024 * 1024
def grab():
    held = []
    try:
        while True:
            held.append(bytearray(MB))
    except MemoryError:
        pass
    return held
def fill(path):
    written = 0
    try:
        with open(path, 'wb') as f:
            while written < 4096:
                f.write(b'x' * MB)
                f.flush()
                written += 1
    except OSError:
        pass
    return written
def shared_memory():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    held = 0
    while held < 1024:
        segment = libc.shmget(0, 16 * MB, 0o1000 | 0o600)
        if segment < 0:
            break
        address = libc.shmat(segment, None, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            break
        ctypes.memset(address, 1, 16 * MB)
        libc.shmdt(ctypes.c_void_p(address))  # detached, the segment stays, outside every rlimit
        held += 16
    return held
def memfd_files():
    held = 0
    try:
        while held < 1024:
            with open(os.memfd_create('hoard'), 'wb', closefd=False) as f:  # the descriptor stays open
                for _ in range(8):
                    f.write(b'x' * MB)
            held += 8
    except OSError:
        pass
    return held
def probe():
    files = sum(fill(path) for path in ('/dev/hoard', '/dev/shm/hoard', '/tmp/hoard', '/hoard', '/tmp/hoard2'))
    files += shared_memory() + memfd_files()
    read_end, write_end = os.pipe()
    children = 0
    for _ in range(20):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os.write(write_end, b'%d\\n' % len(grab()))
            time.sleep(30)
            os._exit(0)
        children += 1
    os.close(write_end)
    reports = os.read(read_end, 4096).decode().split()
    deadline = time.time() + 2
    while len(reports) < children and time.time() < deadline:
        reports += os.read(read_end, 4096).decode().split()
    in_children = sum(int(n) for n in reports)
    return files, children, in_children, len(grab())
"""


@requires_bwrap
async def test_one_run_holds_at_most_its_memory_cap(client: httpx.AsyncClient, server: Server) -> None:
    files, children, in_children, in_parent = await probe(client, server, HOARD)
    assert children <= 4  # a small process limit per run
    assert files + in_children + in_parent <= MEMORY_MB, (files, children, in_children, in_parent)
    assert in_parent >= 8  # the run could still use memory: the cap is not a broken sandbox


MEMFD = """
import os
def probe():
    try:
        os.close(os.memfd_create('hoard'))
    except OSError as error:
        return error.errno
    return 'created'
"""


@requires_bwrap
async def test_memfd_files_are_refused(client: httpx.AsyncClient, server: Server) -> None:
    # A memfd file lives outside RLIMIT_AS and /tmp's size: the sandbox's seccomp filter refuses it.
    assert await probe(client, server, MEMFD) == errno.EPERM


async def test_a_flooding_user_does_not_delay_another(client: httpx.AsyncClient, server: Server) -> None:
    flooder = await sign_in(client)
    endless = "def add_numbers(first, second):\n    while True:\n        pass\n"
    flood = [asyncio.create_task(submit(client, flooder, server.add_id, endless)) for _ in range(6)]
    await asyncio.sleep(0.5)  # the flood is in: one endless run going, five queued behind it
    started = time.monotonic()
    other = await submit(client, await sign_in(client), server.add_id, SOLUTION)
    elapsed = time.monotonic() - started
    for task in flood:
        task.cancel()  # the runner cancels a job whose client went away
    await asyncio.gather(*flood, return_exceptions=True)
    assert other["status"] == "passed"
    # Behind the flood it would wait for a slot, which frees only when an endless run times out (RUN_SECONDS):
    # anything shorter was not queued behind it, however slowly a loaded machine graded it.
    assert elapsed < RUN_SECONDS - 0.25, f"another user's submission waited {elapsed:.1f} s behind the flood"


@pytest.fixture
def broken_bwrap() -> Iterator[Path]:
    """What bubblewrap says in a container without user namespaces; readable by the sandbox's uids."""
    directory = Path(tempfile.mkdtemp(prefix="broken-bwrap-"))
    directory.chmod(0o755)
    broken = directory / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    broken.chmod(0o755)
    yield broken
    shutil.rmtree(directory)


def production_env(**settings: str) -> dict[str, str]:
    return backend_env(
        ENVIRONMENT="production",
        SECRET_KEY="Zq8vR2mN5xT1yK7wL3pB9cF4hJ6dS0aGzQ-prod",
        TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        FRONTEND_URL="https://app.codementor.test",
        BACKEND_URL="https://api.codementor.test",  # every other production check passes: only isolation fails
        CORS_ORIGINS="https://app.codementor.test",
        EMAIL_BACKEND="smtp",
        METRICS_TOKEN="metrics-token-for-this-test",
        PORT=str(free_port()),
        **settings,
    )


def serve_once(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "backend", "serve"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_production_without_isolation_refuses_to_start(tmp_path: Path, broken_bwrap: Path) -> None:
    result = serve_once(production_env(SANDBOX_BWRAP=str(broken_bwrap)), tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to start" in lines[0] and "uid map" in lines[0], result.stderr


def test_production_refuses_a_shared_runner_that_does_not_isolate(tmp_path: Path, broken_bwrap: Path) -> None:
    runner = start_runner(sandbox_bwrap=str(broken_bwrap), sandbox_require_isolation=False)  # a dev runner
    try:
        assert runner.isolation == "unisolated"
        result = serve_once(production_env(SANDBOX_URL=runner.url), tmp_path)
    finally:
        runner.stop()
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not isolate" in lines[0], result.stderr
