"""What every benchmark script shares: wrk and its output, server processes, their memory and CPU, versions.

By hand only, never in CI. Everything here talks to 127.0.0.1 and stops only the processes it started.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
HOST = "127.0.0.1"  # the only address the benchmarks ever talk to
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 25.0  # the server's graceful timeout is 20 s


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


# ----------------------------------------------------------------------------- database, fake LLM


async def fresh_database(name: str, redis_url: str | None = None) -> str:
    """Drop and re-create the PostgreSQL database `name` (never the tests' one) and flush `redis_url`'s
    database when given; the new database's SQLAlchemy URL."""
    import asyncpg
    import redis.asyncio as redis

    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    if redis_url is not None:
        client = redis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
    return f"postgresql+asyncpg://postgres@{HOST}:5432/{name}"


def migrate_and_seed(env: dict[str, str], tree: Path = REPO) -> None:
    """`python -m backend migrate`, then `seed` (the catalog), with the server's environment, from the
    checkout `tree`."""
    for command in ("migrate", "seed"):
        done = subprocess.run(
            [sys.executable, "-m", "backend", command], cwd=tree, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m backend {command} failed:\n{done.stderr[-3000:]}")


def start_fake_llm(*options: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """bench/fake_llm.py in a process (and session) of its own, with its command-line `options`; the
    settings it prints for pointing the API at it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_llm", *options],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the fake LLM server did not start")
    return process, json.loads(line)


# ----------------------------------------------------------------------------------------- wrk


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit(
            "error: `wrk` is not on PATH. Install Debian's package first:\n    apt-get update && apt-get install -y wrk"
        )
    return path


def venv_tool(name: str) -> str | None:
    """A console script of this Python environment (hypercorn, uvicorn, py-spy), else from PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unparsable wrk duration {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles, totals and errors from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rps is None:
        raise ValueError("no 'Requests/sec' line in wrk output:\n" + output)
    latency: dict[str, float] = {}
    distribution = output.split("Latency Distribution", 1)
    if len(distribution) == 2:
        for percent, value in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+(\S+)", distribution[1], re.MULTILINE):
            latency[percent.removesuffix(".000").removesuffix(".00")] = round(_to_ms(value), 3)
    if "50" not in latency or "99" not in latency:
        raise ValueError("no latency distribution in wrk output (was --latency passed?):\n" + output)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors = dict(zip(errors, map(int, socket_errors.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_second": float(rps.group(1)),
        "latency_ms": latency,
        "requests": int(total.group(1)) if total else 0,
        "errors": errors,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def wrk_command(url: str, *, threads: int, connections: int, seconds: float, extra: Sequence[str] = ()) -> list[str]:
    threads = max(1, min(threads, connections))
    # --timeout: a bcrypt-bound login queue answers in seconds; wrk's default (2 s) would call that an error.
    duration = f"-d{max(1, round(seconds))}s"
    return [wrk_path(), f"-t{threads}", f"-c{connections}", duration, "--timeout", "30s", "--latency", *extra, url]


def run_wrk(url: str, *, threads: int, connections: int, seconds: float, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One wrk run, parsed; the raw output is kept under "output"."""
    command = wrk_command(url, threads=threads, connections=connections, seconds=seconds, extra=extra)
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
    return {**parse_wrk(result.stdout), "output": result.stdout}


def wrk_lua(directory: Path, name: str, *, method: str, body: object | None, headers: dict[str, str]) -> Path:
    """A wrk script that sends one fixed request (wrk's own `-H`/`-d` cannot set a method or body)."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")  # a JSON string is a valid Lua string here
        headers = {"Content-Type": "application/json", **headers}
    lines += [f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}" for key, value in headers.items()]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


# -------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def read_status_kib(pid: int, key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return None


def loadavg() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return None


def spawned_workers(supervisor: int) -> list[int]:
    """Worker processes a supervisor spawned with multiprocessing (Hypercorn and uvicorn both do).

    Its resource tracker is a child too, but runs `resource_tracker`, not `spawn_main`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == supervisor and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return sorted(found)


class Server:
    """One server process tree (started here, in its own process group), answering `GET /health`."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.name, self.command, self.env, self.port, self.log_path = name, command, env, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.workers: list[int] = []

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, expected_workers: int = 1) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # stdout carries JSON logs (WARNING and above)
                self.command, cwd=REPO, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: server exited with {self.proc.returncode}:\n{self.log()}")
            if self._healthy():
                self.workers = spawned_workers(self.proc.pid)
                if len(self.workers) >= expected_workers or (expected_workers == 1 and not self.workers):
                    self.workers = self.workers or [self.proc.pid]
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: /health did not answer in {STARTUP_TIMEOUT_SECONDS:.0f} s:\n{self.log()}")

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
        except (OSError, ValueError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def rss_kib(self) -> int | None:
        """Resident memory of the serving processes together (not the supervisor of several workers)."""
        values = [read_status_kib(pid, "VmRSS") for pid in self.workers]
        return sum(v for v in values if v is not None) or None

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in self.workers)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script created
                self.proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        if self.proc is not None:  # workers left behind by a supervisor that died first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ profiling


def py_spy_record(pid: int, seconds: float, output: Path, fmt: str = "raw") -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` with py-spy for `seconds`; returns the process (None without py-spy)."""
    py_spy = venv_tool("py-spy")
    if py_spy is None:
        print("py-spy is not installed (pip install -r bench/requirements.txt); no profile", file=sys.stderr)
        return None
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", "200", "--function", "--format", fmt, "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# Frames worth naming in a summary: our code and the libraries it adds on top of Quart.
HOTSPOT_FRAMES = re.compile(
    r"\((backend/|quart_schema/|quart_cors/|prometheus_client/|structlog/|pydantic/|sqlalchemy/|asyncpg/|redis/)"
)


# A thread-pool thread waiting for work (bcrypt, the sandbox): py-spy does not see it as idle.
IDLE_LEAF = re.compile(r";_worker \(concurrent/futures/thread\.py:\d+\)$")


def hotspots(raw: Path, limit: int = 20) -> list[tuple[float, str]]:
    """Inclusive share of the samples for the frames of HOTSPOT_FRAMES, from py-spy's raw stacks."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or IDLE_LEAF.search(stack):
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            if HOTSPOT_FRAMES.search(frame):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:limit]
    return [(round(100 * count / total, 1), frame) for frame, count in ranked] if total else []


# --------------------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    total_kib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        total_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(total_kib / 1024 / 1024, 1) if total_kib else None,
        "platform": platform.platform(),
    }


def versions(packages: Sequence[str]) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, Any] = {"python": platform.python_version()}
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found["wrk"] = (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5, check=False)
            .stdout.split("Copyright")[0]
            .strip()
        )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(REPO)]
        found["git_commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
        # What was measured is the working tree: name the files that differ from that commit.
        found["git_modified"] = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.splitlines()
    return found
