"""Background jobs: queued work is a row in `jobs`, so nothing is lost when a process stops.

`enqueue()` inserts the row inside the caller's transaction and, once that commits, wakes the backend.
A backend claims a row atomically (`queued` → `running`), runs the handler registered for its kind and
records the outcome (`completed`, or `failed` with a reason). Rows left `running` by a process that died
are queued again after `LEASE_SECONDS`.

Handlers are `async def handler(session_factory, payload)`, registered with `@job("kind")`: each opens
its own short sessions, because a job outlives any request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import structlog
from quart import current_app, has_app_context, has_request_context
from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db import UTCDateTime, after_commit, utcnow
from backend.models import Job

SessionFactory = async_sessionmaker[AsyncSession]
JobHandler = Callable[[SessionFactory, dict[str, Any]], Awaitable[None]]

LEASE_SECONDS = 15 * 60  # longer than any job may run; a `running` row older than this was abandoned
MAX_ERROR_CHARS = 2000
MAX_ATTEMPTS = 3
ABANDONED_ERROR = "abandoned by its worker too many times"
JOBS_EXTENSION = "jobs"

JOB_HANDLERS: dict[str, JobHandler] = {}
log = structlog.get_logger(__name__)


class UnknownJobKind(Exception):
    pass


class JobsBackend(Protocol):
    async def start(self) -> None: ...

    async def notify(self) -> None: ...

    async def stop(self) -> None: ...


class ExternalWorkers:
    """`JOBS_BACKEND=arq`: jobs run in separate worker processes, none inside the server.

    The arq worker (`python -m backend worker`) is not available yet: until it is, queued jobs stay
    queued rows, and a server switched back to `inprocess` runs them."""

    async def start(self) -> None:
        log.warning("jobs.no_worker", detail="JOBS_BACKEND=arq: the arq worker is not available yet")

    async def notify(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def create_jobs_backend(settings: Settings, session_factory: SessionFactory) -> JobsBackend:
    if settings.jobs_backend == "inprocess":
        from backend.jobs.inprocess import InProcessJobs

        return InProcessJobs(session_factory)
    return ExternalWorkers()


def job(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register the handler of a job kind."""

    def register(handler: JobHandler) -> JobHandler:
        JOB_HANDLERS[kind] = handler
        return handler

    return register


async def enqueue(session: AsyncSession, kind: str, payload: dict[str, Any]) -> Job:
    """Queue a job in the caller's transaction; the backend hears of it only after the commit."""
    if kind not in JOB_HANDLERS:
        raise UnknownJobKind(kind)
    row = Job(kind=kind, payload=payload, status="queued")
    session.add(row)
    await session.flush()
    if has_request_context():
        backend = current_app.extensions[JOBS_EXTENSION]
        after_commit(backend.notify)
    elif has_app_context():  # e.g. a job queueing a follow-up; the caller commits right after
        log.debug("jobs.enqueued_outside_request", job_id=row.id)
    return row


async def claim(session_factory: SessionFactory, job_id: int | None = None) -> Job | None:
    """Atomically take a queued job (the oldest due one, or `job_id`) and mark it `running`.

    One UPDATE guarded by `status = 'queued'`: of two workers racing for a row, one gets it."""
    now = utcnow()
    async with session_factory() as session:
        for _ in range(5):  # lost a race for the oldest row: try the next one
            candidate = job_id
            if candidate is None:
                candidate = await session.scalar(
                    select(Job.id)
                    .where(Job.status == "queued", or_(Job.run_after.is_(None), Job.run_after <= now))
                    .order_by(Job.id)
                    .limit(1)
                )
                if candidate is None:
                    await session.commit()
                    return None
            claimed = await session.scalar(
                update(Job)
                .where(Job.id == candidate, Job.status == "queued")
                .values(status="running", started_at=now, attempts=Job.attempts + 1)
                .returning(Job)
            )
            await session.commit()
            if claimed is not None or job_id is not None:
                return claimed
    return None


async def run(session_factory: SessionFactory, row: Job) -> None:
    """Run a claimed job and record how it ended; a handler that raises ends `failed` with a reason."""
    handler = JOB_HANDLERS.get(row.kind)
    try:
        if handler is None:
            raise UnknownJobKind(f"no handler for job kind {row.kind!r}")
        await handler(session_factory, dict(row.payload))
    except Exception as error:
        log.warning("jobs.failed", job_id=row.id, kind=row.kind, error_type=type(error).__name__, exc_info=True)
        await _finish(session_factory, row.id, "failed", f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
        return
    await _finish(session_factory, row.id, "completed", None)
    log.info("jobs.completed", job_id=row.id, kind=row.kind)


async def _finish(session_factory: SessionFactory, job_id: int, status: str, error: str | None) -> None:
    async with session_factory() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running")
            .values(status=status, error=error, finished_at=utcnow())
        )
        await session.commit()


async def requeue_abandoned(session_factory: SessionFactory, lease_seconds: int = LEASE_SECONDS) -> int:
    """Queue again the jobs a dead process left `running` (started longer than a lease ago).

    A job that was abandoned `MAX_ATTEMPTS` times probably takes its process down: it ends `failed`."""
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    worn_out = Job.attempts >= MAX_ATTEMPTS
    async with session_factory() as session:
        # One statement, so a row cannot be judged by one rule and updated by the other.
        result = await session.execute(
            update(Job)
            .where(Job.status == "running", Job.started_at < cutoff)
            .values(
                status=case((worn_out, "failed"), else_="queued"),
                error=case((worn_out, ABANDONED_ERROR), else_=Job.error),
                finished_at=case((worn_out, literal(utcnow(), UTCDateTime())), else_=None),
                started_at=case((worn_out, Job.started_at), else_=None),
            )
            .returning(Job.id, Job.status)
        )
        ids = [job_id for job_id, status in result if status == "queued"]
        await session.commit()
    if ids:
        log.warning("jobs.requeued_abandoned", job_ids=ids)
    return len(ids)
