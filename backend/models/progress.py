"""Progress: per-user aggregates, completions (the idempotency ledger), topics, days and achievements."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, TimestampedMixin, utcnow

DIFFICULTIES = ("easy", "medium", "hard")
TOPIC_LEVELS = ("beginner", "intermediate", "advanced", "expert")
ACHIEVEMENT_CATEGORIES = ("exercises", "streaks", "mastery", "habits", "reviews")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class UserProgress(TimestampedMixin, Base):
    """Aggregates that are not part of the public `User` (which keeps the streaks and the count)."""

    __tablename__ = "user_progress"
    __table_args__ = (
        CheckConstraint(
            f"current_difficulty IS NULL OR {_one_of('current_difficulty', DIFFICULTIES)}", name="current_difficulty"
        ),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    total_time_spent_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    grade_total: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # None until the exercises feature adapts it; until then the skill level gives the default.
    current_difficulty: Mapped[str | None] = mapped_column(String(10))
    # Counters behind achievements that the other tables cannot answer cheaply.
    no_hint_completions: Mapped[int] = mapped_column(default=0, server_default="0")
    perfect_scores: Mapped[int] = mapped_column(default=0, server_default="0")
    hard_completions: Mapped[int] = mapped_column(default=0, server_default="0")
    early_completions: Mapped[int] = mapped_column(default=0, server_default="0")
    late_completions: Mapped[int] = mapped_column(default=0, server_default="0")
    reviews_completed: Mapped[int] = mapped_column(default=0, server_default="0")


class ExerciseCompletion(Base):
    """One row per completed exercise; the unique key makes `record_completion` idempotent."""

    __tablename__ = "exercise_completions"
    __table_args__ = (
        UniqueConstraint("user_id", "completion_key"),
        CheckConstraint(_one_of("difficulty", DIFFICULTIES), name="difficulty"),
        CheckConstraint("grade >= 0 AND grade <= 100", name="grade_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique key
    completion_key: Mapped[str] = mapped_column(String(100))
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="CASCADE"), index=True)
    topics: Mapped[list[str]] = mapped_column(JSON)
    difficulty: Mapped[str] = mapped_column(String(10))
    grade: Mapped[float] = mapped_column(Float)
    hints_used: Mapped[int]
    time_spent_seconds: Mapped[int]
    local_date: Mapped[date] = mapped_column(Date)
    completed_at: Mapped[datetime]


class TopicSkill(TimestampedMixin, Base):
    __tablename__ = "skill_levels"
    __table_args__ = (
        UniqueConstraint("user_id", "topic"),
        CheckConstraint(_one_of("level", TOPIC_LEVELS), name="level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique key
    topic: Mapped[str] = mapped_column(String(60))
    level: Mapped[str] = mapped_column(String(20), default="beginner", server_default="beginner")
    exercises_completed: Mapped[int] = mapped_column(default=0, server_default="0")
    grade_total: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class DailyActivity(Base):
    """One row per user per local calendar day with activity (days without any are implied zeros)."""

    __tablename__ = "daily_activity"
    __table_args__ = (UniqueConstraint("user_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique key
    date: Mapped[date] = mapped_column(Date)
    exercises_completed: Mapped[int] = mapped_column(default=0, server_default="0")
    submissions: Mapped[int] = mapped_column(default=0, server_default="0")
    time_spent_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    grade_total: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class Achievement(TimestampedMixin, Base):
    """The catalog, seeded from `backend/content/achievements.py`; `slug` is the stable identity."""

    __tablename__ = "achievements"
    __table_args__ = (
        CheckConstraint(_one_of("category", ACHIEVEMENT_CATEGORIES), name="category"),
        CheckConstraint("target >= 1 AND points >= 0", name="target_points"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str] = mapped_column(String(40))
    target: Mapped[int]
    points: Mapped[int]
    position: Mapped[int] = mapped_column(default=0, server_default="0")


class UserAchievement(Base):
    __tablename__ = "user_achievements"
    __table_args__ = (UniqueConstraint("user_id", "achievement_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique key
    achievement_id: Mapped[int] = mapped_column(ForeignKey("achievements.id", ondelete="CASCADE"), index=True)
    unlocked_at: Mapped[datetime] = mapped_column(default=utcnow)
