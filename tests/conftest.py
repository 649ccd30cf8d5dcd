"""Fixtures: the real app on real databases and caches.

Tests that take `app` or `client` run twice, once on each deployment stack:
- `embedded`: SQLite file + in-memory cache (what `python -m backend` runs);
- `production`: PostgreSQL + Redis (what SETUP.md deploys).
Tests that touch neither take `embedded_app` / `embedded_client` and run once.

PostgreSQL and Redis are the local services (TEST_POSTGRES_URL, TEST_REDIS_URL to override). Without
them the production variants skip with the reason; with CI=true a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from quart import Quart
from quart.testing import QuartClient

from backend import migrations
from backend.app import create_app
from backend.config import Settings
from backend.db import Base
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.llm_servers import FakeAnthropic, FakeOpenAI
from tests.probes import mount_probes
from tests.runners import shared_runner_url, stop_shared_runner

IS_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
STACKS = ("embedded", "production")


def service_missing(reason: str) -> None:
    if IS_CI:
        pytest.fail(f"{reason}; CI=true requires every service, so this is a failure, not a skip")
    pytest.skip(reason)


def make_settings(**overrides: object) -> Settings:
    """Settings for a test app: nothing read from the environment or a .env file."""
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": TEST_SECRET_KEY,
        "bcrypt_rounds": 4,
        "cors_origins": ["http://localhost:5173"],
        "email_backend": "memory",
    }
    values.update(overrides)
    if values.get("sandbox_backend", "local") == "local":
        values.setdefault("sandbox_url", shared_runner_url())  # the real runner process, shared by the session
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def _stop_sandbox_runner() -> Iterator[None]:
    yield
    stop_shared_runner()


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# --- databases -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def postgres_server() -> str:
    try:
        connection = await asyncpg.connect(asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        service_missing(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(error).__name__})")
    await connection.close()
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
async def create_postgres_database(postgres_server: str) -> AsyncIterator[Callable[[], object]]:
    """A factory of empty PostgreSQL databases, all dropped when the session ends."""
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server))
    created: list[str] = []

    async def create() -> str:
        name = f"codementor_test_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name

    yield create
    for name in created:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def postgres_url(create_postgres_database: Callable) -> str:
    """One migrated PostgreSQL database for the session; each test starts from empty tables."""
    url = await create_postgres_database()
    await asyncio.to_thread(migrations.upgrade, url)
    return url


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    await asyncio.to_thread(migrations.upgrade, f"sqlite+aiosqlite:///{path}")
    return path


async def truncate_all(url: str) -> None:
    """Empty every table of `url` and restart its sequences: what a fresh migration leaves.

    Only what a test touched is reset: the tables holding rows are emptied with DELETE (children first) and
    the sequences that handed out a value (even to a rolled-back insert) are set back to their start. A
    TRUNCATE of all 24 tables (or of `users`, which CASCADE extends to nearly all) makes new files for each
    table and index: ~0.4 s before every production-stack test, against a few milliseconds for this; the
    tables and sequences come out the same."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables_query, sequences_query = _dirty_queries()
        dirty = {row[0] for row in await connection.fetch(tables_query)}
        sequences = await connection.fetch(sequences_query)
        async with connection.transaction():
            for table in reversed(Base.metadata.sorted_tables):  # children before the rows they reference
                if table.name in dirty:
                    await connection.execute(f'DELETE FROM "{table.name}"')  # noqa: S608 (our model's names)
            for name, start in sequences:
                await connection.execute("SELECT setval($1::regclass, $2, false)", name, start)
    finally:
        await connection.close()


@functools.cache
def _dirty_queries() -> tuple[str, str]:
    """The model's tables holding a row; the sequences of this schema that have handed out a value."""
    names = [table.name for table in Base.metadata.sorted_tables]
    with_rows = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")"  # noqa: S608 (our model's names)
        for name in names
    )
    advanced = (
        "SELECT format('%I.%I', schemaname, sequencename), start_value FROM pg_sequences"
        " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
    )
    return with_rows, advanced


# --- caches ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def redis_server() -> str:
    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as error:
        service_missing(f"Redis not reachable at {REDIS_URL} ({type(error).__name__})")
    finally:
        await client.aclose()
    return REDIS_URL


async def flush_redis(url: str) -> None:
    client = redis.from_url(url)
    await client.flushdb()
    await client.aclose()


# --- apps ------------------------------------------------------------------------------------------


@pytest.fixture
async def clean_postgres(postgres_url: str) -> str:
    await truncate_all(postgres_url)
    return postgres_url


@pytest.fixture
async def clean_redis(redis_server: str) -> str:
    await flush_redis(redis_server)
    return redis_server


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own."""
    database = tmp_path / "codementor.db"
    shutil.copyfile(sqlite_template, database)
    return f"sqlite+aiosqlite:///{database}"


@pytest.fixture(params=STACKS)
def stack_settings(request: pytest.FixtureRequest) -> Settings:
    # Services are requested lazily so the embedded variant runs on a laptop without them.
    if request.param == "embedded":
        return make_settings(database_url=request.getfixturevalue("sqlite_url"))
    return make_settings(
        database_url=request.getfixturevalue("clean_postgres"), redis_url=request.getfixturevalue("clean_redis")
    )


@pytest.fixture
async def app(stack_settings: Settings) -> AsyncIterator[Quart]:
    application = create_app(stack_settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


AppFactory = Callable[..., Awaitable[Quart]]


@pytest.fixture
async def make_app(stack_settings: Settings) -> AsyncIterator[AppFactory]:
    """Build started apps on this test's stack with settings overridden (`await make_app(llm_provider=...)`)."""
    contexts = []

    async def build(**overrides: object) -> Quart:
        application = create_app(stack_settings.model_copy(update=overrides))
        context = application.test_app()
        await context.__aenter__()
        contexts.append(context)
        return application

    yield build
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)


@pytest.fixture
async def embedded_app(sqlite_url: str) -> AsyncIterator[Quart]:
    application = create_app(make_settings(database_url=sqlite_url))
    async with application.test_app():
        yield application


@pytest.fixture
def embedded_client(embedded_app: Quart) -> QuartClient:
    return embedded_app.test_client()


@pytest.fixture
async def probe_client(stack_settings: Settings) -> AsyncIterator[QuartClient]:
    """A client of the real app with the probe routes of tests/probes.py mounted, on each stack."""
    application = create_app(stack_settings)
    mount_probes(application)
    async with application.test_app():
        yield application.test_client()


@pytest.fixture
async def embedded_probe_client(sqlite_url: str) -> AsyncIterator[QuartClient]:
    application = create_app(make_settings(database_url=sqlite_url))
    mount_probes(application)
    async with application.test_app():
        yield application.test_client()


# --- fake upstreams (real HTTP on 127.0.0.1; tests reset them before use) ------------------------------


@pytest.fixture(scope="session")
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def anthropic_server() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def github_api() -> AsyncIterator[FakeGitHubAPI]:
    fake = FakeGitHubAPI()
    await fake.start()
    yield fake
    await fake.stop()
