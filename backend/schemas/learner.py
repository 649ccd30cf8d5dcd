"""The learner model as the student sees it: `GET /users/me/learning-profile`, built from the learner
service's rows (`LearnerTopic`, `LearnerMistake`): the counts it stores become the averages and the
per-language masteries shown here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.services.learner import mastery_from
from backend.services.learner.mistakes import mistake_label


class LearnerGoals(BaseModel):
    """What the student said they want (their onboarding answers)."""

    model_config = ConfigDict(from_attributes=True)

    programming_language: str | None
    skill_level: str | None
    career_goals: str | None
    learning_style: str | None
    time_commitment: str | None


class TopicLanguage(BaseModel):
    """A topic in one language: the same counts and mastery, from that language's submissions alone."""

    language: str = Field(description="The exercises' language, as in `GET /exercises/languages`.")
    mastery: float = Field(ge=0, le=1, description="As the topic's `mastery`, from this language's counts.")
    attempts: int
    failures: int
    exercises_attempted: int
    exercises_completed: int
    average_grade: float | None

    @classmethod
    def of(cls, language: str, counts: Mapping[str, float]) -> TopicLanguage:
        """One language's part of a topic (`LearnerTopic.languages`): its counts and their mastery."""
        completed = int(counts.get("exercises_completed", 0))
        return cls(
            language=language,
            mastery=mastery_from(counts),
            attempts=int(counts.get("attempts", 0)),
            failures=int(counts.get("failures", 0)),
            exercises_attempted=int(counts.get("exercises_attempted", 0)),
            exercises_completed=completed,
            average_grade=average_grade(counts.get("grade_total", 0.0), completed),
        )


def average_grade(grade_total: float, completed: int) -> float | None:
    return round(grade_total / completed, 2) if completed else None


class TopicMastery(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    topic: str
    mastery: float = Field(
        ge=0,
        le=1,
        description="0–1: average grade of completed exercises / 100 × completed / attempted exercises "
        "× (1 − 0.08 × hints per completion) × (1 − min(0.3, 0.1 × failed submissions per exercise)) "
        "× a time factor (1 up to 20 minutes per completion, down to 0.8). 0 until an exercise is completed.",
    )
    attempts: int = Field(description="Graded submissions on exercises of this topic.")
    failures: int = Field(description="Of them, the ones that did not pass.")
    exercises_attempted: int
    exercises_completed: int
    average_grade: float | None
    hints_used: int = Field(description="Hints used on the completed exercises.")
    time_spent_seconds: int = Field(description="Time reported on the completed exercises.")
    last_practiced_at: datetime | None
    languages: list[TopicLanguage] = Field(
        description="The topic per language practised, by language (counted since per-language counts began: "
        "older submissions are in the topic's totals only)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_topic(cls, data: Any) -> Any:
        """A `LearnerTopic`: its counts, their average grade, and the topic in each language practised."""
        if isinstance(data, dict):
            return data
        shown = {name: getattr(data, name) for name in cls.model_fields.keys() - {"average_grade", "languages"}}
        languages = sorted((data.languages or {}).items())
        return shown | {
            "average_grade": average_grade(data.grade_total, data.exercises_completed),
            "languages": [TopicLanguage.of(language, counts) for language, counts in languages],
        }


class RecurringMistake(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(
        description="`edge_case_empty`, `off_by_one`, `wrong_type`, `wrong_result`, `timeout`, `syntax_error`, "
        "`exception:<Class>` (e.g. `exception:IndexError`), or a static check: `style:unused_code`, "
        "`style:undefined_name`, `style:lint`, `style:formatting` (gofmt, clang-format), `style:long_function`, "
        "`style:deep_nesting`, `style:naming`."
    )
    label: str = Field(description="The kind in words.")
    count: int = Field(description="Submissions it was seen in (recurring: 2 or more).")

    @model_validator(mode="before")
    @classmethod
    def _labelled(cls, data: Any) -> Any:
        """A recurring kind (`learner.Recurring`), with the kind in words."""
        if isinstance(data, dict):
            return data
        return {"kind": data.kind, "label": mistake_label(data.kind), "count": data.count}


class MistakeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    label: str
    detail: str = Field(description="Where it was seen: a test's name or a linter finding (never a hidden input).")
    exercise_id: int | None
    submission_id: int | None
    topics: list[str]
    language: str = Field(description="The language of the exercise it was seen in.")
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_mistake(cls, data: Any) -> Any:
        """A `LearnerMistake`, with its kind in words."""
        if isinstance(data, dict):
            return data
        return {name: getattr(data, name) for name in cls.model_fields.keys() - {"label"}} | {
            "label": mistake_label(data.kind),
            "topics": list(data.topics or []),
        }


class LearningProfileRead(BaseModel):
    """What the tutor remembers about you, updated each time a submission is graded. It shapes the tutor's
    chat and hints (`summary`), code reviews (your recurring mistakes are checked first) and the daily
    exercise (a weak topic at your difficulty is preferred; never one topic three days running)."""

    model_config = ConfigDict(from_attributes=True)

    goals: LearnerGoals
    topics: list[TopicMastery] = Field(description="Every topic practised, by name.")
    strengths: list[TopicMastery] = Field(description="Mastery ≥ 0.7, strongest first.")
    weaknesses: list[TopicMastery] = Field(description="Practised with mastery < 0.5, weakest first.")
    recurring_mistakes: list[RecurringMistake] = Field(description="Most frequent first.")
    recent_mistakes: list[MistakeRead] = Field(description="The 10 latest, newest first.")
    suggested_next_topics: list[str] = Field(
        description="Up to 5: weak topics first, then topics of exercises you can see and have not tried."
    )
    summary: str = Field(description="What the tutor's prompts are told about you (short; empty at first).")
    updated_at: datetime | None
