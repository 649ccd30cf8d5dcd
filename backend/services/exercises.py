"""Exercises: what a user may see, the catalog seed, admin writes, assignments, history and the export.

A user sees the public catalog plus the exercises generated for them; anyone else's generated exercise
is indistinguishable from a missing one. The solution and hidden tests stay in this layer: responses are
built from the read schemas, which have no such fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Row, and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.errors import Conflict, NotFound
from backend.integrations.sandbox.languages import graded
from backend.models import User
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.services.achievements import SeedResult

log = structlog.get_logger(__name__)

OPEN_STATUSES = ("pending", "in_progress")


class ExerciseNotFound(NotFound):
    detail = "Exercise not found."


class SlugTaken(Conflict):
    detail = "An exercise with this slug already exists."


# --- reading ---------------------------------------------------------------------------------------


def visible_to(user: User) -> ColumnElement[bool]:
    """The catalog and the user's own exercises, in the languages graded here: an exercise in a language
    whose toolchain is missing is never offered."""
    return and_(
        or_(Exercise.visibility == "public", Exercise.author_id == user.id),
        Exercise.language.in_(list(graded())),
    )


async def in_language(session: AsyncSession, user: User, exercise: Exercise, language: str) -> Exercise:
    """The same catalog exercise in `language` (`?language=` on a read); 404 when it has no such part."""
    if exercise.language == language.lower():
        return exercise
    other = None
    if exercise.family is not None:
        other = await session.scalar(
            select(Exercise).where(
                Exercise.family == exercise.family, Exercise.language == language.lower(), visible_to(user)
            )
        )
    if other is None:
        raise ExerciseNotFound()
    return other


async def get_visible(session: AsyncSession, user: User, exercise_id: int) -> Exercise:
    exercise = await session.scalar(select(Exercise).where(Exercise.id == exercise_id, visible_to(user)))
    if exercise is None:
        raise ExerciseNotFound()
    return exercise


# --- user exercises --------------------------------------------------------------------------------


async def find_user_exercise(session: AsyncSession, user: User, exercise_id: int) -> UserExercise | None:
    return await session.scalar(
        select(UserExercise)
        .where(UserExercise.user_id == user.id, UserExercise.exercise_id == exercise_id)
        .execution_options(populate_existing=True)
    )


async def user_exercise_for(session: AsyncSession, user: User, exercise: Exercise, *, start: bool) -> UserExercise:
    """The user's row for `exercise`, created on first contact (race-safe on the unique key).
    With `start`, a pending one becomes in progress."""
    row = await find_user_exercise(session, user, exercise.id)
    if row is None:
        try:
            async with session.begin_nested():
                row = UserExercise(
                    user_id=user.id,
                    exercise_id=exercise.id,
                    status="pending",
                    hints_used=0,
                    submissions_count=0,
                    time_spent_seconds=0,
                )
                session.add(row)
        except IntegrityError:  # a concurrent request created it first
            row = await find_user_exercise(session, user, exercise.id)
            assert row is not None
    if start and row.status == "pending":
        row.status, row.started_at = "in_progress", utcnow()
    await session.flush()
    return row


# --- catalog seed and admin writes -----------------------------------------------------------------


def _spec_values(spec: Any) -> dict[str, Any]:
    return {
        "title": spec.title,
        "description": spec.description,
        "starter_code": spec.starter_code,
        "language": spec.language,
        "difficulty": spec.difficulty,
        "exercise_type": spec.exercise_type,
        "topics": list(spec.topics),
        "examples": [dict(example) for example in spec.examples],
        "tests": [dict(test) for test in spec.tests],
        "hints": list(spec.hints),
        "solution": spec.solution,
        "family": spec.slug,
    }


def _variant_values(spec: Any, variant: Any) -> dict[str, Any]:
    """One more language of a catalog exercise: its own code and words, graded on the neutral cases."""
    return {
        **_spec_values(spec),
        "description": variant.description,
        "starter_code": variant.starter_code,
        "language": variant.language,
        "examples": [dict(case) for case in variant.examples],
        "tests": [dict(case) for case in variant.tests],
        "hints": list(variant.hints),
        "solution": variant.solution,
    }


async def seed_exercises(session: AsyncSession) -> SeedResult:
    """Upsert the authored catalog by slug, each exercise in every language it has (`<slug>-<language>`
    for the ones besides Python). Idempotent; never deletes (history keeps its exercises).
    A changed solution forgets its measured run time, which is then measured again on the next grade."""
    from backend.content.catalog import load_catalog  # data files: read only when seeding

    existing = {row.slug: row for row in await session.scalars(select(Exercise).where(Exercise.author_id.is_(None)))}
    created = updated = 0
    entries = [(spec.slug, _spec_values(spec)) for spec in load_catalog()]
    for spec in load_catalog():
        for language, variant in spec.variants.items():
            entries.append((f"{spec.slug}-{language}", _variant_values(spec, variant)))
    for slug, values in entries:
        row = existing.get(slug)
        if row is None:
            session.add(Exercise(slug=slug, visibility="public", generated_by_ai=False, **values))
            created += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            if row.solution != values["solution"] or row.tests != values["tests"]:
                row.reference_duration_ms = None
            for key, value in values.items():
                setattr(row, key, value)
            updated += 1
    await session.flush()
    return SeedResult(created=created, updated=updated, unchanged=len(entries) - created - updated)


async def create_exercise(session: AsyncSession, values: dict[str, Any]) -> Exercise:
    if await session.scalar(select(Exercise.id).where(Exercise.slug == values["slug"])) is not None:
        raise SlugTaken()
    exercise = Exercise(visibility="public", generated_by_ai=False, **values)
    session.add(exercise)
    await session.flush()
    log.info("exercise.created", exercise_id=exercise.id, slug=exercise.slug)
    return exercise


async def update_exercise(session: AsyncSession, exercise_id: int, values: dict[str, Any]) -> Exercise:
    exercise = await session.get(Exercise, exercise_id)
    if exercise is None:
        raise ExerciseNotFound()
    if values["slug"] != exercise.slug and await session.scalar(
        select(Exercise.id).where(Exercise.slug == values["slug"])
    ):
        raise SlugTaken()
    if values["solution"] != exercise.solution or values["tests"] != exercise.tests:
        exercise.reference_duration_ms = None
    for key, value in values.items():
        setattr(exercise, key, value)
    await session.flush()
    log.info("exercise.updated", exercise_id=exercise.id)
    return exercise


async def delete_exercise(session: AsyncSession, exercise_id: int) -> None:
    """Deletes the exercise with its assignments and submissions (ON DELETE CASCADE)."""
    result = await session.execute(delete(Exercise).where(Exercise.id == exercise_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ExerciseNotFound()
    log.info("exercise.deleted", exercise_id=exercise_id)


# --- export ----------------------------------------------------------------------------------------


async def export_exercises(session: AsyncSession, user: User) -> Sequence[Row[*tuple[Any, ...]]]:
    """The user's exercise rows with each exercise's slug and title (the export's `ExportedExercise`)."""
    rows = await session.execute(
        select(*UserExercise.__table__.columns, Exercise.slug, Exercise.title)
        .join(Exercise, Exercise.id == UserExercise.exercise_id)
        .where(UserExercise.user_id == user.id)
        .order_by(UserExercise.id)
    )
    return rows.all()


async def export_submissions(session: AsyncSession, user: User) -> Sequence[Submission]:
    rows = await session.scalars(select(Submission).where(Submission.user_id == user.id).order_by(Submission.id))
    return rows.all()
