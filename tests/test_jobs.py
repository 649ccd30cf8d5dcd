"""Background jobs on the in-process backend, on both stacks: rows claimed, run, recorded, resumed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart

from backend import jobs
from backend.app import create_app
from backend.config import Settings
from backend.db import create_session_factory, get_session, utcnow
from backend.jobs import JobContext
from backend.models import Job

RECORDED: list[dict[str, Any]] = []
STARTED = asyncio.Event()


@pytest.fixture(autouse=True)
def test_job_kinds() -> Iterator[None]:
    """Two job kinds for these tests only: one that records its payload, one that raises."""

    async def record(context: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        RECORDED.append(payload)

    async def explode(context: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("the handler broke")

    async def block(context: JobContext, payload: dict[str, Any]) -> None:
        STARTED.set()
        await asyncio.Event().wait()

    RECORDED.clear()
    jobs.JOB_HANDLERS.update({"test_record": record, "test_explode": explode, "test_block": block})
    yield
    for kind in ("test_record", "test_explode", "test_block"):
        jobs.JOB_HANDLERS.pop(kind, None)


def jobs_app(settings: Settings) -> Quart:
    application = create_app(settings)

    @application.post("/test/jobs/<kind>")
    async def queue_test_job(kind: str) -> dict[str, int]:
        row = await jobs.enqueue(get_session(), kind, {"n": 1})
        return {"id": row.id}

    return application


@pytest.fixture
async def app(stack_settings: Settings) -> AsyncIterator[Quart]:
    application = jobs_app(stack_settings)
    async with application.test_app():
        yield application


async def job_row(app: Quart, job_id: int) -> Job:
    async with app.extensions["db_session_factory"]() as session:
        return await session.get_one(Job, job_id)


async def wait_for_status(app: Quart, job_id: int, *statuses: str, seconds: float = 5) -> Job:
    for _ in range(int(seconds / 0.02)):
        row = await job_row(app, job_id)
        if row.status in statuses:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} is {row.status}, not {statuses}")


async def test_queued_job_is_run_by_the_inprocess_worker_after_commit(app: Quart) -> None:
    response = await app.test_client().post("/test/jobs/test_record")
    job_id = (await response.get_json())["id"]
    row = await wait_for_status(app, job_id, "completed", "failed", seconds=2)  # woken, not polled (5 s)
    assert row.status == "completed" and row.error is None
    assert row.attempts == 1 and row.started_at is not None and row.finished_at is not None
    assert RECORDED == [{"n": 1}]


async def test_job_that_raises_ends_failed_with_reason(app: Quart) -> None:
    job_id = (await (await app.test_client().post("/test/jobs/test_explode")).get_json())["id"]
    row = await wait_for_status(app, job_id, "completed", "failed")
    assert row.status == "failed"
    assert row.error == "RuntimeError: the handler broke"


def metric(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_show_the_queue_depth_and_each_run_time(app: Quart) -> None:
    client = app.test_client()
    runs = 'job_duration_seconds_count{kind="test_record",outcome="completed"}'
    before = metric(await (await client.get("/metrics")).get_data(as_text=True), runs)
    job_id = (await (await client.post("/test/jobs/test_record")).get_json())["id"]
    await wait_for_status(app, job_id, "completed")
    async with app.extensions["db_session_factory"]() as session:  # one waiting for tomorrow
        session.add(Job(kind="test_record", payload={}, status="queued", run_after=utcnow() + timedelta(days=1)))
        await session.commit()
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert metric(text, runs) == before + 1
    assert metric(text, "jobs_queued") == 1


class RecordingBackend:
    """A jobs backend that only writes down what it is told (the announcing is what is under test)."""

    def __init__(self) -> None:
        self.notified: list[int | None] = []

    async def start(self) -> None:
        return None

    async def notify(self, job_id: int | None = None) -> None:
        self.notified.append(job_id)

    async def stop(self) -> None:
        return None


async def test_a_job_queued_outside_a_request_is_announced_by_its_commit(app: Quart) -> None:
    async with app.extensions["db_session_factory"]() as session:
        row = await jobs.enqueue(session, "test_record", {"n": 5})
        await session.commit()
    done = await wait_for_status(app, row.id, "completed", "failed", seconds=2)  # woken, not polled (5 s)
    assert done.status == "completed" and RECORDED == [{"n": 5}]


async def test_jobs_are_announced_after_their_commit_and_never_after_a_rollback(app: Quart) -> None:
    backend = RecordingBackend()
    factory = create_session_factory(app.extensions["db_engine"])
    jobs.announce_through(factory, backend)
    async with factory() as session:
        kept = (await jobs.enqueue(session, "test_record", {"n": 1})).id
        async with session.begin_nested():  # a savepoint ending does not end the transaction
            session.add(Job(kind="test_record", payload={}, status="completed"))
        assert backend.notified == []  # not before the commit
        await session.commit()
        dropped = (await jobs.enqueue(session, "test_record", {"n": 2})).id
        await session.rollback()
        await session.commit()  # a later commit of the same session does not announce the rolled-back job
    await asyncio.sleep(0.05)  # announcing is a task of its own
    assert backend.notified == [kept] and dropped != kept


async def test_enqueue_unknown_kind_is_refused(app: Quart) -> None:
    async with app.extensions["db_session_factory"]() as session:
        with pytest.raises(jobs.UnknownJobKind):
            await jobs.enqueue(session, "no_such_kind", {})


async def test_jobs_left_by_a_dead_worker_are_resumed_after_restart(stack_settings: Settings) -> None:
    first = jobs_app(stack_settings)
    async with first.test_app(), first.extensions["db_session_factory"]() as session:
        abandoned = Job(kind="test_record", payload={"n": 2}, status="running", attempts=1)
        abandoned.started_at = utcnow() - timedelta(seconds=jobs.LEASE_SECONDS + 60)
        recent = Job(kind="test_record", payload={"n": 3}, status="running", attempts=1, started_at=utcnow())
        waiting = Job(kind="test_record", payload={"n": 4}, status="queued")
        session.add_all([abandoned, recent, waiting])
        await session.commit()
        ids = (abandoned.id, recent.id, waiting.id)
        # this app's worker already started: the rows appeared behind its back, as from another process
    RECORDED.clear()

    second = jobs_app(stack_settings)
    async with second.test_app():
        await second.extensions[jobs.JOBS_EXTENSION].notify()
        assert (await wait_for_status(second, ids[0], "completed")).attempts == 2
        assert (await wait_for_status(second, ids[2], "completed")).attempts == 1
        # a job another live worker is running (within its lease) is left alone
        assert (await job_row(second, ids[1])).status == "running"
    assert sorted(item["n"] for item in RECORDED) == [2, 4]


async def test_job_abandoned_too_often_ends_failed(app: Quart) -> None:
    async with app.extensions["db_session_factory"]() as session:
        row = Job(kind="test_record", payload={}, status="running", attempts=jobs.MAX_ATTEMPTS)
        row.started_at = utcnow() - timedelta(seconds=jobs.LEASE_SECONDS + 60)
        session.add(row)
        await session.commit()
    context = JobContext(settings=app.config["SETTINGS"], session_factory=app.extensions["db_session_factory"])
    assert await jobs.requeue_abandoned(context) == 0
    failed = await job_row(app, row.id)
    assert failed.status == "failed" and failed.error == jobs.ABANDONED_ERROR
    assert RECORDED == []


async def test_job_cut_off_by_a_stopping_worker_is_queued_again_at_once(app: Quart) -> None:
    session_factory = app.extensions["db_session_factory"]
    async with session_factory() as session:
        # claimed already (by this test, not by the app's own worker)
        row = Job(kind="test_block", payload={}, status="running", attempts=1, started_at=utcnow())
        session.add(row)
        await session.commit()
    context = JobContext(settings=app.config["SETTINGS"], session_factory=session_factory)
    STARTED.clear()
    task = asyncio.create_task(jobs.run(context, row))
    await asyncio.wait_for(STARTED.wait(), timeout=5)
    task.cancel()  # what a stopping worker does to the jobs still running after its grace period
    with pytest.raises(asyncio.CancelledError):
        await task
    released = await job_row(app, row.id)
    assert released.error is None
    # back in the queue, or already taken from it again by the app's own worker
    assert (released.status == "queued" and released.started_at is None) or released.attempts == 2


async def test_job_cut_off_once_too_often_ends_failed_instead_of_looping(app: Quart) -> None:
    session_factory = app.extensions["db_session_factory"]
    async with session_factory() as session:
        row = Job(kind="test_block", payload={}, status="running", attempts=jobs.MAX_ATTEMPTS, started_at=utcnow())
        session.add(row)
        await session.commit()
    context = JobContext(settings=app.config["SETTINGS"], session_factory=session_factory)
    STARTED.clear()
    task = asyncio.create_task(jobs.run(context, row))
    await asyncio.wait_for(STARTED.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    failed = await job_row(app, row.id)
    assert failed.status == "failed" and failed.error == jobs.ABANDONED_ERROR and failed.finished_at is not None
