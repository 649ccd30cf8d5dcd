"""Background jobs: queued work is a row in `jobs`, so nothing is lost when a process stops.

`enqueue()` inserts the row inside the caller's transaction and, once that commits, wakes the backend
that the session's factory announces to (`announce_through`, at the wiring): the commit itself does it,
in a request or not, and a rollback announces nothing.
A backend claims a row atomically (`queued` → `running`), runs the handler registered for its kind and
records the outcome (`completed`, or `failed` with a reason). Rows left `running` by a process that died
are queued again after `LEASE_SECONDS`.

Handlers are `async def handler(context, payload)`, registered with `register("kind", handler)` where
the app is wired (backend/app.py, for the server and the worker alike: this package imports no feature).
The `JobContext` gives the settings, a session factory (each job opens its own short sessions, because
it outlives any request) and the LLM on a user's behalf (`llm_for`, through the budget gateway the
wiring hands in). A kind may also register `on_failure(context, payload, reason)`, called whenever the
framework ends one of its jobs `failed` (the handler raised, or the job was abandoned too often), so the
object the job works on never stays "in progress".

Both backends run the same code: `inprocess` (a task in the server) and `arq` (worker processes fed
through Redis, `backend.jobs.arq`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import case, event, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from backend.cache import Cache
from backend.config import Settings
from backend.db import UTCDateTime, utcnow
from backend.integrations.llm import LLM, create_llm
from backend.metrics import JOB_DURATION
from backend.models import Job

SessionFactory = async_sessionmaker[AsyncSession]
# The budget gateway's wrapper, `BudgetedLLM(llm, session_factory, settings, user_id, cache)`, handed in by
# the wiring; `cache` holds the budget of calls in flight (shared by every process on Redis).
UserLLM = Callable[[LLM, SessionFactory, Settings, int, Cache | None], LLM]

LEASE_SECONDS = 15 * 60  # longer than any job may run; a `running` row older than this was abandoned
MAX_ERROR_CHARS = 2000
MAX_ATTEMPTS = 3
ABANDONED_ERROR = "abandoned by its worker too many times"
JOBS_EXTENSION = "jobs"

log = structlog.get_logger(__name__)


@dataclass
class JobContext:
    """What every job gets besides its payload; one per worker (the server's, or an arq process)."""

    settings: Settings
    session_factory: SessionFactory
    user_llm: UserLLM | None = None  # without it no job can ask the LLM for a user (llm_for raises)
    shared_llm: LLM | None = None  # the server's own client, when jobs run inside it
    cache: Cache | None = None  # the app's (inside the server) or the worker's own
    _own_llm: LLM | None = field(default=None, repr=False)

    @property
    def llm(self) -> LLM:
        if self.shared_llm is not None:
            return self.shared_llm
        if self._own_llm is None:
            self._own_llm = create_llm(self.settings)
        return self._own_llm

    def llm_for(self, user_id: int) -> LLM:
        """The LLM on behalf of `user_id`: every call checked against and counted in their daily budget."""
        if self.user_llm is None:
            raise RuntimeError("this job context was given no budget gateway (user_llm): see backend/app.py")
        return self.user_llm(self.llm, self.session_factory, self.settings, user_id, self.cache)

    async def close(self) -> None:
        if self._own_llm is not None:
            await self._own_llm.close()
            self._own_llm = None


JobHandler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
FailureHandler = Callable[[JobContext, dict[str, Any], str], Awaitable[None]]

JOB_HANDLERS: dict[str, JobHandler] = {}
FAILURE_HANDLERS: dict[str, FailureHandler] = {}


class UnknownJobKind(Exception):
    pass


class JobFailed(Exception):
    """Raised by a handler that has already recorded why its work failed (e.g. the review row says so):
    the job ends `failed` with that reason, quietly (no traceback, no `on_failure`: it is handled)."""


class JobsBackend(Protocol):
    async def start(self) -> None: ...

    async def notify(self, job_id: int | None = None) -> None: ...

    async def stop(self) -> None: ...


def create_jobs_backend(
    settings: Settings,
    session_factory: SessionFactory,
    *,
    llm: LLM | None = None,
    user_llm: UserLLM | None = None,
    cache: Cache | None = None,
) -> JobsBackend:
    """The server's side of the jobs; `llm` is the server's client, shared with the jobs run inside it."""
    if settings.jobs_backend == "inprocess":
        from backend.jobs.inprocess import InProcessJobs

        context = JobContext(
            settings=settings, session_factory=session_factory, user_llm=user_llm, shared_llm=llm, cache=cache
        )
        return InProcessJobs(context)
    from backend.jobs.arq_worker import ArqJobs

    return ArqJobs(settings)


def register(kind: str, handler: JobHandler, *, on_failure: FailureHandler | None = None) -> None:
    """The handler of a job kind, and what to do when one of its jobs ends `failed` (from the wiring)."""
    JOB_HANDLERS[kind] = handler
    if on_failure is not None:
        FAILURE_HANDLERS[kind] = on_failure


ANNOUNCE_TO = "codementor_jobs_backend"  # Session.info: the backend that hears of the jobs a session commits
_PENDING = "codementor_jobs_pending"  # Session.info: ids queued in its open transaction
_announcing: set[asyncio.Task[None]] = set()


def announce_through(session_factory: SessionFactory, backend: JobsBackend) -> None:
    """Sessions of `session_factory` announce the jobs they commit to `backend` (called by the wiring)."""
    session_factory.configure(info={ANNOUNCE_TO: backend})


async def enqueue(session: AsyncSession, kind: str, payload: dict[str, Any]) -> Job:
    """Queue a job in the caller's transaction; the session's backend (`announce_through`) hears of it
    once that transaction commits, and never if it rolls back."""
    if kind not in JOB_HANDLERS:
        raise UnknownJobKind(kind)
    row = Job(kind=kind, payload=payload, status="queued")
    session.add(row)
    await session.flush()
    if ANNOUNCE_TO in session.info:  # else a worker finds it by polling (or its sweep, for arq)
        session.info.setdefault(_PENDING, []).append(row.id)
    return row


@event.listens_for(Session, "after_commit")
def _announce_committed(session: Session) -> None:
    ids = session.info.pop(_PENDING, ())
    if ids:
        backend: JobsBackend = session.info[ANNOUNCE_TO]
        for job_id in ids:
            task = asyncio.get_running_loop().create_task(backend.notify(job_id))
            _announcing.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(_announcing.discard)


@event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended; after a commit the ids are gone already
        session.info.pop(_PENDING, None)


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


async def run(context: JobContext, row: Job) -> None:
    """Run a claimed job and record how it ended; a handler that raises ends `failed` with a reason."""
    started = time.perf_counter()
    outcome = "cancelled"
    try:
        outcome = await _run_handler(context, row)
    finally:
        JOB_DURATION.labels(row.kind, outcome).observe(time.perf_counter() - started)


async def _run_handler(context: JobContext, row: Job) -> str:
    handler = JOB_HANDLERS.get(row.kind)
    try:
        if handler is None:
            raise UnknownJobKind(f"no handler for job kind {row.kind!r}")
        await handler(context, dict(row.payload))
    except JobFailed as failure:
        await _finish(context.session_factory, row.id, "failed", str(failure)[:MAX_ERROR_CHARS])
        log.info("jobs.failed_handled", job_id=row.id, kind=row.kind)
        return "failed"
    except asyncio.CancelledError:
        # The worker is stopping: queue the job again now rather than after the lease runs out.
        await asyncio.shield(_release(context, row))
        raise
    except Exception as error:
        log.warning("jobs.failed", job_id=row.id, kind=row.kind, error_type=type(error).__name__, exc_info=True)
        reason = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        await _finish(context.session_factory, row.id, "failed", reason)
        await _after_failure(context, row.kind, dict(row.payload), reason)
        return "failed"
    await _finish(context.session_factory, row.id, "completed", None)
    log.info("jobs.completed", job_id=row.id, kind=row.kind)
    return "completed"


async def count_queued(session_factory: SessionFactory) -> int:
    """Queued rows (due or not): the queue depth /metrics reports."""
    async with session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))
        await session.commit()
    return int(count or 0)


async def _release(context: JobContext, row: Job) -> None:
    """Put a job cut off mid-run back in the queue; after `MAX_ATTEMPTS` starts it ends `failed` instead
    (a job that always outlives its time limit, or always brings its worker down, must not loop)."""
    worn_out = row.attempts >= MAX_ATTEMPTS
    try:
        async with context.session_factory() as session:
            await session.execute(
                update(Job)
                .where(Job.id == row.id, Job.status == "running")
                .values(
                    status="failed" if worn_out else "queued",
                    error=ABANDONED_ERROR if worn_out else None,
                    started_at=row.started_at if worn_out else None,
                    finished_at=utcnow() if worn_out else None,
                )
            )
            await session.commit()
        log.info("jobs.released", job_id=row.id, failed=worn_out)
    except Exception:  # the database is gone too: the lease brings the job back later
        log.warning("jobs.release_failed", job_id=row.id, exc_info=True)
        return
    if worn_out:
        await _after_failure(context, row.kind, dict(row.payload), ABANDONED_ERROR)


async def _after_failure(context: JobContext, kind: str, payload: dict[str, Any], reason: str) -> None:
    on_failure = FAILURE_HANDLERS.get(kind)
    if on_failure is None:
        return
    try:
        await on_failure(context, payload, reason)
    except Exception:  # the job row already says failed; a broken hook must not take the worker down
        log.warning("jobs.on_failure_failed", kind=kind, exc_info=True)


async def _finish(session_factory: SessionFactory, job_id: int, status: str, error: str | None) -> None:
    async with session_factory() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running")
            .values(status=status, error=error, finished_at=utcnow())
        )
        await session.commit()


async def requeue_abandoned(context: JobContext, lease_seconds: int = LEASE_SECONDS) -> int:
    """Queue again the jobs a dead process left `running` (started longer than a lease ago).

    A job that was abandoned `MAX_ATTEMPTS` times probably takes its process down: it ends `failed`
    (and its kind's `on_failure` runs)."""
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    worn_out = Job.attempts >= MAX_ATTEMPTS
    async with context.session_factory() as session:
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
            .returning(Job.id, Job.status, Job.kind, Job.payload)
        )
        rows = result.all()
        await session.commit()
    ids = [row.id for row in rows if row.status == "queued"]
    if ids:
        log.warning("jobs.requeued_abandoned", job_ids=ids)
    for row in rows:
        if row.status == "failed":
            await _after_failure(context, row.kind, dict(row.payload), ABANDONED_ERROR)
    return len(ids)


async def queued_ids(session_factory: SessionFactory, *, limit: int = 100) -> list[int]:
    """The oldest queued jobs that are due (for a worker that is fed ids, like arq, to catch up)."""
    now = utcnow()
    async with session_factory() as session:
        rows = await session.scalars(
            select(Job.id)
            .where(Job.status == "queued", or_(Job.run_after.is_(None), Job.run_after <= now))
            .order_by(Job.id)
            .limit(limit)
        )
        ids = list(rows)
        await session.commit()
    return ids
