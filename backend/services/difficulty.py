"""Adaptive difficulty (docs/API.md): successes step the level up, struggles step it down, within skill bounds.

Every exercise that ends (completed or skipped) gets an `outcome`: success (completed, grade ≥ 75, at most
2 hints), struggle (skipped, grade < 60, or 4+ hints) or neutral. The consecutive runs are read back from
the latest outcomes and stop at the exercise that last changed the level, so a change starts a new count.
The level itself lives in the progress engine (`current_difficulty`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.errors import ValidationFailed
from backend.models import User
from backend.models.exercises import UserExercise
from backend.services import progress as progress_service

LEVELS = ("easy", "medium", "hard")
BOUNDS = {
    "beginner": ("easy", "medium"),
    "intermediate": ("easy", "hard"),
    "advanced": ("medium", "hard"),
    "expert": ("medium", "hard"),
}
SUCCESS_GRADE, STRUGGLE_GRADE = 75.0, 60.0
SUCCESS_MAX_HINTS, STRUGGLE_MIN_HINTS = 2, 4
STEP_UP_AFTER, STEP_DOWN_AFTER = 3, 2
RECENT = 10  # outcomes read back; more than either run needs


@dataclass(frozen=True)
class Change:
    from_: str
    to: str
    message: str


@dataclass(frozen=True)
class DifficultyState:
    current: str
    recommended: str
    reason: str
    consecutive_successes: int
    consecutive_struggles: int
    average_grade: float | None
    average_hints: float | None


def bounds(skill_level: str | None) -> tuple[str, str]:
    return BOUNDS.get(skill_level or "beginner", BOUNDS["beginner"])


def clamp(level: str, skill_level: str | None) -> str:
    low, high = (LEVELS.index(bound) for bound in bounds(skill_level))
    return LEVELS[min(max(LEVELS.index(level), low), high)]


def step(level: str, by: int, skill_level: str | None) -> str:
    return clamp(LEVELS[min(max(LEVELS.index(level) + by, 0), len(LEVELS) - 1)], skill_level)


def outcome_of(*, completed: bool, grade: float | None, hints_used: int) -> str:
    if not completed or (grade is not None and grade < STRUGGLE_GRADE) or hints_used >= STRUGGLE_MIN_HINTS:
        return "struggle"
    if grade is not None and grade >= SUCCESS_GRADE and hints_used <= SUCCESS_MAX_HINTS:
        return "success"
    return "neutral"


async def _runs(session: AsyncSession, user: User) -> tuple[int, int]:
    """(consecutive successes, consecutive struggles) among the latest outcomes since the last change."""
    rows = await session.execute(
        select(UserExercise.outcome, UserExercise.changed_difficulty)
        .where(UserExercise.user_id == user.id, UserExercise.outcome.is_not(None))
        .order_by(UserExercise.closed_at.desc(), UserExercise.id.desc())
        .limit(RECENT)
    )
    latest: str | None = None
    count = 0
    for outcome, changed in rows:
        if changed or (latest is not None and outcome != latest):
            break
        latest, count = outcome, count + 1
    return (count if latest == "success" else 0), (count if latest == "struggle" else 0)


async def current(session: AsyncSession, user: User) -> str:
    return clamp(await progress_service.current_difficulty(session, user), user.skill_level)


async def record_outcome(session: AsyncSession, user: User, row: UserExercise, outcome: str) -> Change | None:
    """Store how `row` ended and adapt the level: the change (if any) for the submit response."""
    row.outcome, row.closed_at = outcome, utcnow()
    await session.flush()
    successes, struggles = await _runs(session, user)
    level = await current(session, user)
    if successes >= STEP_UP_AFTER:
        target, message = step(level, 1, user.skill_level), "Three strong results in a row: stepping up."
    elif struggles >= STEP_DOWN_AFTER:
        target, message = step(level, -1, user.skill_level), "Two tough ones in a row: easing off a little."
    else:
        return None
    if target == level:  # already at the edge of the skill level's range
        return None
    row.changed_difficulty = True
    await progress_service.set_current_difficulty(session, user, target)
    return Change(level, target, message)


async def state(session: AsyncSession, user: User) -> DifficultyState:
    level = await current(session, user)
    successes, struggles = await _runs(session, user)
    averages = await session.execute(
        select(func.avg(UserExercise.best_grade), func.avg(UserExercise.hints_used)).where(
            UserExercise.user_id == user.id, UserExercise.status == "completed"
        )
    )
    average_grade, average_hints = averages.one()
    if successes:
        recommended = step(level, 1, user.skill_level) if successes >= STEP_UP_AFTER - 1 else level
        reason = f"{successes} success(es) in a row; {STEP_UP_AFTER} step the level up."
    elif struggles:
        recommended = step(level, -1, user.skill_level)
        reason = f"{struggles} struggle(s) in a row; {STEP_DOWN_AFTER} step the level down."
    else:
        recommended, reason = level, "Keep going: the level adapts to your recent results."
    return DifficultyState(
        current=level,
        recommended=recommended,
        reason=reason,
        consecutive_successes=successes,
        consecutive_struggles=struggles,
        average_grade=round(float(average_grade), 2) if average_grade is not None else None,
        average_hints=round(float(average_hints), 2) if average_hints is not None else None,
    )


async def override(session: AsyncSession, user: User, level: str) -> DifficultyState:
    """A manual choice within the skill level's bounds; outside them 422."""
    if clamp(level, user.skill_level) != level:
        low, high = bounds(user.skill_level)
        raise ValidationFailed(
            f"At your skill level the difficulty is between {low} and {high}.",
            errors=[{"field": "difficulty", "message": f"must be between {low} and {high}"}],
        )
    await progress_service.set_current_difficulty(session, user, level)
    return await state(session, user)
