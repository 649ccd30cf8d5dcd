"""`GET /users/me/export`: the account export, section by section.

Each section is built from the rows the export service returns (`services/export.py`): the schema picks
the fields, so a secret column is never exported, and a feature that stores more about the user names the
new field here (or adds a section) to export it. Sections still allow extra fields in what they read.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from backend.schemas.exercises import UserExerciseRead
from backend.schemas.github import RepositoryRead, ReviewRead
from backend.schemas.learner import MistakeRead, TopicMastery
from backend.schemas.users import OnboardingState, UserRead

OPEN = ConfigDict(extra="allow", from_attributes=True)


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
    submission_id: int | None
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

    @model_validator(mode="before")
    @classmethod
    def _from_account(cls, data: Any) -> Any:
        """An `OAuthAccount`: linked when its row was made (its tokens are never read)."""
        if isinstance(data, dict):
            return data
        return {"provider": data.provider, "login": data.login, "email": data.email, "linked_at": data.created_at}


class ExportedLLMUsage(BaseModel):
    model_config = OPEN

    day: date
    requests: int
    prompt_tokens: int
    completion_tokens: int


class ExportedLearningProfile(BaseModel):
    model_config = OPEN

    topics: list[TopicMastery]
    mistakes: list[MistakeRead]
    mistake_counts: dict[str, int]
    summary: str


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
    learning_profile: ExportedLearningProfile
