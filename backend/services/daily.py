"""The daily exercise and skipping.

At most one assignment per user per local day: the unique key (user_id, assigned_for) settles a race
between two first requests of the day (the loser's insert fails inside a SAVEPOINT and it reads the
winner's row). An open assignment from an earlier day is served before a new one is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Generic

import structlog
from sqlalchemy import ColumnElement, and_, bindparam, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.db import ReadStatement, fetch, utcnow
from backend.errors import Conflict, NotFound
from backend.integrations.sandbox import languages
from backend.models import User
from backend.models.exercises import Exercise, UserExercise
from backend.services import difficulty as difficulty_service
from backend.services import exercise_reads
from backend.services import exercises as exercises_service
from backend.services import learner as learner_service
from backend.services.exercise_reads import View, ViewCache
from backend.services.progress import today

log = structlog.get_logger(__name__)

FALLBACK_LANGUAGE = "python"  # every catalog exercise exists in Python
SKIPS_PER_WEEK = 2
SKIP_WINDOW = timedelta(days=7)


class NoExerciseLeft(NotFound):
    detail = "There is no exercise left to assign; try generating one."


class SkipLimitReached(Conflict):
    detail = f"You can skip {SKIPS_PER_WEEK} exercises per 7 days."


class CannotSkip(Conflict):
    detail = "Only an exercise you have open (assigned or started) can be skipped."


@dataclass(frozen=True)
class Assignment:
    exercise: Exercise
    user_exercise: UserExercise
    is_new: bool
    language_note: str | None = None  # why the exercise is not in the student's language


async def _assignment_on(session: AsyncSession, user: User, day: object) -> UserExercise | None:
    return await session.scalar(
        select(UserExercise)
        .where(UserExercise.user_id == user.id, UserExercise.assigned_for == day)
        .execution_options(populate_existing=True)
    )


async def _choose(session: AsyncSession, user: User) -> Exercise | None:
    """An exercise the user has never had, in their language (else the catalog's), nearest the adaptive
    difficulty, preferring topics they have not done yet."""
    language, _ = daily_language(user)
    seen = select(UserExercise.exercise_id).where(UserExercise.user_id == user.id)
    candidates = list(
        await session.scalars(
            select(Exercise)
            .where(exercises_service.visible_to(user), Exercise.language == language, Exercise.id.not_in(seen))
            .order_by(Exercise.id)
        )
    )
    if not candidates:
        return None
    done_topics: set[str] = set()
    for topics in await session.scalars(
        select(Exercise.topics).join(UserExercise).where(UserExercise.user_id == user.id)
    ):
        done_topics.update(topic.lower() for topic in topics)
    level = difficulty_service.LEVELS.index(await difficulty_service.current(session, user))
    # The learner model: a weak topic is preferred at the same difficulty distance, and a topic assigned on
    # each of the two previous days is not assigned a third day running (unless nothing else is left).
    weak = await learner_service.weak_topics(session, user.id)
    blocked = await learner_service.blocked_topics(session, user.id, today(user))
    allowed = [e for e in candidates if not blocked & {topic.lower() for topic in e.topics}] or candidates

    def rank(exercise: Exercise) -> tuple[int, int, int, int]:
        topics = {topic.lower() for topic in exercise.topics}
        fresh = len(topics - done_topics)
        return (
            abs(difficulty_service.LEVELS.index(exercise.difficulty) - level),
            -len(topics & weak),
            -fresh,
            exercise.id,
        )

    return min(allowed, key=rank)


def _assignment(user: User, exercise: Exercise, row: UserExercise, is_new: bool) -> Assignment:
    _, note = daily_language(user)
    return Assignment(exercise, row, is_new, note if note and exercise.language == FALLBACK_LANGUAGE else None)


def daily_language(user: User) -> tuple[str, str | None]:
    """The language of the user's daily exercise, and why it is not theirs (None when it is): their
    onboarding language when exercises are graded in it here, else Python."""
    wanted = (user.programming_language or "").strip().lower()
    if not wanted or wanted in languages.graded():
        return wanted or FALLBACK_LANGUAGE, None
    offered = ", ".join(language.title for language in languages.graded().values())
    return FALLBACK_LANGUAGE, (
        f"Exercises are not graded in {user.programming_language} on this server yet (graded here: {offered}),"
        " so this one is in Python."
    )


async def _current(session: AsyncSession, user: User, day: date) -> tuple[UserExercise, Exercise] | None:
    """The assignment to serve, with its exercise, in one query: the oldest open one from an earlier day,
    else today's (today's date sorts after every earlier one)."""
    found = await session.execute(
        select(UserExercise, Exercise)
        .join(Exercise, Exercise.id == UserExercise.exercise_id)
        .where(
            UserExercise.user_id == user.id,
            or_(
                and_(
                    UserExercise.assigned_for < day,
                    UserExercise.status.in_(exercises_service.OPEN_STATUSES),
                ),
                UserExercise.assigned_for == day,
            ),
        )
        .order_by(UserExercise.assigned_for)
        .limit(1)
    )
    row = found.first()
    return (row[0], row[1]) if row is not None else None


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through a call, on the hottest read
class DailyView(Generic[View]):
    """An assignment that exists, read without a transaction: its exercise's cached view and its own row."""

    exercise: View
    user_exercise: dict[str, Any]  # the row of `user_exercises`
    language_note: str | None
    is_new: bool = False


def _open_or_today() -> ColumnElement[bool]:
    open_statuses = or_(*(UserExercise.status == literal(status) for status in exercises_service.OPEN_STATUSES))
    return or_(
        and_(UserExercise.assigned_for < bindparam("day"), open_statuses), UserExercise.assigned_for == bindparam("day")
    )


# `_current`'s choice for the read path, built once: the assignment's columns and its exercise's version.
CURRENT_ASSIGNMENT = ReadStatement(
    select(
        *UserExercise.__table__.columns,
        Exercise.updated_at.label("exercise_updated_at"),
        Exercise.language.label("exercise_language"),
    )
    .join(Exercise, Exercise.id == UserExercise.exercise_id)
    .where(UserExercise.user_id == bindparam("user_id"), _open_or_today())
    .order_by(UserExercise.assigned_for)
    .limit(1)
)


async def current(connection: AsyncConnection, user: User, views: ViewCache[View]) -> DailyView[View] | None:
    """The assignment `daily` would serve, read without writing anything, or None when it must choose one:
    one query, and the exercise's view from `views` while its row is unchanged."""
    rows = await fetch(connection, CURRENT_ASSIGNMENT, {"user_id": user.id, "day": today(user)})
    if not rows:
        return None
    row = rows[0]
    exercise = await exercise_reads.cached_view(connection, views, row["exercise_id"], row["exercise_updated_at"])
    _, note = daily_language(user)
    note = note if note and row["exercise_language"] == FALLBACK_LANGUAGE else None
    return DailyView(exercise, dict(row), note)


async def daily(session: AsyncSession, user: User) -> Assignment:
    day = today(user)
    current = await _current(session, user, day)
    if current is not None:
        row, exercise = current
        return _assignment(user, exercise, row, False)

    chosen = await _choose(session, user)
    if chosen is None:
        raise NoExerciseLeft()
    exercise = chosen
    try:
        async with session.begin_nested():
            row = UserExercise(
                user_id=user.id,
                exercise_id=exercise.id,
                assigned_for=day,
                status="pending",
                hints_used=0,
                submissions_count=0,
                time_spent_seconds=0,
            )
            session.add(row)
    except IntegrityError:  # a concurrent first request of the day won: serve its assignment
        won = await _assignment_on(session, user, day)
        if won is None:
            raise
        return _assignment(user, await session.get_one(Exercise, won.exercise_id), won, False)
    log.info("exercise.assigned", user_id=user.id, exercise_id=exercise.id, day=day.isoformat())
    return _assignment(user, exercise, row, True)


async def skips_in_window(session: AsyncSession, user: User) -> int:
    since = utcnow() - SKIP_WINDOW
    count = await session.scalar(
        select(func.count()).where(UserExercise.user_id == user.id, UserExercise.skipped_at >= since)
    )
    return count or 0


async def skip(session: AsyncSession, user: User, exercise_id: int) -> tuple[UserExercise, int]:
    """Skip an open exercise: 409 on a completed one or after 2 skips in 7 days. Counts as a struggle."""
    exercise = await exercises_service.get_visible(session, user, exercise_id)
    row = await exercises_service.find_user_exercise(session, user, exercise.id)
    if row is None or row.status not in exercises_service.OPEN_STATUSES:
        raise CannotSkip()
    # Serialise this user's skips (row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already does).
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    used = await skips_in_window(session, user)
    if used >= SKIPS_PER_WEEK:
        raise SkipLimitReached()
    row.status, row.skipped_at = "skipped", utcnow()
    await difficulty_service.record_outcome(
        session, user, row, difficulty_service.outcome_of(completed=False, grade=None, hints_used=row.hints_used)
    )
    log.info("exercise.skipped", user_id=user.id, exercise_id=exercise.id)
    return row, SKIPS_PER_WEEK - used - 1
