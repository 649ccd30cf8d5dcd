"""A saturated sandbox: runs queue for a bounded time, then the request answers 503 instead of piling up.

Decided: a submission that never got a slot is kept, marked `error` with feedback saying it was not run,
and the answer is 503 `sandbox_unavailable` with Retry-After; submitting again is the retry (nothing is
counted: no grade, no streak, no attempt). Observed: with one slot held by an endless loop, a second
submission waits SANDBOX_QUEUE_TIMEOUT_SECONDS and then gets that 503, while the first one still ends
normally as `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from backend.app import create_app
from tests.api.test_exercises import ENDLESS, EXERCISES, SOLUTION, add_exercise, sign_in
from tests.conftest import make_settings
from tests.runners import start_runner

QUEUE_TIMEOUT_SECONDS = 1.0


@pytest.fixture
async def one_slot_app(sqlite_url: str) -> AsyncIterator[Quart]:
    runner = start_runner(sandbox_max_concurrency=1)
    settings = make_settings(
        database_url=sqlite_url,
        sandbox_url=runner.url,
        sandbox_queue_timeout_seconds=QUEUE_TIMEOUT_SECONDS,
        sandbox_timeout_seconds=4,
    )
    application = create_app(settings)
    try:
        async with application.test_app():
            yield application
    finally:
        runner.stop()


async def test_saturated_sandbox_answers_503_after_the_queue_timeout_and_keeps_the_submission(
    one_slot_app: Quart,
) -> None:
    client = one_slot_app.test_client()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(one_slot_app, reference_duration_ms=50)  # no reference run needed
    submit_url = f"{EXERCISES}/{exercise_id}/submit"

    endless = asyncio.create_task(client.post(submit_url, json={"code": ENDLESS}, headers=headers))
    sandbox = one_slot_app.extensions["sandbox"]
    while (await sandbox.status()).get("running") != 1:  # noqa: ASYNC110 - polls the runner process
        await asyncio.sleep(0.02)

    refused = await client.post(submit_url, json={"code": SOLUTION}, headers=headers)
    problem = await refused.get_json()
    assert refused.status_code == 503, problem
    assert problem["code"] == "sandbox_unavailable" and int(refused.headers["Retry-After"]) > 0
    assert endless.done() is False  # it was refused while the slot was still busy: a bounded wait

    finished = await endless
    assert finished.status_code == 200
    assert (await finished.get_json())["submission"]["status"] == "timeout"

    listed = await (await client.get(f"{EXERCISES}/{exercise_id}/submissions", headers=headers)).get_json()
    statuses = sorted(item["status"] for item in listed["items"])
    assert statuses == ["error", "timeout"]
    refused_row = next(item for item in listed["items"] if item["status"] == "error")
    assert "busy" in refused_row["feedback"] and refused_row["grade"] is None  # never graded

    retried = await client.post(submit_url, json={"code": SOLUTION}, headers=headers)  # the slot is free again
    assert (await retried.get_json())["submission"]["status"] == "passed"
