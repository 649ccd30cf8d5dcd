"""Submitting a solution: store it, run it with no transaction open, grade it, record what it earned.

Three steps, because the sandbox run is external I/O and on SQLite every transaction takes the write
lock (BEGIN IMMEDIATE):
1. in the request's transaction, the submission is stored as `running` and COMMITTED (it must survive a
   crash or a sandbox failure, like the chat's user message);
2. the code runs in the sandbox (and the reference solution too, the first time, for the efficiency
   baseline) and is reviewed (the LLM, when configured) with no transaction open;
3. one short transaction writes the result, completes the exercise and calls the progress engine, so the
   completion and everything it earns commit together (the request commits it).
The LLM budget (services/llm_gateway.py) rides on the two transactions: today's tokens are read in the
first, what the review cost is written in the third (on its own if the third fails).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, and_, case, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import utcnow
from backend.errors import AppError, ServiceUnavailable
from backend.integrations.llm import LLM
from backend.integrations.sandbox import RunResult, Sandbox, SandboxBusy, SandboxUnavailable, languages
from backend.integrations.sandbox.analysis import quality_of
from backend.models import User
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.models.progress import Achievement
from backend.services import difficulty as difficulty_service
from backend.services import exercises as exercises_service
from backend.services import grading
from backend.services import learner as learner_service
from backend.services import progress as progress_service
from backend.services.llm_gateway import BudgetedLLM
from backend.services.submissions.shown import result_rows, shown_output, visible_first

log = structlog.get_logger(__name__)

ABANDONED_FEEDBACK = "Grading stopped before it finished (the connection or the server went away); submit again."
RETRY_AFTER_SECONDS = "10"
BUSY_FEEDBACK = "Every sandbox was busy, so this code was not run; submit it again in a moment."
# Longer than any run can take (sandbox timeout, reference run, LLM review): older `running` rows are orphans.
ABANDONED_AFTER = timedelta(minutes=15)


class SandboxDown(ServiceUnavailable):
    code = "sandbox_unavailable"
    detail = "Your code could not be run right now; your submission is saved. Try again shortly."
    keep_changes = True  # the submission stays, marked `error`


class RunFailed(AppError):
    status_code, code = 500, "internal_error"
    detail = "An unexpected error occurred while grading; your submission is saved. Try again."
    keep_changes = True  # the submission stays, marked `error`


@dataclass(frozen=True)
class Streak:
    current: int
    longest: int
    extended: bool  # by this submission


@dataclass(frozen=True)
class SubmitOutcome:
    submission: Submission
    user_exercise: UserExercise
    achievements_unlocked: list[Achievement]
    streak: Streak
    difficulty_change: difficulty_service.Change | None


def real_llm(llm: LLM | None) -> LLM | None:
    """The offline tutor writes no reviews, hints or exercises: it counts as "no LLM configured"."""
    return None if llm is None or llm.provider == "offline" else llm


async def submit(
    session: AsyncSession,
    sandbox: Sandbox,
    llm: LLM | None,
    user: User,
    exercise_id: int,
    code: str,
    time_spent_seconds: int | None,
) -> SubmitOutcome:
    """The three steps of the module's docstring: store, run and review, record."""
    exercise, row, submission = await store(session, llm, user, exercise_id, code)
    budgeted = llm if isinstance(llm, BudgetedLLM) else None
    if budgeted is not None:
        budgeted.hold_usage()  # what the review costs is written with the grade (step 3)
    try:
        graded = await run_and_review(session, sandbox, llm, user, exercise, submission)
        return await record(session, budgeted, user, exercise, row, submission, graded, time_spent_seconds)
    except BaseException:
        if budgeted is not None:  # no grade is written: the cost still is, on its own
            await asyncio.shield(budgeted.release_held())
        raise


# --- 1. store and commit ---------------------------------------------------------------------------


async def store(
    session: AsyncSession, llm: LLM | None, user: User, exercise_id: int, code: str
) -> tuple[Exercise, UserExercise, Submission]:
    """The submission as `running`, committed: it outlives a crash or a sandbox failure. Today's LLM budget
    is read with it, so the review's call needs no transaction of its own for that."""
    exercise, row = await _exercise_and_row(session, user, exercise_id)
    if row is None or row.status == "pending":  # first contact, or a daily assignment not started yet
        row = await exercises_service.user_exercise_for(session, user, exercise, start=True)
    submission = Submission(
        user_id=user.id,
        exercise_id=exercise.id,
        user_exercise_id=row.id,
        code=code,
        status="running",
        tests_total=len(exercise.tests),
        tests_passed=0,
        results=[],
        strengths=[],
        improvements=[],
        stdout="",
        stderr="",
    )
    session.add(submission)
    await session.flush()
    if isinstance(llm, BudgetedLLM) and real_llm(llm) is not None:
        await llm.read_budget(session)
    await session.commit()
    return exercise, row, submission


async def _exercise_and_row(
    session: AsyncSession, user: User, exercise_id: int
) -> tuple[Exercise, UserExercise | None]:
    """The exercise if the user may see it (else 404), with the user's row for it when there is one: one
    statement instead of two."""
    found = (
        await session.execute(
            select(Exercise, UserExercise)
            .outerjoin(UserExercise, and_(UserExercise.exercise_id == Exercise.id, UserExercise.user_id == user.id))
            .where(Exercise.id == exercise_id, exercises_service.visible_to(user))
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if found is None:
        raise exercises_service.ExerciseNotFound()
    return found[0], found[1]


# --- 2. run and review, no transaction open --------------------------------------------------------


@dataclass(frozen=True)
class Graded:
    """What the run and the review gave: the rows and output a student may see, the grade's parts."""

    run: RunResult
    reference_ms: int | None  # the reference solution's run time, when it was measured now
    results: list[dict[str, Any]]
    stdout: str
    stderr: str
    review: grading.Review


async def run_and_review(
    session: AsyncSession, sandbox: Sandbox, llm: LLM | None, user: User, exercise: Exercise, submission: Submission
) -> Graded:
    order = visible_first(exercise)
    run, reference_ms = await _run_or_fail(session, sandbox, user, exercise, submission, order)
    results = result_rows(exercise, run, order)
    stdout, stderr = shown_output(exercise, run, order)
    review = await grading.review(
        code=submission.code,
        status=run.status,
        tests_passed=run.tests_passed,
        tests_total=run.tests_total,
        results=results,
        duration_ms=round(run.duration_ms),
        reference_ms=reference_ms or exercise.reference_duration_ms,
        error_line=run.error_line,
        llm=real_llm(llm),
        title=exercise.title,
        description=exercise.description,
        language=exercise.language,
        style_findings=run.style if _checks_style(sandbox, exercise.language) else None,
        static=quality_of(run.quality) if _checks_style(sandbox, exercise.language) else None,
    )
    return Graded(run, reference_ms, results, stdout, stderr, review)


def _checks_style(sandbox: Sandbox, language: str) -> bool:
    """Whether the sandbox checks this language's style (its `style` event is then the runner's own): Python's
    only in our runner (sandbox/analysis.py; Piston's report is not trusted for it, the API checks it then)."""
    if language == "python":
        return sandbox.backend == "local"
    found = languages.graded().get(language)
    return found is not None and found.checks_style


async def _run_or_fail(
    session: AsyncSession, sandbox: Sandbox, user: User, exercise: Exercise, submission: Submission, order: list[int]
) -> tuple[RunResult, int | None]:
    """The run; when there is none, the submission is marked `error` with why, and the error raised."""
    try:
        return await _run(
            sandbox, submission.code, exercise, order, exercise.reference_duration_ms is None, f"user:{user.id}"
        )
    except asyncio.CancelledError:
        # The client went away and Quart cancelled the handler: no answer will be written, so say so
        # now instead of leaving the submission `running` forever.
        submission.status, submission.feedback = "error", ABANDONED_FEEDBACK
        with contextlib.suppress(Exception):
            await asyncio.shield(session.commit())
        raise
    except SandboxBusy:
        # Saturated: the submission is kept as `error` (never graded, nothing counted), and the client is
        # told when to try again; resubmitting is the retry.
        log.warning("exercise.sandbox_busy", submission_id=submission.id)
        submission.status, submission.feedback = "error", BUSY_FEEDBACK
        await session.flush()
        raise SandboxDown(BUSY_FEEDBACK, headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    except SandboxUnavailable:
        log.error("exercise.sandbox_unavailable", submission_id=submission.id)
        submission.status, submission.feedback = "error", "The sandbox was unavailable; this code was not run."
        await session.flush()
        raise SandboxDown(headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    except Exception as error:  # a bug, not the student's fault: never leave the submission `running`
        log.exception("exercise.run_failed", submission_id=submission.id)
        submission.status, submission.feedback = "error", "Your code could not be graded; try again."
        await session.flush()
        raise RunFailed() from error


async def _run(
    sandbox: Sandbox, code: str, exercise: Exercise, order: list[int], measure_reference: bool, user_key: str
) -> tuple[RunResult, int | None]:
    """The submission's run (its tests in `order`), and the reference solution's run time when unknown.

    `user_key` queues the run fairly (one running per user); the reference run queues as the exercise's."""
    tests = [exercise.tests[index] for index in order]

    def run_code(source: str, user: str) -> Awaitable[RunResult]:
        if exercise.language == "python":
            return sandbox.run(source, tests, user=user)
        # Graded in the exercise's language, on its neutral cases, through the same runner.
        return languages.grade_in(sandbox, exercise.language, source, tests, user=user)

    if not measure_reference:
        return await run_code(code, user_key), None
    run, reference = await asyncio.gather(
        run_code(code, user_key), run_code(exercise.solution, f"reference:{exercise.id}")
    )
    if reference.status != "passed":
        log.warning("exercise.reference_failed", exercise_id=exercise.id, status=reference.status)
        return run, None
    return run, round(reference.duration_ms)


# --- 3. record, in one short transaction (the request commits it) ----------------------------------


async def record(
    session: AsyncSession,
    llm: BudgetedLLM | None,
    user: User,
    exercise: Exercise,
    row: UserExercise,
    submission: Submission,
    graded: Graded,
    time_spent_seconds: int | None,
) -> SubmitOutcome:
    now = utcnow()
    write_result(exercise, submission, graded)
    await count_submission(session, user, row, graded.review.grade, time_spent_seconds, now)
    completed = graded.run.status == "passed" and row.status != "completed"
    unlocked: list[Achievement] = []
    change = None
    streak = Streak(user.streak_today, user.longest_streak, extended=False)
    if completed:
        unlocked, streak, change = await complete(session, user, exercise, row, submission, graded.review.grade, now)
    await learner_service.record_graded(
        session, user, exercise=exercise, row=row, submission_id=submission.id, run=graded.run,
        style_issues=graded.review.issues, completed=completed, grade=graded.review.grade,
    )  # fmt: skip
    if llm is not None:
        await llm.write_held(session)
    await session.flush()
    log.info(
        "exercise.submitted",
        submission_id=submission.id,
        exercise_id=exercise.id,
        status=graded.run.status,
        grade=graded.review.grade,
        duration_ms=graded.run.duration_ms,
    )
    return SubmitOutcome(submission, row, unlocked, streak, change)


def write_result(exercise: Exercise, submission: Submission, graded: Graded) -> None:
    run, review = graded.run, graded.review
    if graded.reference_ms is not None:
        exercise.reference_duration_ms = graded.reference_ms
    submission.status = run.status
    submission.tests_passed, submission.tests_total = run.tests_passed, run.tests_total
    submission.results, submission.stdout, submission.stderr = graded.results, graded.stdout, graded.stderr
    submission.duration_ms, submission.grade, submission.rubric = round(run.duration_ms), review.grade, review.rubric
    submission.feedback, submission.strengths, submission.improvements = (
        review.feedback,
        review.strengths,
        review.improvements,
    )


async def count_submission(
    session: AsyncSession, user: User, row: UserExercise, grade: float, time_spent_seconds: int | None, now: datetime
) -> None:
    """The exercise's counters and the day's submissions, under the locks that make "complete once" exact.

    One UPDATE ... RETURNING counts the submission and reloads the row (hints or a concurrent submission may
    have changed it meanwhile); the row stays locked until the commit, so a concurrent submission of the
    same exercise waits and then sees it completed."""
    best = case(
        (UserExercise.best_grade.is_(None) | (UserExercise.best_grade < grade), grade), else_=UserExercise.best_grade
    )
    counted = await session.scalars(
        update(UserExercise)
        .where(UserExercise.id == row.id)
        .values(
            submissions_count=UserExercise.submissions_count + 1,
            time_spent_seconds=UserExercise.time_spent_seconds + (time_spent_seconds or 0),
            best_grade=best,
        )
        .returning(UserExercise),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if counted.one_or_none() is None:  # deleted meanwhile, with the exercise
        raise exercises_service.ExerciseNotFound()
    await progress_service.record_submission(session, user, at=now)


async def complete(
    session: AsyncSession,
    user: User,
    exercise: Exercise,
    row: UserExercise,
    submission: Submission,
    grade: float,
    now: datetime,
) -> tuple[list[Achievement], Streak, difficulty_service.Change | None]:
    """The first passing run completes the exercise: what that earns (achievements, the streak) and the
    difficulty that follows."""
    row.status, row.completed_at = "completed", now
    completion = await progress_service.record_completion(
        session,
        user,
        completion_key=f"submission:{submission.id}",
        exercise_id=exercise.id,
        topics=list(exercise.topics),
        difficulty=exercise.difficulty,
        grade=grade,
        hints_used=row.hints_used,
        time_spent_seconds=row.time_spent_seconds,
        at=now,
    )
    streak = Streak(completion.streak_after, completion.longest_streak, completion.extended)
    outcome = difficulty_service.outcome_of(completed=True, grade=grade, hints_used=row.hints_used)
    change = await difficulty_service.record_outcome(session, user, row, outcome)
    return completion.achievements_unlocked, streak, change


async def fail_abandoned(session_factory: async_sessionmaker[AsyncSession]) -> int:
    """Mark submissions a dead process left `running` as `error` (run at start-up); returns how many.

    Best effort: a database that is not up yet must not stop the server from starting."""
    try:
        async with session_factory() as session:
            result = await session.execute(
                update(Submission)
                .where(Submission.status == "running", Submission.created_at < utcnow() - ABANDONED_AFTER)
                .values(status="error", feedback=ABANDONED_FEEDBACK)
            )
            await session.commit()
    except (SQLAlchemyError, OSError) as error:
        log.warning("exercise.abandoned_sweep_failed", error_type=type(error).__name__)
        return 0
    swept = cast(CursorResult[Any], result).rowcount  # an UPDATE's result
    if swept:
        log.warning("exercise.abandoned_submissions", count=swept)
    return swept
