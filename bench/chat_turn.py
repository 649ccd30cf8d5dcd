"""One streamed chat turn, measured from inside the server: `python bench/chat_turn.py [--turns N]`.

The app runs in this process under Hypercorn (PostgreSQL + Redis, rate limits on, the OpenAI provider
against `bench.fake_llm` in a process of its own); `bench.loadgen`'s `chat_ttfb` sends the messages one
by one from another process. For every turn it records, at the drivers: the PostgreSQL round trips
(statements, prepares, BEGIN/COMMIT/ROLLBACK) and the Redis round trips made before the LLM request
left, and the server-side times from the request's arrival to the LLM request and to the first
`delta` frame handed to the server. Over all turns: this process's CPU time and, with `--profile`,
its Python function calls (cProfile) per turn, or per turn up to its LLM request. See bench/README.md.

Drops and re-creates the database `codementor_chat_turn`; flushes the Redis database of `--redis-url`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import HOST, REPO, free_port, fresh_database, start_fake_llm

DATABASE_NAME = "codementor_chat_turn"
CHAT_PATH_MARK = "/messages"
PASSWORD = "Bench-password-2026!"  # noqa: S105 (a throw-away account on a throw-away database)


@dataclass
class Turn:
    arrived: float
    db: int = 0
    redis: int = 0
    llm_at: float | None = None
    db_before_llm: int | None = None
    redis_before_llm: int | None = None
    first_delta_at: float | None = None
    marks: dict[str, float] = field(default_factory=dict)  # ms after arrival: the first time each happened


@dataclass
class Probe:
    """Counts round trips at the drivers and timestamps the turn; one turn at a time. With `before_llm`,
    a profiler runs from each turn's arrival to its LLM request (the Python calls of that stretch)."""

    turns: list[Turn] = field(default_factory=list)
    current: Turn | None = None
    before_llm: cProfile.Profile | None = None
    trace: list[str] = field(default_factory=list)  # the last turn's round trips, in order

    def start(self) -> Turn:
        self.current = Turn(arrived=time.perf_counter())
        self.turns.append(self.current)
        self.trace = []
        if self.before_llm is not None:
            self.before_llm.enable()
        return self.current

    def round_trip(self, kind: str, what: str) -> None:
        if self.current is not None:
            setattr(self.current, kind, getattr(self.current, kind) + 1)
            at = 1000 * (time.perf_counter() - self.current.arrived)
            self.trace.append(f"{at:7.2f} ms {'after' if self.current.llm_at else 'before'} LLM: {kind} {what}")

    def mark(self, what: str) -> None:
        turn = self.current
        if turn is not None and what not in turn.marks:
            turn.marks[what] = 1000 * (time.perf_counter() - turn.arrived)
            self.trace.append(f"{turn.marks[what]:7.2f} ms {what}")

    def llm_request(self) -> None:
        turn = self.current
        if turn is not None and turn.llm_at is None:
            turn.llm_at = time.perf_counter()
            turn.db_before_llm, turn.redis_before_llm = turn.db, turn.redis
            self.trace.append(f"{1000 * (turn.llm_at - turn.arrived):7.2f} ms the LLM request leaves")
            if self.before_llm is not None:
                self.before_llm.disable()


PROBE = Probe()


def counted(kind: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        what = method.__qualname__
        if len(args) > 1 and isinstance(args[1], (str, bytes)):
            what += f" {args[1][:70]!r}"
        PROBE.round_trip(kind, what)
        return await method(*args, **kwargs)

    return wrapper


def instrument() -> None:
    """Every asyncpg call that waits for the server (a transaction's BEGIN and COMMIT go through `execute`),
    every Redis command sent, the LLM's HTTP request."""
    import asyncpg.connection
    import asyncpg.prepared_stmt
    import httpx
    import redis.asyncio.connection

    for cls, names in (
        (asyncpg.connection.Connection, ("prepare", "execute", "fetch", "fetchrow", "fetchval")),
        (asyncpg.prepared_stmt.PreparedStatement, ("fetch", "fetchrow", "fetchval")),
    ):
        for name in names:
            setattr(cls, name, counted("db", getattr(cls, name)))
    connection = redis.asyncio.connection.AbstractConnection
    connection.send_packed_command = counted("redis", connection.send_packed_command)  # type: ignore[method-assign]
    send = httpx.AsyncClient.send

    async def send_llm(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            PROBE.llm_request()
            response = await send(self, request, **kwargs)
            PROBE.mark("the LLM's response headers arrive")
            return response
        return await send(self, request, **kwargs)

    httpx.AsyncClient.send = send_llm  # type: ignore[method-assign]
    from backend.services.chat import stream

    store_turn = stream.store_turn

    async def store_turn_marked(*args: Any, **kwargs: Any) -> Any:
        stored = await store_turn(*args, **kwargs)
        PROBE.mark("the message and the reply's row stored")
        return stored

    stream.store_turn = store_turn_marked  # type: ignore[assignment]
    aiter_bytes = httpx.Response.aiter_bytes

    async def aiter_llm_bytes(self: httpx.Response, chunk_size: int | None = None) -> Any:
        async for chunk in aiter_bytes(self, chunk_size):
            if self.request.url.path.endswith("/chat/completions") and b'"content": "Good' in chunk:
                PROBE.mark("the LLM's first text arrives")
            yield chunk

    httpx.Response.aiter_bytes = aiter_llm_bytes  # type: ignore[method-assign]


def watch(app: Any) -> Any:
    """ASGI around the app: a chat POST starts a turn; the first `delta` frame sent ends its clock."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or CHAT_PATH_MARK not in scope["path"]:
            await app(scope, receive, send)
            return
        turn = PROBE.start()

        async def send_watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                PROBE.mark("response headers sent")
            elif b"event: start" in message.get("body", b""):
                PROBE.mark("`start` frame sent")
            if turn.first_delta_at is None and b"event: delta" in message.get("body", b""):
                turn.first_delta_at = time.perf_counter()
                PROBE.mark("first `delta` frame sent")
            await send(message)

        await app(scope, receive, send_watched)

    return asgi


async def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """`bench.loadgen` in a process of its own, awaited without blocking the server in this one."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(json.dumps(spec).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode()[-3000:]}")
    return json.loads(out)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


async def measure(args: argparse.Namespace, llm: dict[str, str]) -> dict[str, Any]:
    import httpx
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from backend.middleware import rate_limit

    # The chat's limits, as many as the turns need: same keys, same round trips, no 429.
    rate_limit.RATE_LIMITS["chat"] = tuple(
        rate_limit.Limit(1_000_000, limit.period, limit.per) for limit in rate_limit.RATE_LIMITS["chat"]
    )
    from backend.app import create_app
    from backend.config import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="development",
        secret_key=secrets.token_urlsafe(48),
        database_url=args.database_url,
        redis_url=args.redis_url,
        log_level="WARNING",
        email_backend="memory",
        llm_provider="openai",
        llm_model="gpt-fake-mini",
        llm_base_url=llm["base_url"],
        llm_api_key=llm["api_key"],
    )
    app = create_app(settings)
    instrument()
    config = Config()
    port = free_port()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(watch(app), config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    base_url = f"http://{HOST}:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            for _ in range(100):
                try:
                    (await client.get("/health")).raise_for_status()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            email = f"turn-{secrets.token_hex(4)}@example.com"
            body = {"email": email, "password": PASSWORD, "name": "Bench Student"}
            response = await client.post("/api/v1/auth/register", json=body)
            response.raise_for_status()
            token = response.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            response = await client.post("/api/v1/chat/conversations", json={"title": "Bench"}, headers=headers)
            response.raise_for_status()
            conversation_id = response.json()["id"]
        spec = {
            "mode": "chat_ttfb",
            "base_url": base_url,
            "token": token,
            "conversation_id": conversation_id,
            "count": args.turns,
            "llm_base_url": llm["base_url"],
            "llm_api_key": llm["api_key"],
        }
        await loadgen(spec | {"count": 0, "direct": False})  # first turns import and connect: not measured
        # One profiler at a time (cProfile hooks the interpreter): the whole turn, or up to the LLM request.
        PROBE.before_llm = cProfile.Profile() if args.profile == "before-llm" else None
        profiler = cProfile.Profile() if args.profile == "turn" else None
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        ours = await loadgen(spec | {"direct": False})
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu
        PROBE.current = None
        direct = await loadgen(spec | {"ours": False})
    finally:
        stop.set()
        await server
    turns = [turn for turn in PROBE.turns[-(args.turns + 2) :] if turn.llm_at and turn.first_delta_at]
    measured = turns[2:]  # loadgen's two warm-ups
    result: dict[str, Any] = {
        "turns": len(measured),
        "db_round_trips_before_llm": median([t.db_before_llm for t in measured if t.db_before_llm is not None]),
        "redis_round_trips_before_llm": median(
            [t.redis_before_llm for t in measured if t.redis_before_llm is not None]
        ),
        "db_round_trips_per_turn": median([t.db for t in measured]),
        "server_ms_to_llm_request_p50": median([1000 * (t.llm_at - t.arrived) for t in measured if t.llm_at]),
        "server_ms_to_first_delta_p50": median(
            [1000 * (t.first_delta_at - t.arrived) for t in measured if t.first_delta_at]
        ),
        "client_first_delta_p50_ms": ours["ours"]["p50_ms"],
        "fake_alone_first_delta_p50_ms": direct["direct"]["p50_ms"],
        "cpu_us_per_turn": round(1e6 * cpu / (args.turns + 2)),
        "marks_ms_p50": {
            what: median([t.marks[what] for t in measured if what in t.marks])
            for what in sorted({what for t in measured for what in t.marks}, key=lambda w: measured[-1].marks.get(w, 0))
        },
    }
    if result["client_first_delta_p50_ms"] is not None and result["fake_alone_first_delta_p50_ms"] is not None:
        result["overhead_p50_ms"] = round(
            result["client_first_delta_p50_ms"] - result["fake_alone_first_delta_p50_ms"], 3
        )
    used = profiler or PROBE.before_llm
    if used is not None:
        stats = pstats.Stats(used)
        calls = round(stats.total_calls / (args.turns + 2))  # type: ignore[attr-defined]
        result["python_calls_per_turn" if profiler else "python_calls_before_llm"] = calls
        if args.profile_out:
            stats.dump_stats(args.profile_out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30, help="messages measured (after two warm-ups)")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="fake LLM seconds between chunks")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6", help="flushed first")
    parser.add_argument(
        "--profile", choices=("turn", "before-llm"), help="count Python calls per turn, or before its LLM request"
    )
    parser.add_argument("--profile-out", help="write cProfile's stats there (with --profile)")
    parser.add_argument("--trace", action="store_true", help="list the last turn's round trips (on stderr)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as `python -m backend serve` does")
    args = parser.parse_args()
    args.database_url = asyncio.run(fresh_database(DATABASE_NAME, args.redis_url))
    env = os.environ | {"DATABASE_URL": args.database_url}
    subprocess.run([sys.executable, "-m", "backend", "migrate"], cwd=REPO, env=env, check=True, capture_output=True)
    fake, llm = start_fake_llm("--chunk-delay", str(args.chunk_delay))
    try:
        if args.uvloop:
            import uvloop

            result = uvloop.run(measure(args, llm))
        else:
            result = asyncio.run(measure(args, llm))
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    if args.trace:
        print("\n".join(PROBE.trace), file=sys.stderr)
    print(json.dumps(result | {"loadavg": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
