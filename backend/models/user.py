from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import JSON, CheckConstraint, Date, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, TimestampedMixin, utcnow

ROLES = ("student", "mentor", "admin")
SKILL_LEVELS = ("beginner", "intermediate", "advanced", "expert")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class User(TimestampedMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_one_of("role", ROLES), name="role"),
        CheckConstraint(f"skill_level IS NULL OR {_one_of('skill_level', SKILL_LEVELS)}", name="skill_level"),
        CheckConstraint(
            "current_streak >= 0 AND longest_streak >= 0 AND exercises_completed >= 0", name="counters_not_negative"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased by the auth service, so uniqueness is case-insensitive on every backend.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None for OAuth-only accounts
    name: Mapped[str] = mapped_column(String(100))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    bio: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20), default="student", server_default="student")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=false())

    programming_language: Mapped[str | None] = mapped_column(String(40))
    skill_level: Mapped[str | None] = mapped_column(String(20))
    career_goals: Mapped[str | None] = mapped_column(String(500))
    learning_style: Mapped[str | None] = mapped_column(String(40))
    time_commitment: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    onboarding_completed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The onboarding answers saved so far (a draft to resume on another device), then the submitted ones.
    onboarding_answers: Mapped[dict | None] = mapped_column(JSON)

    # The streak as of the last completion; `streak_today` is what every reader shows.
    current_streak: Mapped[int] = mapped_column(default=0, server_default=false())
    # The local calendar day of the last completion: the streak counts days against it.
    last_active_on: Mapped[date | None] = mapped_column(Date)
    longest_streak: Mapped[int] = mapped_column(default=0, server_default=false())
    exercises_completed: Mapped[int] = mapped_column(default=0, server_default=false())

    last_login_at: Mapped[datetime | None]

    @property
    def streak_today(self) -> int:
        """The current streak as the student sees it now: 0 once a whole local calendar day has passed
        without a completion (stored streaks only change when an exercise is completed)."""
        if self.last_active_on is None:
            return self.current_streak
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        today = utcnow().astimezone(zone).date()
        return self.current_streak if self.last_active_on >= today - timedelta(days=1) else 0
