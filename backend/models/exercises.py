"""Exercises (catalog and generated), the user's assignments of them, and graded submissions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, TimestampedMixin, utcnow

DIFFICULTIES = ("easy", "medium", "hard")
EXERCISE_TYPES = ("algorithm", "data_structure", "debugging", "practical")
VISIBILITIES = ("public", "private")
USER_EXERCISE_STATUSES = ("pending", "in_progress", "completed", "skipped")
OUTCOMES = ("success", "struggle", "neutral")
SUBMISSION_STATUSES = ("queued", "running", "passed", "failed", "error", "timeout")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Exercise(TimestampedMixin, Base):
    """One exercise. `tests` (hidden) and `solution` never leave the server."""

    __tablename__ = "exercises"
    __table_args__ = (
        CheckConstraint(_one_of("difficulty", DIFFICULTIES), name="difficulty"),
        CheckConstraint(_one_of("exercise_type", EXERCISE_TYPES), name="exercise_type"),
        CheckConstraint(_one_of("visibility", VISIBILITIES), name="visibility"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    starter_code: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(40), index=True)
    # The catalog exercise this row is one language of (its slug); None for generated and admin-made ones.
    family: Mapped[str | None] = mapped_column(String(120), index=True)
    difficulty: Mapped[str] = mapped_column(String(10))
    exercise_type: Mapped[str] = mapped_column(String(20))
    topics: Mapped[list[str]] = mapped_column(JSON)
    examples: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # visible tests, in the hidden tests' format
    tests: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    hints: Mapped[list[str]] = mapped_column(JSON)
    solution: Mapped[str] = mapped_column(Text)
    # Generated exercises belong to (and are visible only to) their author; catalog ones have none.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    visibility: Mapped[str] = mapped_column(String(10), default="public", server_default="public")
    generated_by_ai: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The reference solution's run time in the sandbox, measured on first grade: efficiency compares to it.
    reference_duration_ms: Mapped[int | None]


class UserExercise(TimestampedMixin, Base):
    """A user's relation to one exercise: the daily assignment and the work on it."""

    __tablename__ = "user_exercises"
    __table_args__ = (
        # At most one daily assignment per local day: the race between two first GET /daily calls ends here.
        UniqueConstraint("user_id", "assigned_for", name="uq_user_exercises_user_id_assigned_for"),
        UniqueConstraint("user_id", "exercise_id", name="uq_user_exercises_user_id_exercise_id"),
        CheckConstraint(_one_of("status", USER_EXERCISE_STATUSES), name="status"),
        CheckConstraint(f"outcome IS NULL OR {_one_of('outcome', OUTCOMES)}", name="outcome"),
        CheckConstraint("hints_used >= 0 AND hints_used <= 3", name="hints_used_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # indexed by the unique keys
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="CASCADE"), index=True)
    assigned_for: Mapped[date | None] = mapped_column(Date)  # the local day it was the daily exercise
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    hints_used: Mapped[int] = mapped_column(default=0, server_default="0")
    submissions_count: Mapped[int] = mapped_column(default=0, server_default="0")
    best_grade: Mapped[float | None] = mapped_column(Float)
    time_spent_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    skipped_at: Mapped[datetime | None]
    # For adaptive difficulty: how it ended (success/struggle/neutral), when, and whether it moved the level.
    outcome: Mapped[str | None] = mapped_column(String(10))
    closed_at: Mapped[datetime | None]
    changed_difficulty: Mapped[bool] = mapped_column(default=False, server_default=false())


class Submission(Base):
    """One submitted solution, stored before it is run; the result is written when grading ends."""

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_one_of("status", SUBMISSION_STATUSES), name="status"),
        Index("ix_submissions_user_id_exercise_id", "user_id", "exercise_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="CASCADE"), index=True)
    user_exercise_id: Mapped[int] = mapped_column(ForeignKey("user_exercises.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    grade: Mapped[float | None] = mapped_column(Float)
    tests_passed: Mapped[int] = mapped_column(default=0, server_default="0")
    tests_total: Mapped[int] = mapped_column(default=0, server_default="0")
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    stdout: Mapped[str] = mapped_column(Text, default="", server_default="")
    stderr: Mapped[str] = mapped_column(Text, default="", server_default="")
    feedback: Mapped[str | None] = mapped_column(Text)
    strengths: Mapped[list[str]] = mapped_column(JSON, default=list)
    improvements: Mapped[list[str]] = mapped_column(JSON, default=list)
    rubric: Mapped[dict[str, float | None] | None] = mapped_column(JSON)  # None: a part not scored
    duration_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
