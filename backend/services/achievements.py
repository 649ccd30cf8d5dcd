"""Achievements: the seeded catalog, each user's progress towards every one, and awarding them.

Awarding runs inside the transaction of the event that earns it (a completion, a review), after the
caller has locked the user's row, so an achievement is unlocked exactly once even under concurrency;
the unique (user_id, achievement_id) key is the last line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.content.achievements import ACHIEVEMENTS
from backend.models import User
from backend.models.progress import Achievement, TopicSkill, UserAchievement, UserProgress

# Every counter an achievement of the catalog may watch (its `metric`); see `metric_values`.
METRICS = frozenset(
    {
        "exercises_completed",
        "longest_streak",
        "no_hint_completions",
        "perfect_scores",
        "hard_completions",
        "early_completions",
        "late_completions",
        "reviews_completed",
        "topics_practiced",
        "topics_mastered",
    }
)


@dataclass(frozen=True)
class SeedResult:
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class AchievementStatus:
    slug: str
    title: str
    description: str
    category: str
    target: int
    progress: int
    unlocked: bool
    unlocked_at: datetime | None
    points: int


async def seed_achievements(session: AsyncSession) -> SeedResult:
    """Insert new catalog entries and update changed ones, by slug. Idempotent; never deletes (users
    keep what they earned even if an entry leaves the catalog)."""
    existing = {row.slug: row for row in await session.scalars(select(Achievement))}
    created = updated = 0
    for position, spec in enumerate(ACHIEVEMENTS):
        values = {
            "title": spec.title,
            "description": spec.description,
            "category": spec.category,
            "metric": spec.metric,
            "target": spec.target,
            "points": spec.points,
            "position": position,
        }
        row = existing.get(spec.slug)
        if row is None:
            session.add(Achievement(slug=spec.slug, **values))
            created += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            updated += 1
    await session.flush()
    return SeedResult(created=created, updated=updated, unchanged=len(ACHIEVEMENTS) - created - updated)


async def metric_values(session: AsyncSession, user: User, progress: UserProgress | None) -> dict[str, int]:
    """The value of every counter an achievement can watch (the `metric` of the catalog)."""
    topics = await session.execute(
        select(func.count(), func.count().filter(TopicSkill.level == "expert")).where(TopicSkill.user_id == user.id)
    )
    topics_practiced, topics_mastered = topics.one()

    def counter(name: str) -> int:
        return getattr(progress, name) if progress is not None else 0

    return {
        "exercises_completed": user.exercises_completed,
        "longest_streak": user.longest_streak,
        "no_hint_completions": counter("no_hint_completions"),
        "perfect_scores": counter("perfect_scores"),
        "hard_completions": counter("hard_completions"),
        "early_completions": counter("early_completions"),
        "late_completions": counter("late_completions"),
        "reviews_completed": counter("reviews_completed"),
        "topics_practiced": topics_practiced,
        "topics_mastered": topics_mastered,
    }


async def award(session: AsyncSession, user: User, progress: UserProgress, at: datetime) -> list[Achievement]:
    """Unlock every achievement whose target is now reached; the caller holds the user's row lock."""
    await session.flush()  # the counters just changed must be visible to the queries below
    values = await metric_values(session, user, progress)
    already = select(UserAchievement.achievement_id).where(UserAchievement.user_id == user.id)
    candidates = await session.scalars(
        select(Achievement).where(Achievement.id.not_in(already)).order_by(Achievement.position)
    )
    unlocked = [achievement for achievement in candidates if values.get(achievement.metric, 0) >= achievement.target]
    session.add_all(UserAchievement(user_id=user.id, achievement_id=a.id, unlocked_at=at) for a in unlocked)
    await session.flush()
    return unlocked


async def list_for_user(session: AsyncSession, user: User) -> list[AchievementStatus]:
    """The whole catalog in its order, each with the user's progress and unlock time."""
    progress = await session.get(UserProgress, user.id)
    values = await metric_values(session, user, progress)
    rows = await session.execute(
        select(Achievement, UserAchievement.unlocked_at)
        .outerjoin(
            UserAchievement,
            (UserAchievement.achievement_id == Achievement.id) & (UserAchievement.user_id == user.id),
        )
        .order_by(Achievement.position, Achievement.id)
    )
    return [_status(achievement, unlocked_at, values) for achievement, unlocked_at in rows]


def _status(achievement: Achievement, unlocked_at: datetime | None, values: dict[str, int]) -> AchievementStatus:
    unlocked = unlocked_at is not None
    # An unlocked achievement shows full progress even if its counter could later read lower.
    progress = achievement.target if unlocked else min(values.get(achievement.metric, 0), achievement.target)
    return AchievementStatus(
        slug=achievement.slug,
        title=achievement.title,
        description=achievement.description,
        category=achievement.category,
        target=achievement.target,
        progress=progress,
        unlocked=unlocked,
        unlocked_at=unlocked_at,
        points=achievement.points,
    )
