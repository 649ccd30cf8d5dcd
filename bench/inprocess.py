"""What one request costs the worker, measured in-process: `python bench/inprocess.py [route ...]`.

The app is built as production builds it (ENVIRONMENT=production, PostgreSQL, Redis, uvloop, `gc.freeze()`
after start-up) and driven through its ASGI callable, with no server and no sockets, so the figures are the
app's own work per request: Hypercorn's share is the same before and after any change to the app. For each
route, after a warm-up:

- **CPU µs** per request (`time.process_time()` over `--requests`; PostgreSQL's work is in another process);
- **Python calls** per request (cProfile over the same number, a deterministic count: no C or Rust inside);
- with `--callgrind`, **instructions** per request: the measuring part re-runs under valgrind's callgrind
  with instrumentation switched on around each route's requests only (a 20-line C helper compiled on the
  fly and loaded with ctypes). Instruction counts do not depend on how busy the machine is: on a shared
  machine they are the figure to compare. Needs gcc and valgrind's headers (Debian's `valgrind`).

Every run but `--reuse` drops and re-creates the PostgreSQL database `codementor_inprocess` and flushes
Redis database 6; nothing else is touched. See bench/README.md.

    .venv/bin/python bench/inprocess.py                        # every route: CPU µs and Python calls
    .venv/bin/python bench/inprocess.py me daily --callgrind   # and instructions per request
    .venv/bin/python bench/inprocess.py progress --profile progress   # cProfile's top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import json
import os
import pstats
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import fresh_database, migrate_and_seed

DATABASE_NAME = "codementor_inprocess"
DATABASE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/6"
PASSWORD = "Bench-password-2026!"  # noqa: S105 (throw-away accounts on a throw-away database)
STATE = Path(tempfile.gettempdir()) / "codementor-inprocess-state.json"  # tokens and ids, for --reuse

# name → (path, which seeded user asks). "long" is the student with 10,000 submissions and messages.
ROUTES: dict[str, tuple[str, str]] = {
    "health": ("/health", ""),
    "me": ("/api/v1/auth/me", "first"),
    "progress": ("/api/v1/users/me/progress", "first"),
    "exercises": ("/api/v1/exercises?limit=20", "first"),
    "daily": ("/api/v1/exercises/daily", "first"),
    "history": ("/api/v1/exercises/history?limit=10", "first"),
    "me-short": ("/api/v1/auth/me", "short"),
    "me-long": ("/api/v1/auth/me", "long"),
    "progress-short": ("/api/v1/users/me/progress", "short"),
    "progress-long": ("/api/v1/users/me/progress", "long"),
    "daily-short": ("/api/v1/exercises/daily", "short"),
    "daily-long": ("/api/v1/exercises/daily", "long"),
    "history-short": ("/api/v1/exercises/history?limit=10", "short"),
    "history-long": ("/api/v1/exercises/history?limit=10", "long"),
    "submissions-short": ("/api/v1/exercises/{exercise_id}/submissions?limit=10", "short"),
    "submissions-long": ("/api/v1/exercises/{exercise_id}/submissions?limit=10", "long"),
    "conversations-short": ("/api/v1/chat/conversations?limit=10", "short"),
    "conversations-long": ("/api/v1/chat/conversations?limit=10", "long"),
    "messages-short": ("/api/v1/chat/conversations/{conversation_id}/messages?limit=10", "short"),
    "messages-long": ("/api/v1/chat/conversations/{conversation_id}/messages?limit=10", "long"),
}
DEFAULT_ROUTES = ("health", "me", "progress", "exercises", "daily")

CALLGRIND_HELPER = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""


def environment() -> dict[str, str]:
    """bench/run.py's production settings (ENVIRONMENT=production, JSON logs at WARNING, rate limits off)."""
    from cryptography.fernet import Fernet

    return {
        "ENVIRONMENT": "production",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(48),
        "TOKEN_ENCRYPTION_KEY": os.environ.get("BENCH_TOKEN_KEY") or Fernet.generate_key().decode(),
        "FRONTEND_URL": "https://codementor.bench.invalid",
        "BACKEND_URL": "https://api.codementor.bench.invalid",
        "CORS_ORIGINS": "https://codementor.bench.invalid",
        "METRICS_TOKEN": "bench-metrics-token",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "BCRYPT_ROUNDS": "12",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "RATE_LIMITS_ENABLED": "false",
        "ACCESS_TOKEN_TTL_SECONDS": "14400",
        "EMAIL_BACKEND": "memory",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-fake-mini",
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",  # never called by a read
        "LLM_API_KEY": "bench-key",
    }


# ------------------------------------------------------------------------------------------- ASGI


class Client:
    """Requests straight into the app's ASGI callable: what a server would hand it, minus the server."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, target: str, token: str = "", body: Any = None) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        headers = [(b"host", b"api.codementor.bench.invalid"), (b"user-agent", b"bench")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "extensions": {},
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def json(self, method: str, target: str, token: str = "", body: Any = None) -> Any:
        status, content = await self.request(method, target, token, body)
        if status >= 400:
            raise RuntimeError(f"{method} {target}: {status} {content[:300]!r}")
        return json.loads(content) if content else None


# ---------------------------------------------------------------------------------------- seeding


async def seed_users(app: Any, client: Client) -> dict[str, Any]:
    """Three onboarded students with a daily assignment and a conversation: `first` with five completed
    exercises (so progress has skills and achievements to show), `short` and `long` with 10 and 10,000
    submissions and messages (bench/history.py)."""
    from datetime import UTC, datetime, timedelta

    from backend.models import User
    from backend.services import progress as progress_service
    from bench import history

    stamp = secrets.token_hex(3)
    users: dict[str, Any] = {}
    for role in ("first", "short", "long"):
        email = f"inprocess-{role}-{stamp}@example.com"
        body = {"email": email, "password": PASSWORD, "name": f"Bench {role}"}
        registered = await client.json("POST", "/api/v1/auth/register", "", body)
        users[role] = {"email": email, "token": registered["access_token"]}
    token = users["first"]["token"]
    questions = await client.json("GET", "/api/v1/users/onboarding/questions", token)
    answers = {
        q["field"]: (q["options"][0]["value"] if q["options"] else "Get a job as a developer")
        for q in questions["questions"]
    }
    for user in users.values():
        await client.json("POST", "/api/v1/users/onboarding", user["token"], answers)
        await client.json("GET", "/api/v1/exercises/daily", user["token"])
        user["conversation_id"] = (
            await client.json("POST", "/api/v1/chat/conversations", user["token"], {"title": "Bench"})
        )["id"]
    page = await client.json("GET", "/api/v1/exercises?limit=100&language=python", token)
    first_id = (await client.json("GET", "/api/v1/auth/me", token))["id"]
    at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=4)
    async with app.extensions["db_session_factory"]() as session:
        for number, item in enumerate(page["items"][:5]):
            user = await session.get_one(User, first_id)
            await progress_service.record_completion(
                session,
                user,
                completion_key=f"bench-{number}",
                exercise_id=item["id"],
                topics=item["topics"],
                difficulty=item["difficulty"],
                grade=80.0 + number * 4,
                hints_used=number % 2,
                time_spent_seconds=300,
                at=at + timedelta(days=number),
            )
        await session.commit()
    plain_url = DATABASE_URL.replace("+asyncpg", "")
    for role, size in (("short", history.SIZES[0]), ("long", history.SIZES[-1])):
        user = users[role]
        user["exercise_id"] = await history._grow(plain_url, user["email"], user["conversation_id"], size)
    return users


# ------------------------------------------------------------------------------------------ measuring


def callgrind_markers() -> tuple[Callable[[], None], Callable[[str], None]] | None:
    """cg_start/cg_stop when running under callgrind (the parent compiled the helper), else None."""
    library = os.environ.get("BENCH_CALLGRIND_HELPER")
    if not library:
        return None
    helper = ctypes.CDLL(library)
    helper.cg_stop.argtypes = [ctypes.c_char_p]
    return helper.cg_start, lambda name: helper.cg_stop(name.encode())


async def measure(
    client: Client, users: dict[str, Any], names: list[str], requests: int, warmup: int, profile: set[str]
) -> dict[str, dict[str, Any]]:
    import gc

    markers = callgrind_markers()
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        template, who = ROUTES[name]
        user = users.get(who, {})
        path = template.format(**{key: user.get(key) for key in ("exercise_id", "conversation_id")})
        token = user.get("token", "")
        for _ in range(warmup):
            status, body = await client.request("GET", path, token)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        gc.collect()
        result: dict[str, Any] = {"path": path}
        if markers is not None:
            start, stop = markers
            start()
            for _ in range(requests):
                await client.request("GET", path, token)
            stop(name)
        else:
            began_cpu, began = time.process_time(), time.perf_counter()
            for _ in range(requests):
                await client.request("GET", path, token)
            result["cpu_us"] = round((time.process_time() - began_cpu) / requests * 1e6, 1)
            result["wall_us"] = round((time.perf_counter() - began) / requests * 1e6, 1)
            profiler = cProfile.Profile(time.process_time)  # CPU time: waits for PostgreSQL excluded
            profiler.enable()
            for _ in range(requests):
                await client.request("GET", path, token)
            profiler.disable()
            stats = pstats.Stats(profiler)
            result["calls"] = round(stats.total_calls / requests)  # type: ignore[attr-defined]
            if name in profile:
                out = Path(tempfile.gettempdir()) / f"inprocess-{name}.prof"
                stats.dump_stats(out)
                result["profile"] = str(out)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
        results[name] = result
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import uvloop  # noqa: F401  (the server's loop; asyncio.run below is given it by the caller)

    from backend.app import create_app

    if not args.reuse:
        await fresh_database(DATABASE_NAME, REDIS_URL)
        migrate_and_seed(os.environ.copy())
    app = create_app()
    await app.startup()
    try:
        client = Client(app)
        if args.reuse:
            users = json.loads(STATE.read_text())
        else:
            users = await seed_users(app, client)
            STATE.write_text(json.dumps(users))
        return await measure(client, users, args.routes, args.requests, args.warmup, set(args.profile))
    finally:
        await app.shutdown()


def callgrind(args: argparse.Namespace) -> dict[str, Any]:
    """Run the measuring part again under callgrind; instructions per request from its dumps."""
    scratch = Path(tempfile.mkdtemp(prefix="inprocess-callgrind-"))
    source, library = scratch / "cg.c", scratch / "libcg.so"
    source.write_text(CALLGRIND_HELPER)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={scratch}/callgrind.out",
        sys.executable,
        __file__,
        *args.routes,
        "--reuse",
        "--requests",
        str(args.cg_requests),
        "--warmup",
        str(args.warmup),
    ]
    env = os.environ | {"BENCH_CALLGRIND_HELPER": str(library), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind run failed:\n{done.stderr[-3000:]}")
    results = {}
    for dump in scratch.glob("callgrind.out*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.MULTILINE)
        totals = re.search(r"^totals: (\d+)", text, re.MULTILINE)
        if trigger and totals:
            results[trigger.group(1).strip()] = {
                "instructions": round(int(totals.group(1)) / args.cg_requests),
                "dump": str(dump),
            }
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    every = " ".join(ROUTES)
    parser.add_argument("routes", nargs="*", help=f"routes (default: {' '.join(DEFAULT_ROUTES)}; all: {every})")
    parser.add_argument("--requests", type=int, default=500, help="requests measured per route (500)")
    parser.add_argument("--warmup", type=int, default=100, help="requests first, unmeasured (100)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and users of the last run")
    parser.add_argument("--profile", default="", help="comma-separated routes: print cProfile's top functions")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per request (valgrind)")
    parser.add_argument("--cg-requests", type=int, default=100, help="requests per route under callgrind (100)")
    parser.add_argument("--rounds", type=int, default=1, help="measure every route this many times (medians)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    args.routes = args.routes or list(DEFAULT_ROUTES)
    args.profile = [name for name in args.profile.split(",") if name]
    unknown = [name for name in args.routes if name not in ROUTES]
    if unknown:
        parser.error(f"unknown routes: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    import statistics

    import uvloop

    args = parse_args(argv)
    if not os.environ.get("BENCH_CALLGRIND_HELPER"):
        env = environment()
        if not args.reuse:  # the tokens of --reuse were signed with the key of the run that made them
            STATE.with_suffix(".env").write_text(json.dumps(env))
        else:
            env = json.loads(STATE.with_suffix(".env").read_text())
        os.environ.update(env)
    rounds = [uvloop.run(run(args))]
    args.reuse = True
    rounds += [uvloop.run(run(args)) for _ in range(args.rounds - 1)]
    results: dict[str, dict[str, Any]] = {}
    for name in args.routes:
        measured = [r[name] for r in rounds]
        results[name] = dict(measured[0])
        for key in ("cpu_us", "wall_us", "calls"):
            if key in measured[0]:
                results[name][key] = statistics.median(m[key] for m in measured)
                results[name][f"{key}_all"] = [m[key] for m in measured]
    if args.callgrind and not os.environ.get("BENCH_CALLGRIND_HELPER"):
        for name, counted in callgrind(args).items():
            results.setdefault(name, {}).update(counted)
    if args.json or os.environ.get("BENCH_CALLGRIND_HELPER"):
        print(json.dumps(results))
        return 0
    print(f"{'route':<22} {'CPU µs/req':>11} {'Python calls':>13} {'instructions':>14}   path")
    for name, result in results.items():
        cpu = result.get("cpu_us")
        ins = result.get("instructions")
        print(
            f"{name:<22} {cpu if cpu is not None else '-':>11} {result.get('calls', '-'):>13}"
            f" {f'{ins:,}' if ins else '-':>14}   {result.get('path', '')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
