"""Graded submissions per second through the whole API, and /health meanwhile (by hand, never in CI).

    .venv/bin/python bench/submissions.py                          # concurrency 8, 20 s, SQLite
    .venv/bin/python bench/submissions.py --concurrency 8 --seconds 30 --database-url postgresql+asyncpg://...

Starts `python -m backend` (migrate, seed, serve: Hypercorn, one worker) on a free port and a throw-away
SQLite file with rate limits off, registers one student per slot, then keeps
`--concurrency` submissions of a small catalog exercise in flight while another task asks `/health`
every 50 ms. Prints submissions/s, p50/p99 of a submission, the status mix, and /health p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.content.catalog import load_catalog

REPO = Path(__file__).resolve().parent.parent
EXERCISE_SLUG = "count-vowels"
PASSWORD = "Bench-password-123!"  # noqa: S105 (throw-away accounts on a throw-away database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("server did not become healthy")


async def student(client: httpx.AsyncClient, number: int) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": f"bench{number}@example.com", "password": PASSWORD, "name": f"Bench {number}"},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def run(args: argparse.Namespace, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        headers = [await student(client, n) for n in range(args.concurrency)]
        page = (await client.get("/api/v1/exercises?limit=100", headers=headers[0])).json()
        exercise_id = next(item["id"] for item in page["items"] if item["slug"] == EXERCISE_SLUG)
        url = f"/api/v1/exercises/{exercise_id}/submit"
        code = next(spec.solution for spec in load_catalog() if spec.slug == EXERCISE_SLUG)
        await client.post(url, json={"code": code}, headers=headers[0])  # measures the reference once

        latencies: list[float] = []
        statuses: dict[str, int] = {}
        health: list[float] = []
        deadline = time.perf_counter() + args.seconds
        rotation = itertools.cycle(headers)

        async def submitter() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(url, json={"code": code}, headers=next(rotation))
                latencies.append((time.perf_counter() - started) * 1000)
                key = (
                    response.json()["submission"]["status"]
                    if response.status_code == 200
                    else str(response.status_code)
                )
                statuses[key] = statuses.get(key, 0) + 1

        async def prober() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await client.get("/health")
                health.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.05)

        began = time.perf_counter()
        await asyncio.gather(prober(), *(submitter() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began

    print(f"concurrency {args.concurrency}, {elapsed:.1f} s, {len(latencies)} submissions, statuses {statuses}")
    print(f"submissions/s {len(latencies) / elapsed:.1f}")
    print(
        f"submit p50 {statistics.median(latencies):.0f} ms  p99 {percentile(latencies, 0.99):.0f} ms  "
        f"max {max(latencies):.0f} ms"
    )
    print(
        f"/health p50 {statistics.median(health):.1f} ms  p99 {percentile(health, 0.99):.1f} ms  ({len(health)} probes)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    tmpdir = Path(tempfile.mkdtemp(prefix="bench-submissions-"))
    port = free_port()
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="development",
        LOG_LEVEL="WARNING",
        DATABASE_URL=args.database_url or f"sqlite+aiosqlite:///{tmpdir / 'bench.db'}",
        PORT=str(port),
        HOST="127.0.0.1",
        WORKERS="1",
        RATE_LIMITS_ENABLED="false",  # the submit limit (30/min per user) would measure itself
    )
    with (tmpdir / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend"], cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        asyncio.run(_with_server(args, f"http://127.0.0.1:{port}", proc))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    return 0


async def _with_server(args: argparse.Namespace, base_url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        await wait_healthy(client, proc)
    await run(args, base_url)


if __name__ == "__main__":
    sys.exit(main())
