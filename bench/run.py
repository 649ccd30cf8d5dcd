"""The benchmark harness: `python bench/run.py [scenario ...]` (by hand, never in CI).

Starts the server as production does (`python -m backend serve`: Hypercorn with uvloop, 1 and 2
workers; uvicorn for comparison) on PostgreSQL and Redis with ENVIRONMENT=production, seeds users and
data through the API, drives load from separate processes (wrk; bench/loadgen.py where a scenario needs
logic) and prints scenario × server × req/s × p50 × p99 × errors × server RSS, each throughput also as
a ratio to a bare Quart app with the same `GET /health` on the same server, measured in the same
invocation. Results: bench/results/run-<UTC timestamp>.json. See bench/README.md.

    .venv/bin/python bench/run.py                      # everything, 10-15 minutes
    .venv/bin/python bench/run.py --quick              # everything, short, about 2 minutes
    .venv/bin/python bench/run.py me progress --servers hypercorn-1 --profile me
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import history
from bench.harness import (
    HOST,
    REPO,
    RESULTS_DIR,
    Server,
    free_port,
    fresh_database,
    hotspots,
    loadavg,
    machine,
    migrate_and_seed,
    py_spy_record,
    run_wrk,
    start_fake_llm,
    venv_tool,
    versions,
    wrk_command,
    wrk_lua,
)

DATABASE_NAME = "codementor_bench"  # created afresh by every run; never the tests' database
REDIS_URL = "redis://127.0.0.1:6379/6"  # flushed by every run
PASSWORD = "Bench-password-2026!"  # noqa: S105 (throw-away accounts on a throw-away database)
SUBMIT_SLUG = "count-vowels"  # a small catalog exercise with a handful of tests
LONG_MARKER = "[long reply]"  # bench/fake_llm.py answers it with a stream held open for --hold-seconds

READ_PATHS = {
    "me": "/api/v1/auth/me",
    "progress": "/api/v1/users/me/progress",
    "exercises": "/api/v1/exercises?limit=20",
    "daily": "/api/v1/exercises/daily",
}
SCENARIOS = (
    "health",
    "me",
    "progress",
    "exercises",
    "daily",
    "login",
    "submit",
    "loop",
    "chat",
    "session",
    "history",
)
SCENARIO_HELP = {
    "health": "GET /health, our app and bare Quart",
    "me": "GET /api/v1/auth/me with a bearer token",
    "progress": "GET /api/v1/users/me/progress",
    "exercises": "GET /api/v1/exercises?limit=20",
    "daily": "GET /api/v1/exercises/daily (an assignment that exists)",
    "login": "POST /api/v1/auth/login, bcrypt cost 12",
    "submit": "POST /api/v1/exercises/{id}/submit, a small exercise graded in the sandbox",
    "loop": "GET /health p99 from one client, idle and while logins and submissions saturate the CPU",
    "chat": "streamed chat: time to first delta vs the fake LLM alone, then N streams held open at once",
    "session": "students (login, daily, hint, submit, chat) at rising concurrency until p99 > 1 s",
    "history": "every read for a student with 10 and with 10,000 submissions and messages (bench/history.py)",
}


@dataclass(frozen=True)
class ServerKind:
    name: str
    workers: int
    runner: str  # "hypercorn" (our `python -m backend serve`) or "uvicorn"

    def command(self, bare: bool, port: int) -> list[str]:
        if self.runner == "hypercorn":  # both read HOST, PORT and WORKERS from the environment
            return [sys.executable, "-m", "bench.bare_app" if bare else "backend", *([] if bare else ["serve"])]
        uvicorn = venv_tool("uvicorn")
        if uvicorn is None:
            sys.exit("error: uvicorn is not installed: pip install -r bench/requirements.txt")
        app = "bench.bare_app:create_app" if bare else "backend.app:create_app"
        return [
            uvicorn,
            "--factory",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(self.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--backlog",
            "2048",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "20",
        ]


SERVER_KINDS = {
    kind.name: kind
    for kind in (
        ServerKind("hypercorn-1", 1, "hypercorn"),
        ServerKind("hypercorn-2", 2, "hypercorn"),
        ServerKind("uvicorn-1", 1, "uvicorn"),
        ServerKind("uvicorn-2", 2, "uvicorn"),
    )
}


@dataclass
class Row:
    scenario: str
    server: str
    requests_per_second: float | None
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    rss_mib: float | None
    ratio_to_bare: float | None = None
    cpu_us: int | None = None  # the server's CPU time per request (all its workers), in microseconds
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Seed:
    """What the seeding made, through the API, shared by every server (one database)."""

    users: list[dict[str, Any]] = field(default_factory=list)  # email, password, token, conversation_id
    exercise_ids: list[int] = field(default_factory=list)
    solutions: dict[str, str] = field(default_factory=dict)
    submit_exercise_id: int = 0
    stream_conversations: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Context:
    args: argparse.Namespace
    kind: ServerKind
    server: Server
    bare: Server
    seed: Seed
    scratch: Path
    llm: dict[str, str]
    bare_rps: float | None = None

    @property
    def url(self) -> str:
        return self.server.base_url

    def rss_mib(self) -> float | None:
        rss = self.server.rss_kib()
        return round(rss / 1024, 1) if rss else None


# ---------------------------------------------------------------------------------- environment


def server_env(database_url: str, llm: dict[str, str], kind: ServerKind, port: int) -> dict[str, str]:
    """ENVIRONMENT=production with its required settings; logs JSON at WARNING; limits that would
    measure themselves (rate limits) off. See bench/README.md for each departure from production."""
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        ENVIRONMENT="production",
        SECRET_KEY=SECRET_KEY,
        TOKEN_ENCRYPTION_KEY=TOKEN_KEY,
        FRONTEND_URL="https://codementor.bench.invalid",
        # Production refuses http URLs and origins; nothing in a run follows these (no browser, no OAuth).
        BACKEND_URL="https://api.codementor.bench.invalid",
        CORS_ORIGINS="https://codementor.bench.invalid",
        METRICS_TOKEN="bench-metrics-token",  # noqa: S106 (a throwaway token of a local run)
        HOST=HOST,
        PORT=str(port),
        WORKERS=str(kind.workers),
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        BCRYPT_ROUNDS="12",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        RATE_LIMITS_ENABLED="false",
        # Seeded tokens outlive a full run; a token's lifetime costs nothing per request.
        ACCESS_TOKEN_TTL_SECONDS="14400",  # noqa: S106 (a lifetime, not a secret)
        EMAIL_BACKEND="memory",  # production refuses console (it logs links); a run sends no email
        LLM_PROVIDER="openai",
        LLM_MODEL="gpt-fake-mini",
        LLM_BASE_URL=llm["base_url"],
        LLM_API_KEY=llm["api_key"],
        PYTHONUNBUFFERED="1",
    )
    return env


SECRET_KEY = secrets.token_urlsafe(48)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


TOKEN_KEY = _fernet_key()


# ---------------------------------------------------------------------------------------- seeding


def seed_through_api(base_url: str, count: int, streams: int) -> Seed:
    """Users (onboarded), a daily assignment, a few graded submissions and conversations, via the API."""
    import httpx

    from backend.content.catalog import load_catalog

    seed = Seed(solutions={spec.slug: spec.solution for spec in load_catalog()})

    async def run() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            stamp = secrets.token_hex(3)

            async def register(number: int) -> dict[str, Any]:
                email = f"bench{number}-{stamp}@example.com"
                body = {"email": email, "password": PASSWORD, "name": f"Bench Student {number}"}
                response = await client.post("/api/v1/auth/register", json=body)
                response.raise_for_status()
                return {"email": email, "password": PASSWORD, "token": response.json()["access_token"]}

            seed.users = list(await asyncio.gather(*(register(n) for n in range(count))))
            questions = (await client.get("/api/v1/users/onboarding/questions", headers=auth(seed.users[0]))).json()
            answers = {
                q["field"]: (q["options"][0]["value"] if q["options"] else "Get a job as a developer")
                for q in questions["questions"]
            }

            async def prepare(user: dict[str, Any]) -> None:
                (await client.post("/api/v1/users/onboarding", json=answers, headers=auth(user))).raise_for_status()
                (await client.get("/api/v1/exercises/daily", headers=auth(user))).raise_for_status()
                response = await client.post("/api/v1/chat/conversations", json={"title": "Bench"}, headers=auth(user))
                response.raise_for_status()
                user["conversation_id"] = response.json()["id"]

            await asyncio.gather(*(prepare(user) for user in seed.users))
            page = (await client.get("/api/v1/exercises?limit=100", headers=auth(seed.users[0]))).json()
            by_slug = {item["slug"]: item["id"] for item in page["items"]}
            seed.exercise_ids = list(by_slug.values())
            seed.submit_exercise_id = by_slug[SUBMIT_SLUG]
            # The first student, whose progress is read, has some history: five graded exercises, a hint.
            first = seed.users[0]
            for slug in list(by_slug)[:5]:
                url = f"/api/v1/exercises/{by_slug[slug]}/submit"
                (await client.post(url, json={"code": seed.solutions[slug]}, headers=auth(first))).raise_for_status()
            url = f"/api/v1/exercises/{by_slug[list(by_slug)[5]]}/hint"
            (await client.post(url, json={}, headers=auth(first))).raise_for_status()

            async def conversation(number: int) -> tuple[int, str]:
                user = seed.users[number % len(seed.users)]
                response = await client.post("/api/v1/chat/conversations", json={}, headers=auth(user))
                response.raise_for_status()
                return response.json()["id"], user["token"]

            seed.stream_conversations = list(await asyncio.gather(*(conversation(n) for n in range(streams))))

    asyncio.run(run())
    return seed


def auth(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


# -------------------------------------------------------------------------------------- scenarios


def wrk_row(
    ctx: Context, scenario: str, path: str, connections: int, extra: list[str] | None = None, min_seconds: int = 1
) -> Row:
    args = ctx.args
    url = ctx.url + path
    if args.warmup:
        run_wrk(url, threads=args.threads, connections=connections, seconds=args.warmup, extra=extra or [])
    cpu_before = ctx.server.cpu_seconds()
    seconds = max(args.duration, min_seconds)
    result = run_wrk(url, threads=args.threads, connections=connections, seconds=seconds, extra=extra or [])
    row = row_from_wrk(ctx, scenario, result)
    row.details["connections"] = connections
    if result["requests"]:  # CPU time per request: steadier than req/s on a machine shared with others
        row.cpu_us = round(1e6 * (ctx.server.cpu_seconds() - cpu_before) / result["requests"])
    return row


def row_from_wrk(ctx: Context, scenario: str, result: dict[str, Any]) -> Row:
    return Row(
        scenario,
        ctx.kind.name,
        result["requests_per_second"],
        result["latency_ms"]["50"],
        result["latency_ms"]["99"],
        sum(result["errors"].values()) + result["non_2xx"],
        ctx.rss_mib(),
        details={"wrk": result["output"]},
    )


def bearer_args(ctx: Context, user: int = 0) -> list[str]:
    return ["-H", f"Authorization: Bearer {ctx.seed.users[user]['token']}"]


def login_script(ctx: Context) -> list[str]:
    user = ctx.seed.users[0]
    body = {"email": user["email"], "password": user["password"]}
    return ["-s", str(wrk_lua(ctx.scratch, "login", method="POST", body=body, headers={}))]


def submit_script(ctx: Context) -> list[str]:
    """Submissions from every seeded student in turn: the sandbox runs one submission per user at a time
    (fair queueing), so one account at concurrency 8 would measure a single slot."""
    body = {"code": ctx.seed.solutions[SUBMIT_SLUG]}
    script = wrk_lua(ctx.scratch, "submit", method="POST", body=body, headers={})
    tokens = ", ".join(json.dumps(user["token"]) for user in ctx.seed.users)
    rotation = (
        f"local tokens = {{{tokens}}}\nlocal turn = math.random(#tokens)\n"
        "request = function()\n  turn = turn % #tokens + 1\n"
        '  wrk.headers["Authorization"] = "Bearer " .. tokens[turn]\n  return wrk.format()\nend\n'
    )
    script.write_text(script.read_text() + rotation)
    return ["-s", str(script)]


def submit_path(ctx: Context) -> str:
    return f"/api/v1/exercises/{ctx.seed.submit_exercise_id}/submit"


def measure_bare(ctx: Context) -> Row:
    """The baseline: bare Quart's /health on the same kind of server, right before our scenarios."""
    saved, ctx.server = ctx.server, ctx.bare
    try:
        row = wrk_row(ctx, "health (bare Quart)", "/health", ctx.args.connections)
    finally:
        ctx.server = saved
    return row


def read_scenario(name: str) -> Callable[[Context], list[Row]]:
    def run(ctx: Context) -> list[Row]:
        return [wrk_row(ctx, name, READ_PATHS[name], ctx.args.connections, bearer_args(ctx))]

    return run


def scenario_login(ctx: Context) -> list[Row]:
    row = wrk_row(ctx, "login", "/api/v1/auth/login", ctx.args.login_connections, login_script(ctx), ctx.args.slow)
    row.note = f"bcrypt 12, {ctx.args.login_connections} connections"
    return [row]


def scenario_submit(ctx: Context) -> list[Row]:
    row = wrk_row(ctx, "submit", submit_path(ctx), ctx.args.submit_connections, submit_script(ctx), ctx.args.slow)
    row.note = f"graded runs/s at concurrency {ctx.args.submit_connections}"
    return [row]


def scenario_loop(ctx: Context) -> list[Row]:
    """/health from one connection, idle, then while logins and submissions keep every core busy."""
    seconds = ctx.args.duration
    idle = run_wrk(ctx.url + "/health", threads=1, connections=1, seconds=seconds)
    background = [
        subprocess.Popen(
            wrk_command(ctx.url + path, threads=1, connections=connections, seconds=seconds + 3, extra=script),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for path, connections, script in (
            ("/api/v1/auth/login", ctx.args.login_connections, login_script(ctx)),
            (submit_path(ctx), ctx.args.submit_connections, submit_script(ctx)),
        )
    ]
    try:
        time.sleep(2)
        loaded = run_wrk(ctx.url + "/health", threads=1, connections=1, seconds=seconds)
    finally:
        for proc in background:
            proc.wait(timeout=seconds + 60)
    ratio = loaded["latency_ms"]["99"] / max(idle["latency_ms"]["99"], 0.001)
    rows = [row_from_wrk(ctx, "loop: /health idle", idle), row_from_wrk(ctx, "loop: /health under load", loaded)]
    rows[1].note = f"p99 {ratio:.1f}x idle (goal <= 3x)"
    rows[1].details["p99_ratio_to_idle"] = round(ratio, 2)
    return rows


def loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=REPO,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"loadgen failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout)


class RSSSampler:
    """The server's peak RSS while something runs (sampled every 100 ms on a thread)."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak_kib, self._stop = server, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_kib = max(self.peak_kib, self.server.rss_kib() or 0)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def scenario_chat(ctx: Context) -> list[Row]:
    user = ctx.seed.users[0]
    spec = {
        "mode": "chat_ttfb",
        "base_url": ctx.url,
        "token": user["token"],
        "conversation_id": user["conversation_id"],
        "count": ctx.args.chat_messages,
        "llm_base_url": ctx.llm["base_url"],
        "llm_api_key": ctx.llm["api_key"],
    }
    # Through us first, alone, so the server's CPU time over it is the turns' (warm-ups included);
    # then the fake alone, while the server idles.
    cpu_before = ctx.server.cpu_seconds()
    ours = loadgen(spec | {"direct": False}, timeout=600)
    cpu_us = round(1e6 * (ctx.server.cpu_seconds() - cpu_before) / (ctx.args.chat_messages + 2))
    ttfb = loadgen(spec | {"ours": False}, timeout=600)
    ttfb["ours"], ttfb["failures"] = ours["ours"], ours["failures"]
    if ours["ours"]["p50_ms"] is not None and ttfb["direct"]["p50_ms"] is not None:
        ttfb["overhead_p50_ms"] = round(ours["ours"]["p50_ms"] - ttfb["direct"]["p50_ms"], 3)
    before = ctx.server.rss_kib() or 0
    with RSSSampler(ctx.server) as sampler:
        held = loadgen(
            {
                "mode": "streams",
                "base_url": ctx.url,
                "content": f"Explain recursion {LONG_MARKER}",
                # Opened evenly over two thirds of the hold: all are open together at the end of the ramp.
                "ramp_seconds": ctx.args.hold_seconds * 2 / 3,
                "conversations": ctx.seed.stream_conversations[: ctx.args.streams],
            },
            timeout=900,
        )
    ours = ttfb["ours"]
    rows = [
        Row(
            "chat: first delta",
            ctx.kind.name,
            None,
            ours["p50_ms"],
            ours["p99_ms"],
            ttfb["failures"],
            ctx.rss_mib(),
            cpu_us=cpu_us,
            note=(
                f"fake alone p50 {ttfb['direct']['p50_ms']:.1f} ms: overhead {ttfb['overhead_p50_ms']:.1f} ms "
                "(goal < 10)"
            ),
            details=ttfb,
        ),
        Row(
            f"chat: {held['streams']} streams held",
            ctx.kind.name,
            None,
            held["ttfb"]["p50_ms"],
            held["ttfb"]["p99_ms"],
            held["failed"],
            round(sampler.peak_kib / 1024, 1),
            note=(
                f"{held['completed']} completed, peak {held['peak_open']} open, {held['seconds']} s; "
                f"RSS {before / 1024:.0f} -> peak {sampler.peak_kib / 1024:.0f} MiB (goal < 1024)"
            ),
            details=held,
        ),
    ]
    return rows


def scenario_session(ctx: Context) -> list[Row]:
    users = ctx.seed.users[2:] or ctx.seed.users
    levels = [level for level in (1, 2, 4, 8, 16, 32, 64, 128) if level <= ctx.args.max_session_concurrency]
    with RSSSampler(ctx.server) as sampler:
        result = loadgen(
            {
                "mode": "session",
                "base_url": ctx.url,
                "users": [{k: u[k] for k in ("email", "password", "conversation_id")} for u in users],
                "exercise_ids": ctx.seed.exercise_ids,
                "solutions": ctx.seed.solutions,
                "levels": levels,
                "seconds": ctx.args.session_seconds,
                "p99_limit_ms": 1000,
            },
            timeout=60 + len(levels) * (ctx.args.session_seconds + 120),
        )
    rows = []
    for level in result["levels"]:
        rows.append(
            Row(
                f"session x{level['concurrency']}",
                ctx.kind.name,
                level["requests_per_second"],
                level["all"]["p50_ms"],
                level["all"]["p99_ms"],
                sum(level["errors"].values()),
                round(sampler.peak_kib / 1024, 1),
                note=f"{level['sessions_per_second']} sessions/s; step p99: "
                + ", ".join(f"{step} {data['p99_ms']:.0f}" for step, data in level["steps"].items()),
                details=level,
            )
        )
    rows[-1].note += f" | reached concurrency {result['reached_concurrency']} (p99 <= 1 s)"
    return rows


def scenario_history(ctx: Context) -> list[Row]:
    def read(scenario: str, path: str, user: dict[str, Any]) -> Row:
        return wrk_row(ctx, scenario, path, ctx.args.connections, ["-H", f"Authorization: Bearer {user['token']}"])

    return history.measure(ctx.args.database_url.replace("+asyncpg", ""), ctx.seed.users, read)


SCENARIO_RUNNERS: dict[str, Callable[[Context], list[Row]]] = {
    "health": lambda ctx: [wrk_row(ctx, "health", "/health", ctx.args.connections)],
    **{name: read_scenario(name) for name in READ_PATHS},
    "login": scenario_login,
    "submit": scenario_submit,
    "loop": scenario_loop,
    "chat": scenario_chat,
    "session": scenario_session,
    "history": scenario_history,
}


WRK_SCENARIOS = frozenset({"health", *READ_PATHS, "login", "submit", "history"})  # throughput: a ratio to bare Quart


def profile(ctx: Context, scenario: str, stamp: str) -> dict[str, Any]:
    """Run `scenario` once more, unmeasured, with py-spy sampling the (first) worker."""
    raw = RESULTS_DIR / f"profile-{scenario}-{ctx.kind.name}-{stamp}.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    bounded = scenario in WRK_SCENARIOS
    spy = py_spy_record(ctx.server.workers[0], ctx.args.duration + ctx.args.warmup + 2 if bounded else 3600, raw)
    if spy is None:
        return {}
    time.sleep(0.5)
    SCENARIO_RUNNERS[scenario](ctx)
    if not bounded:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
    _, err = spy.communicate(timeout=120)
    if not raw.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        return {}
    spots = hotspots(raw)
    print(f"\nprofile of {scenario} on {ctx.kind.name}: inclusive share of the worker's busy samples")
    for share, frame in spots:
        print(f"  {share:5.1f}%  {frame}")
    return {"raw": str(raw.relative_to(REPO)), "hotspots": spots}


# ------------------------------------------------------------------------------------------- main


def run_server_kind(
    args: argparse.Namespace, kind: ServerKind, database_url: str, llm: dict[str, str], seed: Seed | None, stamp: str
) -> tuple[list[Row], Seed, dict[str, Any]]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-run-"))
    port, bare_port = free_port(), free_port()
    server = Server(
        kind.name,
        kind.command(False, port),
        server_env(database_url, llm, kind, port),
        port,
        scratch / "server.log",
    )
    bare = Server(
        kind.name + "-bare",
        kind.command(True, bare_port),
        server_env(database_url, llm, kind, bare_port),
        bare_port,
        scratch / "bare.log",
    )
    rows: list[Row] = []
    profiles: dict[str, Any] = {}
    with server, bare:
        server.start(kind.workers)
        bare.start(kind.workers)
        if seed is None:
            print(f"  seeding {args.users} students through the API ...", flush=True)
            seed = seed_through_api(server.base_url, args.users, max(args.streams, 1))
        ctx = Context(args, kind, server, bare, seed, scratch, llm)
        baseline = measure_bare(ctx)
        baseline.rss_mib = round((bare.rss_kib() or 0) / 1024, 1) or None
        ctx.bare_rps = baseline.requests_per_second
        rows.append(baseline)
        print_row(baseline)
        for scenario in args.scenarios:
            for row in SCENARIO_RUNNERS[scenario](ctx):
                if scenario in WRK_SCENARIOS and row.requests_per_second and ctx.bare_rps:
                    row.ratio_to_bare = round(row.requests_per_second / ctx.bare_rps, 3)
                rows.append(row)
                print_row(row)
            if scenario in args.profile and kind.name == args.server_names[0]:
                profiles[scenario] = profile(ctx, scenario, stamp)
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{kind.name} died:\n{server.log()}")
    return rows, seed, profiles


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = (
    f"{'scenario':28} {'server':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MiB':>8} "
    f"{'/bare':>6} {'CPU µs':>7}  note"
)


def print_row(row: Row) -> None:
    print(
        f"{row.scenario:28} {row.server:12} {_fmt(row.requests_per_second):>8} {_fmt(row.p50_ms, 2):>8} "
        f"{_fmt(row.p99_ms, 2):>8} {row.errors:>6} {_fmt(row.rss_mib):>8} {_fmt(row.ratio_to_bare, 2):>6} "
        f"{_fmt(row.cpu_us, 0):>7}  {row.note}",
        flush=True,
    )


def markdown(rows: list[Row]) -> str:
    """The table as Markdown, for docs/PERFORMANCE.md."""
    lines = [
        "| scenario | server | req/s | p50 ms | p99 ms | errors | RSS MiB | /bare | CPU µs/req | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        cells = (
            row.scenario,
            row.server,
            _fmt(row.requests_per_second),
            _fmt(row.p50_ms),
            _fmt(row.p99_ms),
            str(row.errors),
            _fmt(row.rss_mib, 0),
            _fmt(row.ratio_to_bare, 2),
            _fmt(row.cpu_us, 0),
            row.note.replace("|", "/"),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def by_cpu(reference: Row, row: Row) -> str:
    """The throughput ratio the CPU times per request predict (steadier than req/s on a shared machine)."""
    if not reference.cpu_us or not row.cpu_us:
        return ""
    return f"; by CPU per request {reference.cpu_us / row.cpu_us:.2f}"


def goals(rows: list[Row]) -> list[str]:
    """The issue's goals, read off the rows of the first server that has each figure."""
    found: list[str] = []

    def first(predicate: Callable[[Row], bool]) -> list[Row]:
        return [row for row in rows if predicate(row)]

    for server in dict.fromkeys(row.server for row in rows):
        mine = {row.scenario: row for row in rows if row.server == server}
        bare, health = mine.get("health (bare Quart)"), mine.get("health")
        if bare and health and bare.requests_per_second and health.requests_per_second:
            ratio = health.requests_per_second / bare.requests_per_second
            found.append(f"{server}: /health = {ratio:.2f} of bare Quart{by_cpu(bare, health)} (goal >= 0.75)")
        me = mine.get("me")
        if me and health and health.requests_per_second and me.requests_per_second:
            ratio = me.requests_per_second / health.requests_per_second
            found.append(f"{server}: /auth/me = {ratio:.2f} of /health{by_cpu(health, me)} (goal >= 0.6)")
        reads = [mine[name] for name in READ_PATHS if name in mine]
        if reads:
            worst = max(reads, key=lambda row: row.p99_ms or 0)
            found.append(f"{server}: worst read p99 {worst.p99_ms:.1f} ms ({worst.scenario}; goal < 50)")
        loaded = mine.get("loop: /health under load")
        if loaded:
            found.append(f"{server}: /health p99 under load = {loaded.details['p99_ratio_to_idle']}x idle (goal <= 3)")
        chat = mine.get("chat: first delta")
        if chat:
            found.append(f"{server}: streaming overhead p50 {chat.details['overhead_p50_ms']} ms (goal < 10)")
        held = [row for row in first(lambda r, s=server: r.server == s and r.scenario.endswith("streams held"))]
        for row in held:
            found.append(
                f"{server}: {row.details['completed']}/{row.details['streams']} streams, peak RSS {row.rss_mib} MiB "
                "(goal: 500 under 1024)"
            )
        submit = mine.get("submit")
        if submit:
            found.append(f"{server}: {submit.requests_per_second:.1f} graded submissions/s (goal >= 20)")
        grown = [row for row in rows if row.server == server and "cpu_ratio_to_small" in row.details]
        if grown:
            worst = max(grown, key=lambda row: row.details["cpu_ratio_to_small"])
            found.append(
                f"{server}: CPU per request, 10,000 vs 10 items of history: worst "
                f"{worst.details['cpu_ratio_to_small']:.2f}x ({worst.scenario}; goal <= {history.GOAL})"
            )
        sessions = [row for row in rows if row.server == server and row.scenario.startswith("session x")]
        if sessions:
            reached = sessions[-1].note.rsplit("reached concurrency ", 1)[-1].split(" ")[0]
            found.append(f"{server}: mixed student sessions reached concurrency {reached} with p99 <= 1 s")
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join(f"  {name:<10} {text}" for name, text in SCENARIO_HELP.items()),
    )
    parser.add_argument("scenarios", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument(
        "--quick", action="store_true", help="hypercorn-1 only, short runs, fewer streams and levels (~2 minutes)"
    )
    parser.add_argument(
        "--servers",
        help=f"comma-separated from {list(SERVER_KINDS)} (default: the first three; quick: hypercorn-1)",
    )
    parser.add_argument("--duration", type=int, help="seconds per wrk measurement (default 10, quick 3)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured load first (default 2, quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="connections for the read scenarios (32)")
    parser.add_argument("--login-connections", type=int, default=8)
    parser.add_argument("--submit-connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--users", type=int, help="students seeded (default 24, quick 10)")
    parser.add_argument("--streams", type=int, help="chat streams held at once (default 500, quick 100)")
    parser.add_argument("--chat-messages", type=int, help="messages timed one by one (default 30, quick 10)")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="fake LLM seconds between chunks (0.02)")
    parser.add_argument("--hold-seconds", type=float, help="how long each held stream lasts (default 15, quick 6)")
    parser.add_argument(
        "--slow", type=int, help="seconds at least for logins and submissions, a fraction of a second each (8, quick 5)"
    )
    parser.add_argument("--session-seconds", type=int, help="seconds per session level (default 15, quick 4)")
    parser.add_argument("--max-session-concurrency", type=int, help="highest session level (default 64, quick 16)")
    parser.add_argument("--profile", default="", help="comma-separated scenarios to re-run under py-spy")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/run-*.json")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": (10, 3),
        "warmup": (2, 1),
        "users": (24, 10),
        "streams": (500, 100),
        "chat_messages": (30, 10),
        "session_seconds": (15, 4),
        "max_session_concurrency": (64, 8),
        "hold_seconds": (15, 6),
        "slow": (8, 5),
    }
    for name, (full, short) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.servers is None:
        args.servers = "hypercorn-1" if quick else "hypercorn-1,hypercorn-2,uvicorn-1"
    args.scenarios = args.scenarios or list(SCENARIOS)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    args.server_names = [name.strip() for name in args.servers.split(",") if name.strip()]
    if bad := [name for name in args.server_names if name not in SERVER_KINDS]:
        parser.error(f"unknown server(s) {bad}; choose from {list(SERVER_KINDS)}")
    args.profile = [name.strip() for name in args.profile.split(",") if name.strip()]
    if bad := [name for name in args.profile if name not in SCENARIOS]:
        parser.error(f"unknown scenario(s) to profile {bad}")
    if args.users < 3:
        parser.error("--users must be at least 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    found_versions = versions(
        (
            "quart",
            "quart-schema",
            "hypercorn",
            "uvicorn",
            "uvloop",
            "httptools",
            "sqlalchemy",
            "asyncpg",
            "redis",
            "bcrypt",
            "pydantic",
            "openai",
            "httpx",
        )
    )
    started = time.monotonic()
    load = loadavg()
    print(f"scenarios {args.scenarios} on {args.server_names}; load average {load}", flush=True)
    database_url = args.database_url = asyncio.run(fresh_database(DATABASE_NAME, REDIS_URL))
    chunks = ["--chunk-delay", str(args.chunk_delay), "--hold-seconds", str(args.hold_seconds)]
    fake, llm = start_fake_llm(*chunks)
    rows: list[Row] = []
    profiles: dict[str, Any] = {}
    try:
        migrate_and_seed(server_env(database_url, llm, SERVER_KINDS["hypercorn-1"], free_port()))
        seed = None
        print("\n" + HEADER + "\n" + "-" * len(HEADER), flush=True)
        for name in args.server_names:
            mine, seed, found = run_server_kind(args, SERVER_KINDS[name], database_url, llm, seed, stamp)
            rows += mine
            profiles.update({f"{key}@{name}": value for key, value in found.items()})
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    summary = goals(rows)
    print("\ngoals")
    for line in summary:
        print("  " + line)
    elapsed = time.monotonic() - started
    print(f"\n{elapsed:.0f} s; load average at start {load}, at end {loadavg()}")
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"run-{stamp}.json"
        result = {
            "benchmark": "bench/run.py",
            "timestamp": stamp,
            "seconds": round(elapsed),
            "loadavg": {"start": load, "end": loadavg()},
            "settings": {key: value for key, value in vars(args).items()},
            "machine": machine(),
            "versions": found_versions,
            "goals": summary,
            "rows": [vars(row) for row in rows],
            "profiles": profiles,
        }
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        path.with_suffix(".md").write_text(markdown(rows) + "\n" + "\n".join(f"- {line}" for line in summary) + "\n")
        print(f"results: {path.relative_to(REPO)} (and the table in Markdown: {path.with_suffix('.md').name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
