"""Progress as the student reads it: the summary (counters, skill per topic and per language, points and
recent achievements) and the days of the heat-map.

Everything the progress engine (services/progress.py) writes, read back with a few prebuilt statements
on a connection outside any transaction (`db.read_connection()`), never the ORM: `GET /users/me/progress`
is on every dashboard load (docs/PERFORMANCE.md). No read grows with the history in this process: topics
and languages are bounded, achievements come five at a time, days are the range asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db import ReadStatement, fetch
from backend.models import User
from backend.models.exercises import Exercise
from backend.models.progress import (
    Achievement,
    DailyActivity,
    ExerciseCompletion,
    TopicSkill,
    UserAchievement,
    UserProgress,
)
from backend.services.achievements import AchievementStatus
from backend.services.progress import default_difficulty, local_date, today

RECENT_ACHIEVEMENTS = 5


@dataclass(frozen=True)
class TopicSummary:
    topic: str
    level: str
    exercises_completed: int
    average_grade: float


@dataclass(frozen=True)
class LanguageSummary:
    language: str
    exercises_completed: int
    average_grade: float


@dataclass(frozen=True)
class ProgressSummary:
    exercises_completed: int
    current_streak: int
    longest_streak: int
    total_time_spent_seconds: int
    average_grade: float | None
    current_difficulty: str
    points: int
    skill_levels: list[TopicSummary]
    languages: list[LanguageSummary]
    recent_achievements: list[AchievementStatus]


@dataclass(frozen=True)
class Day:
    date: date
    exercises_completed: int
    submissions: int
    time_spent_seconds: int
    average_grade: float | None


# The progress row (none before the first event) and the topic skills, most practised first: both outer-
# joined to the user's row, so either may be missing.
PROGRESS_AND_SKILLS = ReadStatement(
    select(
        UserProgress.user_id.label("progress_user_id"),
        UserProgress.total_time_spent_seconds,
        UserProgress.grade_total,
        UserProgress.current_difficulty,
        TopicSkill.topic,
        TopicSkill.level,
        TopicSkill.exercises_completed.label("topic_completed"),
        TopicSkill.grade_total.label("topic_grade_total"),
    )
    .select_from(User)
    .outerjoin(UserProgress, UserProgress.user_id == User.id)
    .outerjoin(TopicSkill, TopicSkill.user_id == User.id)
    .where(User.id == bindparam("user_id"))
    .order_by(TopicSkill.exercises_completed.desc(), TopicSkill.topic)
)
# The latest unlocked achievements and the points of all of them: the sum is a window over every unlocked
# one, computed before the LIMIT (none unlocked: no row, and 0 points).
RECENT_WITH_POINTS = ReadStatement(
    select(
        Achievement.slug,
        Achievement.title,
        Achievement.description,
        Achievement.category,
        Achievement.target,
        Achievement.points,
        UserAchievement.unlocked_at,
        func.sum(Achievement.points).over().label("total_points"),
    )
    .join(UserAchievement, UserAchievement.achievement_id == Achievement.id)
    .where(UserAchievement.user_id == bindparam("user_id"))
    .order_by(UserAchievement.unlocked_at.desc(), Achievement.position.desc())
    .limit(RECENT_ACHIEVEMENTS)
)
# Completed exercises per language of the exercise, most practised first: one row per language (a
# completion is one per exercise, so the database counts at most the exercises a user has done).
LANGUAGES = ReadStatement(
    select(
        Exercise.language,
        func.count().label("completed"),
        func.sum(ExerciseCompletion.grade).label("grade_total"),
    )
    .join(Exercise, Exercise.id == ExerciseCompletion.exercise_id)
    .where(ExerciseCompletion.user_id == bindparam("user_id"))
    .group_by(Exercise.language)
    .order_by(func.count().desc(), Exercise.language)
)
DAYS = ReadStatement(
    select(
        DailyActivity.date,
        DailyActivity.exercises_completed,
        DailyActivity.submissions,
        DailyActivity.time_spent_seconds,
        DailyActivity.grade_total,
    ).where(
        DailyActivity.user_id == bindparam("user_id"),
        DailyActivity.date >= bindparam("first"),
        DailyActivity.date <= bindparam("last"),
    )
)
FIRST_DAY = ReadStatement(
    select(func.min(DailyActivity.date).label("first")).where(DailyActivity.user_id == bindparam("user_id"))
)


def _average(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


async def summary(connection: AsyncConnection, user: User) -> ProgressSummary:
    mine = {"user_id": user.id}
    rows = await fetch(connection, PROGRESS_AND_SKILLS, mine)
    progress = rows[0] if rows and rows[0]["progress_user_id"] is not None else None
    recent = await fetch(connection, RECENT_WITH_POINTS, mine)
    languages = await fetch(connection, LANGUAGES, mine)
    completed = user.exercises_completed
    stored_difficulty = progress["current_difficulty"] if progress else None
    return ProgressSummary(
        exercises_completed=completed,
        current_streak=user.streak_today,
        longest_streak=user.longest_streak,
        total_time_spent_seconds=progress["total_time_spent_seconds"] if progress else 0,
        average_grade=_average(progress["grade_total"], completed) if progress else None,
        current_difficulty=stored_difficulty or default_difficulty(user.skill_level),
        points=int(recent[0]["total_points"] or 0) if recent else 0,
        skill_levels=[
            TopicSummary(
                topic=row["topic"],
                level=row["level"],
                exercises_completed=row["topic_completed"],
                average_grade=_average(row["topic_grade_total"], row["topic_completed"]) or 0.0,
            )
            for row in rows
            if row["topic"] is not None
        ],
        languages=[
            LanguageSummary(row["language"], row["completed"], _average(row["grade_total"], row["completed"]) or 0.0)
            for row in languages
        ],
        recent_achievements=[_unlocked(row) for row in recent],
    )


def _unlocked(row: Any) -> AchievementStatus:
    return AchievementStatus(
        slug=row["slug"],
        title=row["title"],
        description=row["description"],
        category=row["category"],
        target=row["target"],
        progress=row["target"],  # an unlocked achievement shows full progress
        unlocked=True,
        unlocked_at=row["unlocked_at"],
        points=row["points"],
    )


async def days(connection: AsyncConnection, user: User, first: date, last: date) -> list[Day]:
    """One `Day` per local calendar day from `first` to `last`, oldest first, zeros where nothing happened."""
    rows = {
        row["date"]: row for row in await fetch(connection, DAYS, {"user_id": user.id, "first": first, "last": last})
    }
    result = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = rows.get(day)
        if row is None:
            result.append(Day(day, 0, 0, 0, None))
            continue
        average = _average(row["grade_total"], row["exercises_completed"])
        result.append(Day(day, row["exercises_completed"], row["submissions"], row["time_spent_seconds"], average))
    return result


async def history(connection: AsyncConnection, user: User, number_of_days: int) -> list[Day]:
    """The last `number_of_days` local days, today included."""
    last = today(user)
    return await days(connection, user, last - timedelta(days=number_of_days - 1), last)


async def full_history(connection: AsyncConnection, user: User) -> list[Day]:
    """Every day from the first activity (or the account's creation) to today, for the export."""
    last = today(user)
    [row] = await fetch(connection, FIRST_DAY, {"user_id": user.id})
    first = min(filter(None, (row["first"], local_date(user, user.created_at), last)))
    return await days(connection, user, first, last)
