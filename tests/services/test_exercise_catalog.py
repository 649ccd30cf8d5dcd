"""The authored catalog against the real sandbox, and its seeding.

Every reference solution must pass all of its tests and every starter code must not, so the catalog
cannot rot. The runs go concurrently (the sandbox queues them behind its concurrency limit).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from backend.content.catalog import ExerciseSpec, load_catalog
from backend.db import create_engine, create_session_factory
from backend.integrations.sandbox import RunResult, create_sandbox
from backend.models.exercises import Exercise
from backend.services.exercises import seed_exercises
from tests.conftest import make_settings


def describe(spec: ExerciseSpec, run: RunResult) -> str:
    failing = [f"{outcome.name}: {outcome.message}" for outcome in run.results if not outcome.passed]
    return f"{spec.slug}: {run.status} {run.tests_passed}/{run.tests_total} {failing[:3]} {run.stderr[:300]}"


async def test_catalog_solutions_pass_and_starters_fail_in_the_sandbox(sqlite_url: str) -> None:
    specs = load_catalog()
    sandbox = create_sandbox(make_settings(database_url=sqlite_url))
    try:
        solutions, starters = await asyncio.gather(
            asyncio.gather(*(sandbox.run(spec.solution, spec.tests) for spec in specs)),
            asyncio.gather(*(sandbox.run(spec.starter_code, spec.tests) for spec in specs)),
        )
    finally:
        await sandbox.close()
    broken = [describe(spec, run) for spec, run in zip(specs, solutions, strict=True) if run.status != "passed"]
    assert broken == [], broken
    solved = [spec.slug for spec, run in zip(specs, starters, strict=True) if run.status == "passed"]
    assert solved == [], f"starter code already passes: {solved}"
    # The first visible examples must be among the hidden tests' format (call or program).
    for spec in specs:
        assert all("call" in example or "stdin" in example for example in spec.examples), spec.slug


async def test_seed_exercises_is_idempotent(sqlite_url: str) -> None:
    engine = create_engine(make_settings(database_url=sqlite_url))
    factory = create_session_factory(engine)
    # One row per exercise and language (`<slug>-javascript`...), all of one family.
    count = sum(1 + len(spec.variants) for spec in load_catalog())
    try:
        async with factory() as session:
            first = await seed_exercises(session)
            await session.commit()
        async with factory() as session:
            second = await seed_exercises(session)
            await session.commit()
            stored = await session.scalar(select(func.count()).select_from(Exercise))
    finally:
        await engine.dispose()
    assert (first.created, first.updated, first.unchanged) == (count, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, count)
    assert stored == count
    assert count > len(load_catalog())
