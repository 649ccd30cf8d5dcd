"""Schemathesis against the real server: every operation of our own `/openapi.json`, fuzzed as real users.

The app runs as `python -m backend` runs it (Hypercorn on a free 127.0.0.1 port, the memory email
backend) with rate limits off, so the fuzzer reaches the handlers instead of a wall of 429s, twice:
- embedded (a SQLite file, the memory cache): every phase (examples, coverage, fuzzing);
- production (PostgreSQL, Redis): the examples and coverage phases, whose boundary values are what a
  different database answers differently (column lengths, integer ranges, characters it refuses).
GitHub and the LLM (OpenAI-compatible, answering with an exercise that generation accepts) are fakes on
real sockets, so generation, hints and chat run their real code instead of a 503 `llm_not_configured`.

Each case is checked for: no 5xx, a status code, content type, headers and body the spec documents, and
(our own check) RFC 9457 problem details with the fields of docs/API.md on every 4xx/5xx.

Who calls: a signed-in student for most operations, an administrator for the admin-only ones, and for
operations that end sessions or the account (logout, logout-all, session revocation, password change,
account deletion) a fresh session of a throwaway user per case, so they run with everything else
instead of being excluded, and never cut the fuzzer's own session.

Deterministic for CI: derandomized Hypothesis, no example database, a fixed number of examples.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import asyncpg
import httpx
import jsonschema_rs
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings, strategies

from backend.__main__ import openapi_document
from backend.schemas.users import TIMEZONE_FORMAT
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL, asyncpg_dsn, make_settings, service_missing
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.llm_servers import FakeOpenAI
from tests.servers import backend_env, free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Fuzz-password-2026!"
ADMIN_EMAIL = "fuzz-admin@example.com"
WEBHOOK_SECRET = "fuzz-webhook-secret"
# schemathesis's defaults without 5xx (never an acceptable answer here); invalid data may also be refused
# for its size: a body over 1 MiB is a 413 before anything reads it.
POSITIVE_EXPECTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429"]
NEGATIVE_EXPECTED_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}
# Operations that end the caller's session or account: each case gets a throwaway user's fresh session.
SESSION_ENDING = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/logout-all"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"),
    ("POST", "/api/v1/auth/password/change"),
    ("DELETE", "/api/v1/users/me"),
}
ADMIN_ONLY = {
    ("POST", "/api/v1/exercises"),
    ("PUT", "/api/v1/exercises/{exercise_id}"),
    ("DELETE", "/api/v1/exercises/{exercise_id}"),
}


# --- fakes of the services we call, on their own event loop in a thread ---------------------------


class BackgroundLoop:
    """An event loop in a daemon thread: the fakes keep serving while the (synchronous) fuzzer waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-fakes", daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Fakes:
    github: FakeGitHubAPI
    llm: FakeOpenAI


def generated_exercise() -> dict[str, Any]:
    """What the fake LLM answers to everything: an exercise generation accepts (and fine as a chat reply)."""
    return {
        "title": "Multiply two numbers",
        "description": "Write `multiply(a, b)`.",
        "starter_code": "def multiply(a, b):\n    pass\n",
        "solution": "def multiply(a, b):\n    return a * b\n",
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "hints": ["One operator.", "It is `*`.", "Return a * b."],
        "tests": [
            {"name": f"case {n}", "call": f"multiply({n}, {n + 1})", "expected": str(n * (n + 1))} for n in range(6)
        ],
    }


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    loop = BackgroundLoop()
    github, llm = FakeGitHubAPI(), FakeOpenAI()
    github.add_repository("octo/hello", description="Hello", stars=3)
    llm.reply = json.dumps(generated_exercise())
    loop.run(github.start())
    loop.run(llm.start())
    try:
        yield Fakes(github=github, llm=llm)
    finally:
        loop.run(llm.stop())
        loop.run(github.stop())
        loop.close()


# --- the server under test -------------------------------------------------------------------------


def server_env(port: int, fakes: Fakes, stack: dict[str, str]) -> dict[str, str]:
    return backend_env(
        ENVIRONMENT="test",
        SECRET_KEY="fuzz-secret-key-that-is-long-enough-0123456789",
        PORT=str(port),
        BACKEND_URL=f"http://127.0.0.1:{port}",
        BCRYPT_ROUNDS="4",
        EMAIL_BACKEND="memory",
        LLM_PROVIDER=fakes.llm.name,
        LLM_MODEL=fakes.llm.model,
        LLM_BASE_URL=fakes.llm.sdk_base_url,
        LLM_API_KEY=fakes.llm.api_key,
        RATE_LIMITS_ENABLED="false",
        LOG_LEVEL="WARNING",
        GITHUB_API_URL=fakes.github.base_url,
        GITHUB_OAUTH_URL=fakes.github.base_url,
        GITHUB_CLIENT_ID="fuzz-client",
        GITHUB_CLIENT_SECRET="fuzz-client-secret",
        GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ADMIN_PASSWORD=PASSWORD,
        **stack,  # DATABASE_URL, and REDIS_URL on the production stack
    )


def serve(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """`create-admin`, then the default command (migrate, seed the catalog, serve) until the module ends."""
    admin = subprocess.run(
        [sys.executable, "-m", "backend", "create-admin", "--email", ADMIN_EMAIL],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert admin.returncode == 0, admin.stderr
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "backend"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def embedded_url(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[str]:
    """What `python -m backend` runs: a SQLite file, the in-memory cache."""
    tmp_path = tmp_path_factory.mktemp("fuzz-embedded")
    stack = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"}
    yield from serve(tmp_path, server_env(free_port(), fakes, stack))


async def create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def production_url(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[str]:
    """What SETUP.md deploys: PostgreSQL (a database of its own) and Redis (TEST_REDIS_URL, flushed)."""
    admin_url = asyncpg_dsn(POSTGRES_ADMIN_URL)
    name = f"codementor_fuzz_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(create_database(admin_url, name))
        cache = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        cache.flushdb()
        cache.close()
    except (OSError, asyncpg.PostgresError, redis.RedisError) as error:
        service_missing(f"the production stack needs PostgreSQL and Redis ({type(error).__name__})")
    database_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    stack = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    try:
        yield from serve(tmp_path_factory.mktemp("fuzz-production"), server_env(free_port(), fakes, stack))
    finally:
        asyncio.run(drop_database(admin_url, name))


# --- who calls, and what it cost ------------------------------------------------------------------


@dataclass
class Tally:
    """Cases sent and seconds spent per operation, written to the terminal when the module ends."""

    stack: str
    cases: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        slowest = ", ".join(f"{label} {seconds:.0f}s" for label, seconds in self.seconds.most_common(3))
        return (
            f"schemathesis ({self.stack}): {len(self.cases)} operations, {sum(self.cases.values())} cases, "
            f"{sum(self.seconds.values()):.0f}s in calls; slowest: {slowest}"
        )


def report(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@dataclass
class Callers:
    """Bearer headers per role, and a fresh throwaway session for each session-ending case."""

    base_url: str
    student: dict[str, str] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=dict)
    throwaway_email: str | None = None
    throwaways: int = 0
    # One client for every sign-in: `httpx.post` builds a client, and its TLS context (~20 ms of CPU), per
    # call, and a session-ending case signs in each time.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @classmethod
    def signed_in(cls, base_url: str) -> Callers:
        callers = cls(base_url)
        callers.student = callers.register("fuzz-student@example.com")
        admin = callers.login(ADMIN_EMAIL)
        assert admin.status_code == 200, admin.text
        callers.admin = bearer(admin.json())
        return callers

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        if (method, path) in SESSION_ENDING:
            return self.fresh_throwaway_session()
        if (method, path) in ADMIN_ONLY:
            return self.admin
        return self.student

    def register(self, email: str) -> dict[str, str]:
        response = self.http.post(
            f"{self.base_url}/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Fuzz User"}
        )
        assert response.status_code == 201, response.text
        return bearer(response.json())

    def login(self, email: str) -> httpx.Response:
        return self.http.post(f"{self.base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD})

    def fresh_throwaway_session(self) -> dict[str, str]:
        """A new session of the throwaway user; a new user once a case has deleted the account."""
        if self.throwaway_email is not None:
            response = self.login(self.throwaway_email)
            if response.status_code == 200:
                return bearer(response.json())
        self.throwaways += 1
        self.throwaway_email = f"fuzz-throwaway-{self.throwaways}@example.com"
        return self.register(self.throwaway_email)


def bearer(payload: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {payload['access_token']}"}


@dataclass
class Target:
    """One running stack: where it listens, who calls it, what the run cost."""

    base_url: str
    callers: Callers
    tally: Tally


def target(request: pytest.FixtureRequest, stack: str, base_url: str) -> Iterator[Target]:
    running = Target(base_url, Callers.signed_in(base_url), Tally(stack))
    yield running
    running.callers.http.close()
    if running.tally.cases:
        report(request, running.tally.summary())


@pytest.fixture(scope="module")
def embedded(request: pytest.FixtureRequest, embedded_url: str) -> Iterator[Target]:
    yield from target(request, "embedded", embedded_url)


@pytest.fixture(scope="module")
def production(request: pytest.FixtureRequest, production_url: str) -> Iterator[Target]:
    yield from target(request, "production", production_url)


# --- what is checked -------------------------------------------------------------------------------


def app_openapi_document() -> dict[str, Any]:
    """The document the app serves at `/openapi.json`, built at collection time to make one test per operation
    (the live server's copy is compared with it below). Loading it from the server in a fixture would need
    `schemathesis.pytest.from_fixture`, which fails on pytest 9.2 (it writes the removed `Node._nodeid`)."""
    return openapi_document(make_settings())


# Schema-valid requests that the API itself answers with a 400/422 (business rules the schema cannot state):
# an unknown token or code, a wrong password, a difficulty outside the user's skill-level bounds, …
BUSINESS_REJECTIONS = {
    "POST /api/v1/auth/verify-email": [400],
    "POST /api/v1/auth/password-reset/confirm": [400],
    "POST /api/v1/auth/oauth/exchange": [400],
    "POST /api/v1/auth/password/change": [400],
    "DELETE /api/v1/users/me": [400],
    "PUT /api/v1/exercises/difficulty": [422],
    # A conversation started from a submission with an `exercise_id` that is not that submission's exercise.
    "POST /api/v1/chat/conversations": [422],
    # A language that is not graded on this machine (which ones are depends on the installed toolchains).
    "POST /api/v1/exercises/generate": [422],
}


def fuzz_config(*, fuzzing: bool) -> schemathesis.Config:
    """Our expected statuses; `fuzzing=False` keeps the examples and coverage (boundary values) phases only."""
    operations = []
    for label, statuses in BUSINESS_REJECTIONS.items():
        expected = [*POSITIVE_EXPECTED_STATUSES, *map(str, statuses)]
        operations.append(
            {"include-name": label, "checks": {"positive_data_acceptance": {"expected-statuses": expected}}}
        )
    return schemathesis.Config.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_EXPECTED_STATUSES}},
            "phases": {"fuzzing": {"enabled": fuzzing}},
            # The API refuses U+0000 in any string (422: PostgreSQL cannot store it), as its description says.
            "generation": {"allow-x00": False},
            "operations": operations,
        }
    )


# The one custom format of the document: a name from this machine's tz database, as the server checks.
schemathesis.openapi.format(TIMEZONE_FORMAT, strategies.sampled_from(sorted(available_timezones())))
DOCUMENT = app_openapi_document()
# Embedded: every phase. Production: boundary values only (what differs there is the database: column
# types and lengths, integer ranges, characters PostgreSQL refuses), which keeps the whole run short.
embedded_schema = schemathesis.openapi.from_dict(DOCUMENT, config=fuzz_config(fuzzing=True))
production_schema = schemathesis.openapi.from_dict(DOCUMENT, config=fuzz_config(fuzzing=False))


def test_the_fuzzed_document_is_what_the_server_serves(embedded: Target) -> None:
    assert httpx.get(f"{embedded.base_url}/openapi.json", timeout=30).json() == DOCUMENT


def problem_details(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx is `application/problem+json` with the fields docs/API.md names, its status and request id."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/problem+json", (
        f"{response.status_code} answered as {content_type!r}, not application/problem+json"
    )
    body = response.json()
    assert isinstance(body, dict), "the problem body is not an object"
    missing = PROBLEM_FIELDS - body.keys()
    assert not missing, f"the problem body lacks {sorted(missing)}"
    assert body["status"] == response.status_code, "the problem's status differs from the HTTP status"
    assert body["type"] == "about:blank" and body["code"] and body["detail"]
    assert body["request_id"] == response.headers.get("x-request-id", [None])[0], "request_id is not X-Request-ID"
    if "errors" in body:
        assert body["code"] == "validation_error", "`errors` belongs to validation errors only"
        assert all(set(error) == {"field", "message"} for error in body["errors"])


def event_stream(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A `text/event-stream` answer: each event is what the document's `x-event-schema` says (schemathesis
    checks JSON bodies only), and the stream ends with `done` or `error`."""
    if not response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
        return
    operation = DOCUMENT["paths"][case.operation.path][case.method.lower()]
    media = operation["responses"][str(response.status_code)]["content"]["text/event-stream"]
    validator = jsonschema_rs.validator_for({**media["x-event-schema"], "components": DOCUMENT["components"]})
    events = []
    for frame in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        event = {"event": fields["event"], "data": json.loads(fields["data"])}
        validator.validate(event)
        events.append(event["event"])
    assert events[0] == "start" and events[-1] in {"done", "error"}, events


def call_and_check(case: schemathesis.Case, running: Target) -> None:
    label = case.operation.label  # the coverage phase also sends other methods (TRACE, QUERY...) to its path
    headers = running.callers.headers_for(case.method.upper(), case.path)
    started = time.monotonic()
    running.tally.cases[label] += 1
    try:
        case.call_and_validate(
            base_url=running.base_url, headers=headers, additional_checks=[problem_details, event_stream], timeout=30
        )
    finally:
        running.tally.seconds[label] += time.monotonic() - started


# --- the runs --------------------------------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=25,
    derandomize=True,  # the same cases on every run: a red CI run is a real finding, and it reproduces
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@embedded_schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_holds_its_contract_on_the_embedded_stack(case: schemathesis.Case, embedded: Target) -> None:
    call_and_check(case, embedded)


@production_schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_holds_its_contract_on_the_production_stack(
    case: schemathesis.Case, production: Target
) -> None:
    call_and_check(case, production)
