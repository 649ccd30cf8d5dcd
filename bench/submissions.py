"""What the API itself spends on one graded submission (by hand, never in CI).

    .venv/bin/python bench/submissions.py                       # CPU ms, round trips, Python calls
    .venv/bin/python bench/submissions.py --tree /tmp/before    # the same against another checkout
    .venv/bin/python bench/submissions.py --profile sub.pstats  # cProfile of the measured submissions
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/submissions.py --callgrind

The app runs in this process on PostgreSQL + Redis with production settings (LLM_PROVIDER=openai
against `bench/fake_llm.py` as its own process, a sandbox runner of its own), driven through ASGI by
Quart's test client: no server, no sockets to the client, so what is counted is the app's own work per
`POST /exercises/{id}/submit` of `count-vowels` with its solution, rotating over `--users` students:

- **CPU ms**: this process's CPU time per submission (the app and the test client; the sandbox and the
  fake LLM are other processes);
- **round trips**: what reaches PostgreSQL, counted at the driver (asyncpg's BEGIN, COMMIT, ROLLBACK and
  each statement), with every statement listed once with its count (`--statements`);
- **Python calls**: cProfile's count per submission, steady on a shared machine;
- **instructions** (`--callgrind`): collection is switched on around the measured submissions only.

`--tree PATH` imports `backend` from another checkout (e.g. `git worktree add /tmp/before <commit>`), so
before and after run alternately from the same script. The database `codementor_bench_submit` is
dropped and re-created; Redis database 7 is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's bench helpers, whichever `--tree` is measured

from bench.harness import fresh_database, migrate_and_seed, start_fake_llm  # noqa: E402

DATABASE_NAME = "codementor_bench_submit"
REDIS_URL = "redis://127.0.0.1:6379/7"
SLUG = "count-vowels"
PASSWORD = "Bench-password-123"  # noqa: S105 (throwaway accounts of a local run)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout whose `backend` is measured")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="measured passes of --runs each (CPU per pass)")
    parser.add_argument("--failing", action="store_true", help="submit the starter (fails) instead of the solution")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of one more pass here")
    parser.add_argument("--statements", action="store_true", help="list every statement and its count")
    parser.add_argument("--callgrind", action="store_true", help="toggle callgrind around one more pass")
    return parser.parse_args()


ARGS = parse_args()
sys.path.insert(0, str(ARGS.tree.resolve()))


from backend.app import create_app  # noqa: E402
from backend.config import Settings  # noqa: E402
from backend.content.catalog import load_catalog  # noqa: E402
from backend.integrations.sandbox.process import RunnerProcess  # noqa: E402


class RoundTrips:
    """Everything sent to PostgreSQL through asyncpg's entry points (its transactions' BEGIN, COMMIT and
    ROLLBACK go through `Connection.execute`)."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: collections.Counter[str] = collections.Counter()

    def install(self) -> None:
        from asyncpg import connection, prepared_stmt

        def counting(cls: Any, name: str, label: Any) -> None:
            original = getattr(cls, name)

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                self.statements[label(args)] += 1
                return await original(*args, **kwargs)

            setattr(cls, name, wrapper)

        # SQLAlchemy's asyncpg adapter prepares (once per connection and statement) and then fetches; the
        # pool's pre-ping is a `fetchrow(";")`.
        def query(args: Any) -> str:
            return " ".join(str(args[1]).split())[:140]

        counting(prepared_stmt.PreparedStatement, "fetch", lambda args: " ".join(args[0].get_query().split())[:140])
        counting(connection.Connection, "prepare", lambda args: "PREPARE " + query(args))
        for name in ("execute", "executemany", "fetchrow", "fetch", "fetchval"):
            counting(connection.Connection, name, query)


def settings_for(database_url: str, llm: dict[str, str], sandbox_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "FRONTEND_URL": "https://codementor.bench.invalid",
        "BACKEND_URL": "https://api.codementor.bench.invalid",
        "CORS_ORIGINS": "https://codementor.bench.invalid",
        "METRICS_TOKEN": "bench-metrics-token",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "BCRYPT_ROUNDS": "12",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "RATE_LIMITS_ENABLED": "false",
        "ACCESS_TOKEN_TTL_SECONDS": "14400",
        "EMAIL_BACKEND": "memory",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-fake-mini",
        "LLM_BASE_URL": llm["base_url"],
        "LLM_API_KEY": llm["api_key"],
        "SANDBOX_URL": sandbox_url,
    }


def callgrind(switch: str) -> None:
    tool = shutil.which("callgrind_control")
    if tool:
        subprocess.run([tool, "--instr=" + switch, str(os.getpid())], capture_output=True, check=False)


async def measure(env: dict[str, str]) -> None:
    os.environ.update(env)
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    spec = next(spec for spec in load_catalog() if spec.slug == SLUG)
    code = spec.starter_code if ARGS.failing else spec.solution
    async with app.test_app() as test_app:
        client = test_app.test_client()
        tokens = []
        stamp = secrets.token_hex(3)
        for number in range(ARGS.users):
            body = {"email": f"s{number}-{stamp}@example.com", "password": PASSWORD, "name": f"Student {number}"}
            response = await client.post("/api/v1/auth/register", json=body)
            assert response.status_code == 201, await response.get_data(as_text=True)
            tokens.append((await response.get_json())["access_token"])
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        page = await (await client.get("/api/v1/exercises?limit=100", headers=headers[0])).get_json()
        exercise_id = next(item["id"] for item in page["items"] if item["slug"] == SLUG)
        turn = iter(range(10**9))

        async def submit() -> float:
            started = time.perf_counter()
            response = await client.post(
                f"/api/v1/exercises/{exercise_id}/submit",
                json={"code": code},
                headers=headers[next(turn) % len(headers)],
            )
            assert response.status_code == 200, await response.get_data(as_text=True)
            body = await response.get_json()
            assert body["submission"]["status"] == ("failed" if ARGS.failing else "passed"), body
            return time.perf_counter() - started

        for _ in range(ARGS.warmup):
            await submit()
        trips = RoundTrips()
        trips.install()
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(ARGS.rounds):
            trips.count = 0
            trips.statements.clear()
            before = time.process_time()
            wall += [await submit() for _ in range(ARGS.runs)]
            cpu.append((time.process_time() - before) * 1000 / ARGS.runs)
        per_run = trips.count / ARGS.runs
        wall.sort()
        print(
            f"tree {ARGS.tree}: CPU ms per submission {', '.join(f'{value:.2f}' for value in cpu)}"
            f" (min {min(cpu):.2f}); round trips {per_run:.2f}; wall p50 {1000 * wall[len(wall) // 2]:.1f} ms",
            flush=True,
        )
        if ARGS.statements:
            for statement, count in sorted(trips.statements.items(), key=lambda item: -item[1]):
                print(f"  {count / ARGS.runs:5.2f}  {statement}")
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
        profiler.enable()
        for _ in range(ARGS.runs):
            await submit()
        profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"Python calls per submission: {stats.total_calls / ARGS.runs:.0f}", flush=True)  # type: ignore[attr-defined]
        if ARGS.profile:
            stats.dump_stats(ARGS.profile)
        if ARGS.callgrind:
            callgrind("on")
            for _ in range(ARGS.runs):
                await submit()
            callgrind("off")
            print(f"callgrind: {ARGS.runs} submissions collected", flush=True)


async def main() -> None:
    database_url = await fresh_database(DATABASE_NAME, REDIS_URL)
    llm_process, llm = start_fake_llm("--chunk-delay", "0")
    runner = RunnerProcess(Settings(_env_file=None, sandbox_max_concurrency=2))  # type: ignore[call-arg]
    try:
        env = settings_for(database_url, llm, runner.start())
        migrate_and_seed({**os.environ, **env}, Path(ARGS.tree))
        await measure(env)
    finally:
        runner.stop()
        llm_process.terminate()
        llm_process.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
