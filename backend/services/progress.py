"""The progress engine: the single source of truth for counters, streaks, skill levels and days.

The exercises and reviews features call `record_completion`, `record_submission` and `record_review`
inside the transaction of the event itself, so the event and what it earns commit or roll back together.
Each locks the user's row first (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE already
serialises writers), which makes read-then-write of the counters exact under concurrent events.

Days and streaks are calendar days in the user's IANA time zone: the same day changes nothing, the next
day adds one, a gap restarts at one, and the longest streak is kept. Working on local `date` values (not
24-hour spans) makes this correct across DST changes.

What the student reads back (the summary, the days) is services/progress_reads.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.models.progress import Achievement, DailyActivity, ExerciseCompletion, TopicSkill, UserProgress
from backend.services import achievements as achievements_service

log = structlog.get_logger(__name__)

# Per-topic skill levels, highest first: (level, minimum completed exercises, minimum average grade).
# Levels only ever go up: one bad day does not take back mastery shown before.
TOPIC_LEVEL_THRESHOLDS: tuple[tuple[str, int, float], ...] = (
    ("expert", 30, 85.0),
    ("advanced", 15, 75.0),
    ("intermediate", 5, 60.0),
    ("beginner", 0, 0.0),
)
LEVEL_RANK = {level: rank for rank, (level, _, _) in enumerate(reversed(TOPIC_LEVEL_THRESHOLDS))}
DEFAULT_DIFFICULTY = {"beginner": "easy", "intermediate": "medium", "advanced": "hard", "expert": "hard"}
PERFECT_GRADE = 100.0
EARLY_HOURS = range(5, 8)  # 05:00–07:59 local: early_bird
LATE_HOURS = (22, 23, 0, 1, 2, 3)  # 22:00–03:59 local: night_owl
TOPIC_MAX_LENGTH = 60


@dataclass(frozen=True)
class CompletionResult:
    """What a completion changed. `recorded` is False for a completion seen before (nothing changed).
    `extended` is True when this was the first completion of its local day, i.e. the streak counted the
    day (one more day, or a new streak of one after a gap)."""

    recorded: bool
    streak_before: int
    streak_after: int
    longest_streak: int
    extended: bool
    achievements_unlocked: list[Achievement] = field(default_factory=list)


# --- time ------------------------------------------------------------------------------------------


def user_zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # validated on the way in; never fail a completion on it
        return ZoneInfo("UTC")


def local_date(user: User, at: datetime) -> date:
    return at.astimezone(user_zone(user)).date()


def today(user: User) -> date:
    return local_date(user, datetime.now(UTC))


def next_streak(current: int, last_active_on: date | None, day: date) -> int:
    if last_active_on is None:
        return 1
    if day <= last_active_on:  # the same day, or a late event for an earlier day: nothing changes
        return current
    if day == last_active_on + timedelta(days=1):
        return current + 1
    return 1


def topic_level(count: int, average: float, current: str = "beginner") -> str:
    for level, minimum_count, minimum_average in TOPIC_LEVEL_THRESHOLDS:
        if count >= minimum_count and average >= minimum_average:
            return level if LEVEL_RANK[level] >= LEVEL_RANK[current] else current
    return current


def default_difficulty(skill_level: str | None) -> str:
    return DEFAULT_DIFFICULTY.get(skill_level or "beginner", "easy")


# --- writes (inside the caller's transaction) ------------------------------------------------------


async def lock_user(session: AsyncSession, user: User) -> User:
    """Take the user's row lock and reload it, so counters read here are the latest committed ones."""
    await session.flush()  # reloading below must not discard the caller's pending changes to the user
    result = await session.scalars(
        select(User).where(User.id == user.id).with_for_update().execution_options(populate_existing=True)
    )
    return result.one()


async def _progress_row(session: AsyncSession, user: User) -> UserProgress:
    progress = await session.get(UserProgress, user.id, populate_existing=True)
    if progress is None:
        progress = UserProgress(
            user_id=user.id,
            total_time_spent_seconds=0,
            grade_total=0.0,
            no_hint_completions=0,
            perfect_scores=0,
            hard_completions=0,
            early_completions=0,
            late_completions=0,
            reviews_completed=0,
        )
        session.add(progress)
    return progress


async def _day_row(session: AsyncSession, user: User, day: date) -> DailyActivity:
    row = await session.scalar(
        select(DailyActivity)
        .where(DailyActivity.user_id == user.id, DailyActivity.date == day)
        .execution_options(populate_existing=True)
    )
    if row is None:
        row = DailyActivity(
            user_id=user.id, date=day, exercises_completed=0, submissions=0, time_spent_seconds=0, grade_total=0.0
        )
        session.add(row)
    return row


def normalise_topics(topics: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for topic in topics:
        name = topic.strip().lower()[:TOPIC_MAX_LENGTH]
        if name:
            seen.setdefault(name, None)
    return list(seen)


async def _update_topics(session: AsyncSession, user: User, topics: list[str], grade: float) -> None:
    if not topics:
        return
    rows = {
        row.topic: row
        for row in await session.scalars(
            select(TopicSkill)
            .where(TopicSkill.user_id == user.id, TopicSkill.topic.in_(topics))
            .execution_options(populate_existing=True)
        )
    }
    for topic in topics:
        row = rows.get(topic)
        if row is None:
            row = TopicSkill(user_id=user.id, topic=topic, level="beginner", exercises_completed=0, grade_total=0.0)
            session.add(row)
        row.exercises_completed += 1
        row.grade_total += grade
        row.level = topic_level(row.exercises_completed, row.grade_total / row.exercises_completed, row.level)


async def record_completion(
    session: AsyncSession,
    user: User,
    *,
    completion_key: str,
    exercise_id: int,
    topics: list[str],
    difficulty: str,
    grade: float,
    hints_used: int,
    time_spent_seconds: int,
    at: datetime,
) -> CompletionResult:
    """Count a completed exercise: counters, time, grades, topics, the day, the streak, achievements.

    Idempotent on (user, `completion_key`), e.g. the submission id that completed the exercise: the same
    key again changes nothing and answers `recorded=False`. Only flushes; the caller commits."""
    user = await lock_user(session, user)
    seen = await session.scalar(
        select(ExerciseCompletion.id).where(
            ExerciseCompletion.user_id == user.id, ExerciseCompletion.completion_key == completion_key
        )
    )
    if seen is not None:
        return CompletionResult(
            recorded=False,
            streak_before=user.current_streak,
            streak_after=user.current_streak,
            longest_streak=user.longest_streak,
            extended=False,
        )

    grade = min(max(float(grade), 0.0), 100.0)
    hints_used, time_spent_seconds = max(hints_used, 0), max(time_spent_seconds, 0)
    local_at = at.astimezone(user_zone(user))
    day = local_at.date()
    topics = normalise_topics(topics)
    progress = await _progress_row(session, user)

    streak_before = user.current_streak
    is_new_day = user.last_active_on is None or day > user.last_active_on
    user.current_streak = next_streak(user.current_streak, user.last_active_on, day)
    user.longest_streak = max(user.longest_streak, user.current_streak)
    if is_new_day:
        user.last_active_on = day

    user.exercises_completed += 1
    progress.total_time_spent_seconds += time_spent_seconds
    progress.grade_total += grade
    progress.no_hint_completions += int(hints_used == 0)
    progress.perfect_scores += int(grade >= PERFECT_GRADE)
    progress.hard_completions += int(difficulty == "hard")
    progress.early_completions += int(local_at.hour in EARLY_HOURS)
    progress.late_completions += int(local_at.hour in LATE_HOURS)

    day_row = await _day_row(session, user, day)
    day_row.exercises_completed += 1
    day_row.time_spent_seconds += time_spent_seconds
    day_row.grade_total += grade

    await _update_topics(session, user, topics, grade)
    session.add(
        ExerciseCompletion(
            user_id=user.id,
            completion_key=completion_key,
            exercise_id=exercise_id,
            topics=topics,
            difficulty=difficulty,
            grade=grade,
            hints_used=hints_used,
            time_spent_seconds=time_spent_seconds,
            local_date=day,
            completed_at=at,
        )
    )
    unlocked = await achievements_service.award(session, user, progress, at)
    log.info(
        "progress.completion_recorded",
        user_id=user.id,
        exercise_id=exercise_id,
        streak=user.current_streak,
        achievements=[achievement.slug for achievement in unlocked],
    )
    return CompletionResult(
        recorded=True,
        streak_before=streak_before,
        streak_after=user.current_streak,
        longest_streak=user.longest_streak,
        extended=is_new_day,
        achievements_unlocked=unlocked,
    )


async def record_submission(session: AsyncSession, user: User, *, at: datetime) -> None:
    """Count a graded submission on its local day (the heat-map's `submissions`), passing or not."""
    user = await lock_user(session, user)
    day_row = await _day_row(session, user, local_date(user, at))
    day_row.submissions += 1
    await session.flush()


async def record_review(session: AsyncSession, user: User, *, at: datetime) -> list[Achievement]:
    """Count a completed code review and award the reviews_* achievements. Call it once per review, in
    the transaction that marks the review completed (that status change is what makes it happen once)."""
    user = await lock_user(session, user)
    progress = await _progress_row(session, user)
    progress.reviews_completed += 1
    return await achievements_service.award(session, user, progress, at)


async def set_current_difficulty(session: AsyncSession, user: User, difficulty: str) -> None:
    """For the adaptive difficulty of the exercises feature, which owns the rules for changing it."""
    user = await lock_user(session, user)
    progress = await _progress_row(session, user)
    progress.current_difficulty = difficulty
    await session.flush()


# --- the level the adaptive difficulty works from (services/difficulty.py) ----------------------------


async def current_difficulty(session: AsyncSession, user: User) -> str:
    """The stored difficulty, else the one the user's skill level starts at."""
    progress = await session.get(UserProgress, user.id)
    if progress is not None and progress.current_difficulty is not None:
        return progress.current_difficulty
    return default_difficulty(user.skill_level)
