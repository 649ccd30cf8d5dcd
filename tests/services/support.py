"""Test helpers for the progress engine: seed the catalog and record events in their own transaction,
the way the exercises and reviews features will (their tables do not exist yet)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from quart import Quart
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.models import User
from backend.models.exercises import Exercise
from backend.models.progress import Achievement, UserAchievement
from backend.services import progress as progress_service
from backend.services.achievements import seed_achievements
from backend.services.progress import CompletionResult

_keys = itertools.count(1)
SUPPORT_EXERCISE = "support-completed-exercise"


async def seed(app: Quart) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await seed_achievements(session)
        await session.commit()


def midday_today() -> datetime:
    """Today at 12:00 UTC: the same day as the reads (streaks), but never within the early-bird or
    night-owl hours, so the achievements a test expects do not depend on when the suite runs (it failed
    between 22:00 and 04:00 UTC, when every completion also unlocked night_owl)."""
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


async def complete(app: Quart, user_id: int, *, at: datetime | None = None, **overrides: Any) -> CompletionResult:
    """One completed exercise, committed. Defaults: a fresh key, grade 80, one hint, 5 minutes."""
    values: dict[str, Any] = {
        "completion_key": f"submission-{next(_keys)}",
        "topics": ["loops"],
        "difficulty": "easy",
        "grade": 80.0,
        "hints_used": 1,
        "time_spent_seconds": 300,
    }
    values.update(overrides)
    if "exercise_id" not in values:  # completions name a real exercise (a foreign key)
        values["exercise_id"] = await _support_exercise(app)
    async with app.extensions["db_session_factory"]() as session:
        user = await session.get_one(User, user_id)
        result = await progress_service.record_completion(session, user, at=at or midday_today(), **values)
        await session.commit()
    return result


async def _support_exercise(app: Quart) -> int:
    """The one exercise the completions of these tests name, made on first use (concurrent callers agree)."""
    query = select(Exercise.id).where(Exercise.slug == SUPPORT_EXERCISE)
    async with app.extensions["db_session_factory"]() as session:
        exercise_id = await session.scalar(query)
        if exercise_id is not None:
            return exercise_id
        session.add(
            Exercise(
                slug=SUPPORT_EXERCISE,
                title="Support exercise",
                description="Completed by the progress tests.",
                starter_code="",
                language="python",
                difficulty="easy",
                exercise_type="algorithm",
                topics=["loops"],
                examples=[],
                tests=[],
                hints=[],
                solution="",
            )
        )
        try:
            await session.commit()
        except IntegrityError:  # another caller made it meanwhile
            await session.rollback()
        return (await session.scalar(query)) or 0


async def set_user(app: Quart, user_id: int, **values: Any) -> None:
    async with app.extensions["db_session_factory"]() as session:
        user = await session.get_one(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        await session.commit()


async def get_user(app: Quart, user_id: int) -> User:
    async with app.extensions["db_session_factory"]() as session:
        return await session.get_one(User, user_id)


async def unlocked_slugs(app: Quart, user_id: int) -> list[str]:
    async with app.extensions["db_session_factory"]() as session:
        return list(
            await session.scalars(
                select(Achievement.slug)
                .join(UserAchievement, UserAchievement.achievement_id == Achievement.id)
                .where(UserAchievement.user_id == user_id)
                .order_by(Achievement.slug)
            )
        )
