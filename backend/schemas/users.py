"""Profiles, onboarding, progress and achievements: request and response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date as CalendarDate  # `date` is also a field name below
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from backend.text import strip_html

Role = Literal["student", "mentor", "admin"]
SkillLevel = Literal["beginner", "intermediate", "advanced", "expert"]
ProgrammingLanguage = Literal[
    "python", "javascript", "typescript", "java", "c", "cpp", "csharp", "go", "rust", "ruby", "kotlin", "swift", "php"
]
LearningStyle = Literal["hands_on", "visual", "reading", "mixed"]
TimeCommitment = Literal["15_minutes", "30_minutes", "1_hour", "2_hours_plus"]
Difficulty = Literal["easy", "medium", "hard"]

NAME_MAX, BIO_MAX, CAREER_GOALS_MAX, URL_MAX, TIMEZONE_MAX = 100, 1000, 500, 2048, 64


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())  # scans the tz database once per process


def _iana_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("Use an IANA time zone name such as Europe/Paris or America/Los_Angeles")
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(character.isspace() for character in value):
        raise ValueError("Use an https:// URL")
    return value


# Plain text: the before-validator wraps the constrained string, so lengths are checked on the cleaned text.
# A required text needs a non-blank character (what strip() keeps), which the OpenAPI schema states as a pattern.
STRIP_HTML = BeforeValidator(strip_html)
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=r"\S"), STRIP_HTML]
Bio = Annotated[str, StringConstraints(max_length=BIO_MAX), STRIP_HTML]
CareerGoals = Annotated[str, StringConstraints(min_length=1, max_length=CAREER_GOALS_MAX, pattern=r"\S"), STRIP_HTML]
# The limit of each text answer of onboarding (its field in OnboardingSubmit), stated with its question.
ANSWER_MAX_LENGTHS = {"career_goals": CAREER_GOALS_MAX}
# A host name, an optional port, then anything without whitespace: documented and enforced alike.
HTTPS_URL_PATTERN = r"^https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?$"
AvatarUrl = Annotated[str, Field(max_length=URL_MAX, pattern=HTTPS_URL_PATTERN), AfterValidator(_https_url)]
# A named format rather than an enum of ~600 names: clients (and the fuzzer) know what to send.
TIMEZONE_FORMAT = "iana-time-zone"
TimeZone = Annotated[
    str,
    Field(
        max_length=TIMEZONE_MAX,
        description="An IANA time zone name, e.g. `Europe/Paris` (tz database).",
        json_schema_extra={"format": TIMEZONE_FORMAT},
    ),
    AfterValidator(_iana_timezone),
]


def _never_null(schema: dict[str, Any]) -> None:
    """The document's type for a field that may be left out but is refused as null (see `_not_null`)."""
    if "anyOf" in schema:
        schema.update(next(option for option in schema.pop("anyOf") if option != {"type": "null"}))


class UserRead(BaseModel):
    """A user: everything the SPA shows about the signed-in student."""

    model_config = ConfigDict(from_attributes=True)

    @model_validator(mode="before")
    @classmethod
    def _streak_as_of_today(cls, data: Any) -> Any:
        """`current_streak` is 0 once a local day was missed, not only after the next completion."""
        if hasattr(data, "streak_today"):  # the ORM user (schemas do not import models)
            return {name: getattr(data, name) for name in cls.model_fields} | {"current_streak": data.streak_today}
        return data

    id: int
    email: str
    name: str
    avatar_url: str | None
    bio: str | None
    role: Role
    email_verified: bool
    programming_language: ProgrammingLanguage | None
    skill_level: SkillLevel | None
    career_goals: str | None
    learning_style: LearningStyle | None
    time_commitment: TimeCommitment | None
    timezone: str
    onboarding_completed: bool
    current_streak: int
    longest_streak: int
    exercises_completed: int
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class UserUpdate(BaseModel):
    """Any subset of the profile. `null` clears an optional field. Any other field (role, email, streaks,
    counters...) is refused with 422: the server alone changes those."""

    model_config = ConfigDict(extra="forbid")

    name: DisplayName | None = Field(None, json_schema_extra=_never_null)  # optional, but never null
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None
    programming_language: ProgrammingLanguage | None = None
    skill_level: SkillLevel | None = None
    career_goals: CareerGoals | None = None
    learning_style: LearningStyle | None = None
    time_commitment: TimeCommitment | None = None
    timezone: TimeZone | None = Field(None, json_schema_extra=_never_null)

    @field_validator("name", "timezone", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Optional in the body, but never cleared: every user has a name and a time zone.
        if value is None:
            raise ValueError("Cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.model_fields_set}


class AccountDeleteRequest(BaseModel):
    password: str | None = Field(None, max_length=128, description="Required unless the account is OAuth-only.")


# --- onboarding ------------------------------------------------------------------------------------


class OnboardingDraft(BaseModel):
    """Some of the answers; merged into the saved draft (`null` removes an answer)."""

    model_config = ConfigDict(extra="forbid")

    programming_language: ProgrammingLanguage | None = None
    skill_level: SkillLevel | None = None
    career_goals: CareerGoals | None = None
    learning_style: LearningStyle | None = None
    time_commitment: TimeCommitment | None = None

    def changes(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.model_fields_set}


class OnboardingSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programming_language: ProgrammingLanguage
    skill_level: SkillLevel
    career_goals: CareerGoals
    learning_style: LearningStyle
    time_commitment: TimeCommitment


class OnboardingAnswers(BaseModel):
    """The answers saved so far; unanswered questions are absent."""

    programming_language: ProgrammingLanguage | SkipJsonSchema[None] = None
    skill_level: SkillLevel | SkipJsonSchema[None] = None
    career_goals: str | SkipJsonSchema[None] = None
    learning_style: LearningStyle | SkipJsonSchema[None] = None
    time_commitment: TimeCommitment | SkipJsonSchema[None] = None

    @model_serializer(mode="wrap")
    def _only_answered(self, handler: SerializerFunctionWrapHandler):
        # No return annotation: the document keeps the fields' schema (each optional, never null).
        return {field: value for field, value in handler(self).items() if value is not None}


class OnboardingState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    completed: bool
    answers: OnboardingAnswers


class QuestionOption(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    value: str
    label: str
    description: str


OnboardingField = Literal["programming_language", "skill_level", "career_goals", "learning_style", "time_commitment"]


class OnboardingQuestion(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    field: OnboardingField
    type: Literal["select", "text"]
    question: str
    options: list[QuestionOption]
    required: bool
    max_length: int | None

    @model_validator(mode="before")
    @classmethod
    def _with_limit(cls, data: Any) -> Any:
        """A question of the onboarding service, with the length limit `OnboardingSubmit` sets its answer."""
        if isinstance(data, dict):
            return data
        shown = {name: getattr(data, name) for name in cls.model_fields.keys() - {"max_length"}}
        return shown | {"max_length": ANSWER_MAX_LENGTHS.get(data.field)}


class OnboardingQuestions(BaseModel):
    questions: list[OnboardingQuestion]
    total_questions: int

    @classmethod
    def of(cls, questions: Sequence[Any]) -> Self:
        return cls.model_validate({"questions": questions, "total_questions": len(questions)})


# --- progress and achievements ---------------------------------------------------------------------


class AchievementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the services' dataclasses

    slug: str
    title: str
    description: str
    category: str
    target: int
    progress: int = Field(description="Towards `target`, capped at it.")
    unlocked: bool
    unlocked_at: datetime | None
    points: int


class AchievementList(BaseModel):
    items: list[AchievementRead]
    total_points: int
    unlocked_count: int
    total_count: int

    @classmethod
    def of(cls, items: Sequence[Any]) -> Self:
        """The whole catalog (`achievements.AchievementStatus`es) with the user's totals."""
        unlocked = [item for item in items if item.unlocked]
        return cls.model_validate(
            {
                "items": items,
                "total_points": sum(item.points for item in unlocked),
                "unlocked_count": len(unlocked),
                "total_count": len(items),
            }
        )


class TopicSkillRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the services' dataclasses

    topic: str
    level: SkillLevel
    exercises_completed: int
    average_grade: float


class LanguageProgressRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the services' dataclasses

    language: str = Field(description="As in an exercise's `language`.")
    exercises_completed: int
    average_grade: float


class ProgressRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the services' dataclasses

    exercises_completed: int
    current_streak: int
    longest_streak: int
    total_time_spent_seconds: int
    average_grade: float | None = Field(description="Over completed exercises; null before the first one.")
    current_difficulty: Difficulty
    points: int = Field(description="The sum of the points of unlocked achievements.")
    skill_levels: list[TopicSkillRead]
    languages: list[LanguageProgressRead] = Field(
        description="Completed exercises per language of the exercise, most completed first; empty before the first."
    )
    recent_achievements: list[AchievementRead] = Field(description="The last 5 unlocked, newest first.")


class DayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the services' dataclasses

    date: CalendarDate = Field(description="A calendar day in the user's time zone.")
    exercises_completed: int
    submissions: int
    time_spent_seconds: int
    average_grade: float | None = Field(description="Of that day's completed exercises; null on a day without.")


class HistoryQuery(BaseModel):
    days: int = Field(30, ge=1, le=365)


class History(BaseModel):
    model_config = ConfigDict(title="ProgressHistory")

    items: list[DayRead]

    @classmethod
    def of(cls, days: Sequence[Any]) -> Self:
        """The days (`progress_reads.Day`s), oldest first."""
        return cls.model_validate({"items": days})


class ProgressExportQuery(BaseModel):
    # `?format=csv` is the original way to ask for CSV, kept for the SPA; the document has its own
    # operation for CSV (`export_progress_csv`), so each operation has one media type.
    format: SkipJsonSchema[Literal["json", "csv"]] = "json"
