"""`python -m backend` as a user runs it: a real Hypercorn on a free port, stopped by a signal."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend import __version__
from tests.servers import backend_env, free_port, wait_until_serving


def run_backend(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        cwd=cwd,
        env=backend_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_default_command_migrates_serves_docs_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "backend"],
        cwd=tmp_path,
        env=backend_env(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(base, process)
        ready = httpx.get(f"{base}/health/ready", timeout=5).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["database"]["status"] == "ok" and ready["checks"]["cache"]["backend"] == "memory"
        assert ready["checks"]["llm"]["provider"] == "offline"
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        assert (tmp_path / "codementor.db").exists()  # the embedded default: a SQLite file in the cwd
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"{base}/docs" in stderr
    assert "app.stopped" in stdout


def test_openapi_command_prints_the_spec(tmp_path: Path) -> None:
    result = run_backend("openapi", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["info"]["title"] == "CodeMentor API" and "/health/ready" in spec["paths"]


def test_migrate_command_is_repeatable(tmp_path: Path) -> None:
    for _ in range(2):
        result = run_backend("migrate", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "database at revision" in result.stderr


def test_worker_command_without_the_arq_backend_explains_and_fails(tmp_path: Path) -> None:
    result = run_backend("worker", cwd=tmp_path)
    assert result.returncode == 2 and "JOBS_BACKEND=arq" in result.stderr


def test_worker_command_without_redis_says_so(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "backend", "worker"]
    env = backend_env(JOBS_BACKEND="arq", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "cannot reach Redis" in result.stderr


def test_worker_command_runs_the_arq_worker_until_sigterm(tmp_path: Path, redis_server: str) -> None:
    assert run_backend("migrate", cwd=tmp_path).returncode == 0
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker"],
            cwd=tmp_path,
            env=backend_env(JOBS_BACKEND="arq", REDIS_URL=redis_server),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while "jobs.worker_started" not in log_path.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.1)
            assert "jobs.worker_started" in log_path.read_text()
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=60)
    assert returncode == 0, log_path.read_text()
    assert "jobs.worker_stopped" in log_path.read_text()


def test_create_admin_creates_then_promotes_and_the_admin_can_sign_in(tmp_path: Path) -> None:
    env = backend_env(ADMIN_PASSWORD="Admin-password-2026")
    command = [sys.executable, "-m", "backend", "create-admin", "--email", "Root@Example.com"]
    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert "root@example.com is a new administrator" in first.stderr
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and "now an administrator" in again.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "backend", "serve"],
        cwd=tmp_path,
        env=backend_env(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(base, process)
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            timeout=10,
            json={"email": "root@example.com", "password": "Admin-password-2026"},
        )
        assert login.status_code == 200 and login.json()["user"]["role"] == "admin"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_create_admin_refuses_a_weak_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend", "create-admin", "--email", "a@example.com"],
        cwd=tmp_path,
        env=backend_env(ADMIN_PASSWORD="short"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and "at least 12 characters" in result.stderr


def test_version_and_command_descriptions(tmp_path: Path) -> None:
    version = run_backend("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"python -m backend {__version__}"
    helped = run_backend("worker", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "Run queued background jobs" in helped.stdout


def test_create_admin_without_terminal_or_admin_password_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend", "create-admin", "--email", "a@example.com"],
        cwd=tmp_path,
        env=backend_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "create-admin: no terminal to ask for the password on; set ADMIN_PASSWORD"
    ]


def test_serve_on_a_busy_port_is_one_line_suggesting_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "backend", "serve"],
            cwd=tmp_path,
            env=backend_env(PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert f"127.0.0.1:{port} is already in use" in line and "PORT" in line


def test_worker_names_the_database_when_only_it_is_down(tmp_path: Path, redis_server: str) -> None:
    env = backend_env(
        JOBS_BACKEND="arq",
        REDIS_URL=redis_server,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/codementor",
    )
    command = [sys.executable, "-m", "backend", "worker"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "cannot reach the database at DATABASE_URL" in result.stderr and "Redis" not in result.stderr
