"""`JOBS_BACKEND=inprocess`: an asyncio worker inside the server (the embedded default).

It starts with the app (`before_serving`): queues again what a dead process left `running`, then runs
queued jobs, at most `concurrency` at a time. A commit that queued a job wakes it at once; it also polls,
so jobs queued by another process or due later are not forgotten. Stopping waits a moment for running
jobs, then cancels them: they stay `running` and are picked up again after the lease by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from backend import jobs
from backend.jobs import JobContext
from backend.models import Job

POLL_SECONDS = 5.0
STOP_GRACE_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = 5.0
MAX_ERROR_BACKOFF_SECONDS = 60.0  # e.g. a database that is not migrated yet: no need to ask every 5 s

log = structlog.get_logger(__name__)


class InProcessJobs:
    def __init__(
        self,
        context: JobContext,
        *,
        concurrency: int = 2,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: int = jobs.LEASE_SECONDS,
    ) -> None:
        self._context = context
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._poll_seconds = poll_seconds
        self._lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._backoff = ERROR_BACKOFF_SECONDS
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self._concurrency)  # bound to the serving loop
        self._loop_task = asyncio.create_task(self._loop(), name="jobs-inprocess")

    async def notify(self, job_id: int | None = None) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._context.close()

    async def _loop(self) -> None:
        recovered = False
        while True:
            try:
                if not recovered:
                    await jobs.requeue_abandoned(self._context, self._lease_seconds)
                    recovered = True
                await self._drain()
            except Exception as error:  # the database is down or not migrated yet: keep serving, retry later
                # No traceback: it says nothing more than the error type, and rendering one (with locals,
                # in the console format) blocks the event loop long enough to fail a readiness probe.
                log.warning("jobs.worker_error", error_type=type(error).__name__, retry_in_s=self._backoff)
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                continue
            self._backoff = ERROR_BACKOFF_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            self._wake.clear()

    async def _drain(self) -> None:
        """Start queued jobs while a slot is free; return when none is left to claim."""
        while True:
            await self._slots.acquire()
            try:
                row = await jobs.claim(self._context.session_factory)
            except BaseException:
                self._slots.release()
                raise
            if row is None:
                self._slots.release()
                return
            task = asyncio.create_task(self._run(row), name=f"job-{row.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, row: Job) -> None:
        try:
            await jobs.run(self._context, row)
        finally:
            self._slots.release()
            self._wake.set()  # a slot is free: look again
