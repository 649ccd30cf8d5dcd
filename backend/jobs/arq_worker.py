"""`JOBS_BACKEND=arq`: jobs run in `python -m backend worker` processes, fed through Redis by arq.

The row in `jobs` stays the source of truth; an arq message carries only its id. After the request's
commit the server enqueues `run_job(job_id)`; a worker claims that row (the same atomic claim as the
in-process backend, so a duplicate message is harmless) and runs the same handler. If Redis was
unreachable when a job was queued nothing is lost: the worker's sweep, at start-up and every
`SWEEP_SECONDS`, queues again what a dead worker abandoned and announces every queued row.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from arq import create_pool, cron
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from backend import jobs
from backend.cache import create_cache
from backend.config import Settings
from backend.db import create_engine, create_session_factory
from backend.jobs import JobContext, UserLLM

QUEUE_NAME = "codementor:jobs"
MAX_JOBS = 4  # per worker process: reviews wait on GitHub and the LLM, not the CPU
SWEEP_SECONDS = {0, 30}  # the seconds of each minute at which the sweep runs
JOB_TIMEOUT_SECONDS = jobs.LEASE_SECONDS - 60  # cut before the lease ends, so a slow job is not run twice
CONNECT_TIMEOUT_SECONDS = 2
STOP_GRACE_SECONDS = 20  # on SIGTERM, running jobs get this long; the rest go back to the queue

log = structlog.get_logger(__name__)


class WorkerMisconfigured(Exception):
    pass


class DatabaseUnreachable(Exception):
    """The worker reached Redis but not the database (DATABASE_URL)."""


def redis_settings(settings: Settings, *, retries: int = 5) -> RedisSettings:
    if not settings.redis_url:
        raise WorkerMisconfigured("JOBS_BACKEND=arq needs REDIS_URL (the queue lives in Redis)")
    parsed = RedisSettings.from_dsn(settings.redis_url)
    parsed.conn_timeout = CONNECT_TIMEOUT_SECONDS
    parsed.conn_retries = retries
    return parsed


def message_id(job_id: int) -> str:
    """One arq message per row while it waits: announcing a row twice sends it once."""
    return f"codementor-job-{job_id}"


async def announce(redis: ArqRedis, job_id: int) -> None:
    await redis.enqueue_job("run_job", job_id, _job_id=message_id(job_id), _queue_name=QUEUE_NAME)


class ArqJobs:
    """The server's side: announce committed jobs to the workers; nothing runs in the server."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._lock = asyncio.Lock()  # bound to the serving loop
        redis_settings(self._settings)  # REDIS_URL missing: say so at start-up, not at the first review
        log.info("jobs.arq_backend", queue=QUEUE_NAME)

    async def notify(self, job_id: int | None = None) -> None:
        if job_id is None:
            return
        try:
            await announce(await self._redis(), job_id)
        except (TimeoutError, OSError, RedisError) as error:
            # The row is committed: a worker's sweep announces it once Redis is back.
            log.warning("jobs.arq_enqueue_failed", job_id=job_id, error_type=type(error).__name__)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def _redis(self) -> ArqRedis:
        async with self._lock:
            if self._pool is None:
                # No retries: this runs after a request, and the sweep covers a Redis that is down.
                self._pool = await create_pool(redis_settings(self._settings, retries=0), default_queue_name=QUEUE_NAME)
            return self._pool


# --- the worker process -------------------------------------------------------------------------------


async def run_job(ctx: dict[str, Any], job_id: int) -> str:
    """arq's entry point: claim the row and run its handler; a row someone else took is left alone."""
    context: JobContext = ctx["jobs"]
    row = await jobs.claim(context.session_factory, job_id=job_id)
    if row is None:
        return "not_queued"
    await jobs.run(context, row)
    return "done"


async def sweep(ctx: dict[str, Any]) -> int:
    """Requeue abandoned rows, then announce every queued row (those whose message never reached Redis)."""
    context: JobContext = ctx["jobs"]
    await jobs.requeue_abandoned(context)
    ids = await jobs.queued_ids(context.session_factory)
    for job_id in ids:
        await announce(ctx["redis"], job_id)
    return len(ids)


def worker_options(settings: Settings, *, user_llm: UserLLM) -> dict[str, Any]:
    """The arq `Worker` arguments: `Worker(**worker_options(settings, user_llm=...), burst=True)` in tests.
    The job kinds are registered by the caller (backend/app.py's `register_job_kinds`)."""

    async def startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(settings)
        ctx["engine"] = engine
        session_factory = create_session_factory(engine)
        # The LLM budget's holds for calls in flight are shared with the servers and the other workers.
        cache = ctx["cache"] = create_cache(settings.redis_url)
        ctx["jobs"] = JobContext(settings=settings, session_factory=session_factory, user_llm=user_llm, cache=cache)
        try:
            announced = await sweep(ctx)
        except (OSError, SQLAlchemyError) as error:  # Redis answered already: this is the database
            raise DatabaseUnreachable(type(error).__name__) from error
        log.info("jobs.worker_started", queue=QUEUE_NAME, max_jobs=MAX_JOBS, queued=announced)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "jobs" in ctx:
            await ctx["jobs"].close()
        if "cache" in ctx:
            await ctx["cache"].close()
        if "engine" in ctx:
            await ctx["engine"].dispose()
        log.info("jobs.worker_stopped")

    return {
        # keep_result=0: no result is kept, so a row queued again later can be announced again
        "functions": [func(run_job, name="run_job", keep_result=0, max_tries=1, timeout=JOB_TIMEOUT_SECONDS)],
        "cron_jobs": [cron(sweep, second=SWEEP_SECONDS, run_at_startup=False, keep_result=0)],
        "redis_settings": redis_settings(settings),
        "queue_name": QUEUE_NAME,
        "max_jobs": MAX_JOBS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "keep_result": 0,
    }


def run_worker(settings: Settings, *, user_llm: UserLLM) -> int:
    """`python -m backend worker`: run until SIGINT/SIGTERM (running jobs are given time to finish)."""

    async def main() -> None:
        worker = Worker(**worker_options(settings, user_llm=user_llm), job_completion_wait=STOP_GRACE_SECONDS)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.async_run()
        finally:
            await worker.close()

    asyncio.run(main())
    return 0
