"""The learner model (the tutor's memory of a student): mastery per topic (and per language), mistakes, a prompt
summary."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, TimestampedMixin, utcnow


class LearnerTopic(TimestampedMixin, Base):
    """What one student's graded submissions say about one topic (see services/learner/ for mastery)."""

    __tablename__ = "learner_topics"
    __table_args__ = (UniqueConstraint("user_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique key
    topic: Mapped[str] = mapped_column(String(60))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # graded submissions
    failures: Mapped[int] = mapped_column(default=0, server_default="0")  # of them, not passing
    exercises_attempted: Mapped[int] = mapped_column(default=0, server_default="0")
    exercises_completed: Mapped[int] = mapped_column(default=0, server_default="0")
    grade_total: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # of completions
    hints_used: Mapped[int] = mapped_column(default=0, server_default="0")  # on completed exercises
    time_spent_seconds: Mapped[int] = mapped_column(default=0, server_default="0")  # on completed exercises
    mastery: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    last_practiced_at: Mapped[datetime | None]
    # The same counters per language of the exercises ({"javascript": {"attempts": 3, ...}}), since 0013.
    languages: Mapped[dict[str, dict[str, float]]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))


class LearnerMistake(Base):
    """One kind of mistake seen in one graded submission (at most one row per kind and submission)."""

    __tablename__ = "learner_mistakes"
    __table_args__ = (Index("ix_learner_mistakes_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exercise_id: Mapped[int | None] = mapped_column(ForeignKey("exercises.id", ondelete="SET NULL"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(60))  # edge_case_empty, exception:IndexError, style:naming, ...
    detail: Mapped[str] = mapped_column(String(300))  # a test's name or a linter finding; never a hidden input
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(40), default="python", server_default="python")  # the exercise's
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LearnerProfile(Base):
    """Per student: mistake counts by kind and the short summary the tutor's prompts carry, refreshed in
    the transaction that grades a submission (so a chat reads one row, not the whole history)."""

    __tablename__ = "learner_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    mistake_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
