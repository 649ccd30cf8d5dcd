"""`GET /users/me/export`: the account export, section by section.

Every section allows extra fields: a feature that stores more about the user adds it to its section (or a
new section) and it is exported, never silently dropped; the document still types what is known.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from backend.schemas.exercises import UserExerciseRead
from backend.schemas.github import RepositoryRead, ReviewRead
from backend.schemas.users import OnboardingState, UserRead

OPEN = ConfigDict(extra="allow")


class ExportedProfile(UserRead):
    model_config = OPEN

    is_active: bool


class ExportedExercise(UserExerciseRead):
    model_config = OPEN

    slug: str
    title: str


class ExportedSubmission(BaseModel):
    model_config = OPEN

    id: int
    exercise_id: int | None
    code: str
    status: str
    grade: float | None
    tests_passed: int
    tests_total: int
    feedback: str | None
    rubric: dict[str, Any] | None
    duration_ms: int | None
    created_at: datetime | None


class ExportedMessage(BaseModel):
    model_config = OPEN

    id: int
    role: str
    content: str
    status: str
    model: str | None
    tokens_used: int
    created_at: datetime


class ExportedConversation(BaseModel):
    model_config = OPEN

    id: int
    title: str | None
    context_type: str
    exercise_id: int | None
    created_at: datetime
    messages: list[ExportedMessage]


class ExportedAchievement(BaseModel):
    model_config = OPEN

    slug: str
    title: str
    points: int
    unlocked_at: datetime | None


class ExportedSkill(BaseModel):
    model_config = OPEN

    topic: str
    level: str
    exercises_completed: int


class ExportedDay(BaseModel):
    model_config = OPEN

    date: date
    exercises_completed: int
    submissions: int
    time_spent_seconds: int


class ExportedCompletion(BaseModel):
    model_config = OPEN

    exercise_id: int | None
    topics: list[str]
    difficulty: str
    grade: float | None
    hints_used: int
    time_spent_seconds: int
    completed_at: datetime | None


class ExportedProgress(BaseModel):
    model_config = OPEN

    total_time_spent_seconds: int
    average_grade: float | None
    current_difficulty: str | None
    points: int
    skill_levels: list[ExportedSkill]
    daily_activity: list[ExportedDay]
    completions: list[ExportedCompletion]


class ExportedSession(BaseModel):
    model_config = OPEN

    id: int
    user_agent: str | None
    ip: str | None
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ExportedLinkedAccount(BaseModel):
    model_config = OPEN

    provider: str
    login: str | None
    email: str | None
    linked_at: datetime | None


class ExportedLLMUsage(BaseModel):
    model_config = OPEN

    day: date
    requests: int
    prompt_tokens: int
    completion_tokens: int


class UserExport(BaseModel):
    """Everything stored about the user, one key per section (docs/API.md, "Exports")."""

    model_config = OPEN

    profile: ExportedProfile
    onboarding: OnboardingState
    exercises: list[ExportedExercise]
    submissions: list[ExportedSubmission]
    conversations: list[ExportedConversation]
    achievements: list[ExportedAchievement]
    repositories: list[RepositoryRead]
    reviews: list[ReviewRead]
    progress: ExportedProgress
    sessions: list[ExportedSession]
    linked_accounts: list[ExportedLinkedAccount]
    llm_usage: list[ExportedLLMUsage]
