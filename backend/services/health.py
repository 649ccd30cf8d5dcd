"""Readiness checks: can this process serve traffic right now?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.cache import Cache
from backend.db import READ_ONLY
from backend.integrations.llm.status import Report
from backend.integrations.sandbox import Sandbox
from backend.migrations import head_revision

CHECK_TIMEOUT_SECONDS = 3.0

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DatabaseCheck:
    status: str  # ok or unavailable
    latency_ms: float
    error: str | None = None  # what failed, never the driver's message (no hosts, no credentials)


@dataclass(frozen=True)
class CacheCheck:
    status: str  # ok or unavailable
    backend: str
    latency_ms: float


@dataclass(frozen=True)
class MigrationsCheck:
    status: str  # ok, pending or unknown (the database could not be read)
    current: str | None
    head: str | None


@dataclass(frozen=True)
class SandboxCheck:
    status: str  # isolated, unisolated (development without bubblewrap) or unavailable


@dataclass(frozen=True)
class Checks:
    database: DatabaseCheck
    cache: CacheCheck
    migrations: MigrationsCheck
    llm: Report  # reported, never a reason to be unready: the tutor and hints answer without it
    sandbox: SandboxCheck


@dataclass(frozen=True)
class Readiness:
    status: str  # ready, degraded or unavailable
    checks: Checks


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def check_database(engine: AsyncEngine) -> tuple[DatabaseCheck, str | None]:
    """The database round-trip and, on the same connection, the applied migration (None if none)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            # A probe must not queue behind a writer: on SQLite a read needs no write lock.
            await connection.execution_options(**{READ_ONLY: True})
            await connection.execute(text("SELECT 1"))
            latency = _elapsed_ms(started)
            current = await _current_revision(connection)
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        log.warning("health.database_unavailable", error_type=type(error).__name__)
        return DatabaseCheck("unavailable", _elapsed_ms(started), error="database unreachable"), None
    return DatabaseCheck("ok", latency), current


async def _current_revision(connection: AsyncConnection) -> str | None:
    try:
        async with connection.begin_nested():  # PostgreSQL aborts the transaction on a missing table
            return await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except (ProgrammingError, OperationalError):  # never migrated
        return None


def check_migrations(current: str | None, database_ok: bool) -> MigrationsCheck:
    head = head_revision()
    status = "ok" if current == head else "pending"
    if not database_ok:
        status = "unknown"  # the revision could not be read
    return MigrationsCheck(status, current, head)


async def check_cache(cache: Cache) -> CacheCheck:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await cache.ping()
    except (RedisError, OSError, TimeoutError) as error:
        log.warning("health.cache_unavailable", backend=cache.backend, error_type=type(error).__name__)
        return CacheCheck("unavailable", cache.backend, _elapsed_ms(started))
    return CacheCheck("ok", cache.backend, _elapsed_ms(started))


async def check_sandbox(sandbox: Sandbox) -> SandboxCheck:
    """isolated / unisolated (development without bubblewrap) / unavailable (the runner does not answer)."""
    status = await sandbox.isolation()
    if status == "unavailable":
        log.warning("health.sandbox_unavailable", backend=sandbox.backend)
    return SandboxCheck(status)


async def readiness(engine: AsyncEngine, cache: Cache, llm: Report, sandbox: Sandbox) -> Readiness:
    """`ready`, `degraded` (only Redis is down: the app serves without it, so a load balancer must keep
    the instance) or `unavailable` (the database, migrations or the sandbox are not OK), with the checks."""
    (database, current), cache_check, sandbox_check = await asyncio.gather(
        check_database(engine), check_cache(cache), check_sandbox(sandbox)
    )
    migrations = check_migrations(current, database.status == "ok")
    checks = Checks(database, cache_check, migrations, llm, sandbox_check)
    if database.status != "ok" or migrations.status != "ok" or sandbox_check.status == "unavailable":
        return Readiness("unavailable", checks)
    return Readiness("ready" if cache_check.status == "ok" else "degraded", checks)
