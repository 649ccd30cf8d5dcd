"""`GET /users/me/export`: everything stored about a user, as one JSON document.

Each top-level key is a section produced by a function registered in `EXPORT_SECTIONS`: the rows the
feature stores about the user (ORM objects, or a dataclass of them). The API shapes the whole through its
export schema (`UserExport`), which picks each section's fields: never secrets (no password or token
hashes, no encrypted OAuth tokens), and a field a feature adds is exported once the schema names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import AuthSession, OAuthAccount, User
from backend.models.progress import DailyActivity, ExerciseCompletion, TopicSkill
from backend.services import achievements as achievements_service
from backend.services import onboarding as onboarding_service
from backend.services import progress_reads
from backend.services.chat import export_conversations, export_llm_usage
from backend.services.exercises import export_exercises, export_submissions
from backend.services.github import export_repositories, export_reviews
from backend.services.learner import export_learning_profile

ExportSection = Callable[[AsyncSession, User], Awaitable[Any]]


async def export_profile(session: AsyncSession, user: User) -> User:
    """The user's row as it is: the export schema's profile picks its fields (never the password hash)."""
    return user


async def export_onboarding(session: AsyncSession, user: User) -> onboarding_service.Progress:
    return onboarding_service.state(user)


async def export_achievements(session: AsyncSession, user: User) -> list[achievements_service.AchievementStatus]:
    return [status for status in await achievements_service.list_for_user(session, user) if status.unlocked]


@dataclass(frozen=True)
class ProgressExport:
    """The progress summary's totals and every row progress keeps about the user."""

    total_time_spent_seconds: int
    average_grade: float | None
    current_difficulty: str | None
    points: int
    skill_levels: Sequence[TopicSkill]
    daily_activity: Sequence[DailyActivity]
    completions: Sequence[ExerciseCompletion]


async def export_progress(session: AsyncSession, user: User) -> ProgressExport:
    summary = await progress_reads.summary(await session.connection(), user)
    completions = await session.scalars(
        select(ExerciseCompletion).where(ExerciseCompletion.user_id == user.id).order_by(ExerciseCompletion.id)
    )
    skills = await session.scalars(select(TopicSkill).where(TopicSkill.user_id == user.id).order_by(TopicSkill.topic))
    days = await session.scalars(
        select(DailyActivity).where(DailyActivity.user_id == user.id).order_by(DailyActivity.date)
    )
    return ProgressExport(
        total_time_spent_seconds=summary.total_time_spent_seconds,
        average_grade=summary.average_grade,
        current_difficulty=summary.current_difficulty,
        points=summary.points,
        skill_levels=skills.all(),
        daily_activity=days.all(),
        completions=completions.all(),
    )


async def export_sessions(session: AsyncSession, user: User) -> Sequence[AuthSession]:
    rows = await session.scalars(select(AuthSession).where(AuthSession.user_id == user.id).order_by(AuthSession.id))
    return rows.all()


async def export_linked_accounts(session: AsyncSession, user: User) -> Sequence[OAuthAccount]:
    rows = await session.scalars(select(OAuthAccount).where(OAuthAccount.user_id == user.id).order_by(OAuthAccount.id))
    return rows.all()


# The order is the document's order: the sections docs/API.md lists first, then what else we store.
EXPORT_SECTIONS: dict[str, ExportSection] = {
    "profile": export_profile,
    "onboarding": export_onboarding,
    "exercises": export_exercises,
    "submissions": export_submissions,
    "conversations": export_conversations,
    "achievements": export_achievements,
    "repositories": export_repositories,
    "reviews": export_reviews,
    "progress": export_progress,
    "sessions": export_sessions,
    "linked_accounts": export_linked_accounts,
    "llm_usage": export_llm_usage,
    "learning_profile": export_learning_profile,
}


async def export_user(session: AsyncSession, user: User) -> dict[str, Any]:
    return {name: await section(session, user) for name, section in EXPORT_SECTIONS.items()}
