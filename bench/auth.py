"""By-hand benchmark of authentication on the production stack (PostgreSQL + Redis, bcrypt cost 12).

Never run in CI. From the repository root, with the venv active, Debian's `wrk` installed and the local
PostgreSQL (postgres@127.0.0.1:5432) and Redis (127.0.0.1:6379, database 14 is flushed) running:

    python bench/auth.py

Measures, on one Hypercorn worker (uvloop):
- `POST /api/v1/auth/login` throughput at BCRYPT_ROUNDS=12 (rate limits off, so bcrypt is the limit);
- the p99 of `GET /health` from one client, idle and while logins saturate the CPU (bcrypt must stay
  off the event loop: the goal is at most 3x idle);
- `GET /api/v1/auth/me` with a bearer token (JWT check, revocation cache, one query).
Results go to the terminal and bench/results/auth-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.health import (  # noqa: E402  (the repository root must be importable first)
    HOST,
    RESULTS_DIR,
    Server,
    Variant,
    loadavg,
    parse_wrk,
    read_status_kib,
    wrk_path,
)

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE_NAME = "codementor_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
EMAIL, PASSWORD = "bench@example.com", "Bench-password-2026"


async def fresh_database() -> str:
    import asyncpg
    import redis.asyncio as redis

    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    await admin.close()
    client = redis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE_NAME


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "backend", "migrate"], cwd=REPO, env=env, check=True, capture_output=True, timeout=120
    )


def post_json(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"{path} answered {response.status}: {payload}")
        return payload
    finally:
        connection.close()


def wrk_command(url: str, *, threads: int, connections: int, seconds: int, extra: list[str]) -> list[str]:
    return [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url]


def wrk(url: str, *, threads: int, connections: int, seconds: int, extra: list[str] | None = None) -> dict:
    command = wrk_command(url, threads=threads, connections=connections, seconds=seconds, extra=extra or [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(result.stdout)


def login_script(directory: Path) -> Path:
    script = directory / "login.lua"
    body = json.dumps({"email": EMAIL, "password": PASSWORD}).replace('"', '\\"')
    script.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n')
    return script


def summary(name: str, result: dict) -> dict[str, Any]:
    return {
        "scenario": name,
        "requests_per_second": result["requests_per_second"],
        "p50_ms": result["latency_ms"]["50"],
        "p99_ms": result["latency_ms"]["99"],
        "non_2xx": result["non_2xx"],
        "errors": sum(result["errors"].values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32, help="connections for GET /auth/me")
    args = parser.parse_args(argv)

    database_url = asyncio.run(fresh_database())
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "BCRYPT_ROUNDS": "12",
        "RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": "40",
        "SECRET_KEY": "bench-secret-key-bench-secret-key-0123456789",
    }
    migrate({**os.environ, **env})
    variant = Variant("auth-pg", "backend.app:create_app()", env, "our app on PostgreSQL + Redis, bcrypt 12")
    results: list[dict[str, Any]] = []
    load = loadavg()
    with (
        Server(variant, "development", sys.executable.replace("python", "hypercorn")) as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        base = f"http://{HOST}:{server.port}"
        tokens = post_json(
            server.port, "/api/v1/auth/register", {"email": EMAIL, "password": PASSWORD, "name": "Bench"}
        )
        bearer = ["-H", f"Authorization: Bearer {tokens['access_token']}"]

        idle = wrk(f"{base}/health", threads=1, connections=1, seconds=args.duration)
        results.append(summary("GET /health, 1 client, idle", idle))

        health = wrk(f"{base}/health", threads=2, connections=args.connections, seconds=args.duration)
        results.append(summary(f"GET /health, {args.connections} connections", health))

        me = wrk(f"{base}/api/v1/auth/me", threads=2, connections=args.connections, seconds=args.duration, extra=bearer)
        results.append(summary(f"GET /auth/me, {args.connections} connections", me))

        script = ["-s", str(login_script(Path(scratch)))]
        logins = wrk(f"{base}/api/v1/auth/login", threads=2, connections=8, seconds=args.duration, extra=script)
        results.append(summary("POST /auth/login (bcrypt 12), 8 connections", logins))

        # /health from one client while 8 connections keep bcrypt busy on every core.
        background = subprocess.Popen(
            wrk_command(f"{base}/api/v1/auth/login", threads=1, connections=8, seconds=args.duration + 4, extra=script),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            subprocess.run(["sleep", "2"], check=True)
            loaded = wrk(f"{base}/health", threads=1, connections=1, seconds=args.duration)
        finally:
            background.wait(timeout=args.duration + 60)
        results.append(summary("GET /health, 1 client, during logins", loaded))
        rss_kib = read_status_kib(server.worker or 0, "VmRSS")

    ratio = round(loaded["latency_ms"]["99"] / max(idle["latency_ms"]["99"], 0.001), 2)
    me_vs_health = round(me["requests_per_second"] / health["requests_per_second"], 2)
    print(f"\n{'scenario':48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for row in results:
        print(
            f"{row['scenario']:48} {row['requests_per_second']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['non_2xx']:>8}"
        )
    print(
        f"\n/health p99 under login load / idle: {ratio}x (goal: at most 3x); /auth/me throughput / /health: "
        f"{me_vs_health} (goal: at least 0.6); worker RSS {rss_kib} KiB; load average at start {load}"
    )

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"auth-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "auth",
                "timestamp": stamp,
                "results": results,
                "health_p99_ratio_under_login_load": ratio,
                "me_vs_health": me_vs_health,
                "worker_rss_kib": rss_kib,
                "loadavg_at_start": load,
            },
            indent=2,
        )
    )
    print(f"results: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
