"""`GET /users/me/export`: everything stored about a user, as one JSON document.

Each top-level key is a section produced by a function registered in `EXPORT_SECTIONS`. Features that
store user data register theirs (e.g. `EXPORT_SECTIONS["conversations"] = export_conversations` in the
chat service); a section still unregistered exports as an empty list. The API validates the whole through
its export schema (`UserExport`). Never export secrets: no password or token hashes, no encrypted OAuth
tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


async def export_onboarding(session: AsyncSession, user: User) -> dict[str, Any]:
    return {"completed": user.onboarding_completed, "answers": onboarding_service.answers(user)}


async def export_achievements(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    return [
        {"slug": status.slug, "title": status.title, "points": status.points, "unlocked_at": _iso(status.unlocked_at)}
        for status in await achievements_service.list_for_user(session, user)
        if status.unlocked
    ]


async def export_progress(session: AsyncSession, user: User) -> dict[str, Any]:
    summary = await progress_reads.summary(await session.connection(), user)
    completions = await session.scalars(
        select(ExerciseCompletion).where(ExerciseCompletion.user_id == user.id).order_by(ExerciseCompletion.id)
    )
    skills = await session.scalars(select(TopicSkill).where(TopicSkill.user_id == user.id).order_by(TopicSkill.topic))
    days = await session.scalars(
        select(DailyActivity).where(DailyActivity.user_id == user.id).order_by(DailyActivity.date)
    )
    return {
        "total_time_spent_seconds": summary.total_time_spent_seconds,
        "average_grade": summary.average_grade,
        "current_difficulty": summary.current_difficulty,
        "points": summary.points,
        "skill_levels": [
            {"topic": s.topic, "level": s.level, "exercises_completed": s.exercises_completed} for s in skills
        ],
        "daily_activity": [
            {
                "date": d.date.isoformat(),
                "exercises_completed": d.exercises_completed,
                "submissions": d.submissions,
                "time_spent_seconds": d.time_spent_seconds,
            }
            for d in days
        ],
        "completions": [
            {
                "exercise_id": c.exercise_id,
                "topics": c.topics,
                "difficulty": c.difficulty,
                "grade": c.grade,
                "hints_used": c.hints_used,
                "time_spent_seconds": c.time_spent_seconds,
                "completed_at": _iso(c.completed_at),
            }
            for c in completions
        ],
    }


async def export_sessions(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    rows = await session.scalars(select(AuthSession).where(AuthSession.user_id == user.id).order_by(AuthSession.id))
    return [
        {
            "id": row.id,
            "user_agent": row.user_agent,
            "ip": row.ip,
            "created_at": _iso(row.created_at),
            "last_used_at": _iso(row.last_used_at),
            "revoked_at": _iso(row.revoked_at),
        }
        for row in rows
    ]


async def export_linked_accounts(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    rows = await session.scalars(select(OAuthAccount).where(OAuthAccount.user_id == user.id).order_by(OAuthAccount.id))
    return [
        {"provider": row.provider, "login": row.login, "email": row.email, "linked_at": _iso(row.created_at)}
        for row in rows
    ]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


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
