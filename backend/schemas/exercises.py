"""Exercises, assignments, submissions, hints, difficulty: request and response bodies.

Nothing here carries an exercise's solution or hidden tests: the read models simply have no such fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from backend.content.shapes import CODE_MAX, CallTest, Difficulty, ExerciseType, ProgramTest, visible_example
from backend.schemas.common import Page, PageQuery

UserExerciseStatus = Literal["pending", "in_progress", "completed", "skipped"]
SubmissionStatus = Literal["queued", "running", "passed", "failed", "error", "timeout"]

# CODE_MAX (content/shapes.py) bounds code fields: docs/API.md, a field over its own limit is a 422, not a 413.
TOPIC_MAX, TITLE_MAX, DESCRIPTION_MAX, HINT_MAX, QUESTION_MAX = 60, 200, 20_000, 2_000, 2_000


Topic = Annotated[str, StringConstraints(min_length=1, max_length=TOPIC_MAX, pattern=r"\S")]
HintText = Annotated[str, StringConstraints(min_length=1, max_length=HINT_MAX)]


class Example(BaseModel):
    input: str
    expected_output: str


class ExerciseSummary(BaseModel):
    # Frozen: the read paths cache these (and ExerciseRead) per process and share them between requests.
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    slug: str
    title: str
    language: str
    difficulty: Difficulty
    exercise_type: ExerciseType
    topics: list[str]
    generated_by_ai: bool


class ExerciseRead(ExerciseSummary):
    description: str = Field(description="Markdown.")
    starter_code: str
    examples: list[Example]
    hints_available: int
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_exercise(cls, data: Any) -> Any:
        """An `Exercise` (or a row of its table) as students see it: its own fields, its visible examples
        read in its language, how many hints it has. Its solution and hidden tests have no field to go to."""
        if isinstance(data, dict):
            return data
        shown = {name: getattr(data, name) for name in cls.model_fields.keys() - DERIVED_FIELDS}
        examples = [visible_example(test, data.language)._asdict() for test in data.examples]
        return shown | {"examples": examples, "hints_available": len(data.hints)}


# ExerciseRead's fields that are not the exercise's own columns.
DERIVED_FIELDS = frozenset({"examples", "hints_available"})


class ExerciseQuery(PageQuery):
    language: str | None = None
    difficulty: Difficulty | None = None
    topic: str | None = None
    exercise_type: ExerciseType | None = None


class UserExerciseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exercise_id: int
    status: UserExerciseStatus
    assigned_for: date | None
    hints_used: int
    submissions_count: int
    best_grade: float | None
    time_spent_seconds: int
    started_at: datetime | None
    completed_at: datetime | None


class HistoryItem(UserExerciseRead):
    model_config = ConfigDict(title="ExerciseHistoryItem")

    title: str
    difficulty: Difficulty
    language: str


class HistoryQuery(PageQuery):
    status: UserExerciseStatus | None = None
    difficulty: Difficulty | None = None
    language: str | None = None


class Daily(BaseModel):
    model_config = ConfigDict(title="DailyExercise")

    exercise: ExerciseRead
    user_exercise: UserExerciseRead
    is_new: bool
    # Why the exercise is not in the student's language (that language is not graded here), else null.
    language_note: str | None = None

    @classmethod
    def of(cls, assignment: Any) -> Self:
        """An assignment of the daily service: its exercise (an `Exercise`, or the `ExerciseRead` the read
        path cached, taken as it is), its `UserExercise` (or that row as a dict), whether it is new.
        From a dict: pydantic reads a dataclass's attributes a third slower, on the hottest read."""
        return cls.model_validate(
            {
                "exercise": assignment.exercise,
                "user_exercise": assignment.user_exercise,
                "is_new": assignment.is_new,
                "language_note": assignment.language_note,
            }
        )


class LanguageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str  # as in `language` of an exercise and `?language=`
    title: str
    version: str  # of the toolchain that grades it here


class LanguageList(BaseModel):
    items: list[LanguageRead]


class LanguageQuery(BaseModel):
    language: str | None = None


class SubmissionCreate(BaseModel):
    code: str = Field(min_length=1, max_length=CODE_MAX)
    time_spent_seconds: int | None = Field(None, ge=0, le=86_400)


class TestResult(BaseModel):
    name: str
    passed: bool
    message: str | None = None
    input: str | None = None
    expected: str | None = None
    actual: str | None = None


class Rubric(BaseModel):
    correctness: float
    quality: float | None  # None: not scored for this language (no LLM, no static measure)
    efficiency: float
    style: float | None  # None: not checked in this language (docs/LANGUAGES.md, "Style, per language")


class SubmissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: SubmissionStatus
    grade: float | None = Field(description="0–100.")
    tests_passed: int
    tests_total: int
    results: list[TestResult]
    stdout: str
    stderr: str
    feedback: str | None
    strengths: list[str]
    improvements: list[str]
    rubric: Rubric | None
    created_at: datetime


class AchievementUnlocked(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    title: str
    points: int


class Streak(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    current: int
    longest: int
    extended: bool


class DifficultyChange(BaseModel):
    from_: Difficulty = Field(alias="from")
    to: Difficulty
    message: str

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, from_attributes=True)


class SubmitResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    submission: SubmissionRead
    user_exercise: UserExerciseRead
    achievements_unlocked: list[AchievementUnlocked]
    streak: Streak
    difficulty_change: DifficultyChange | None


class HintRequest(BaseModel):
    current_code: str | None = Field(None, max_length=CODE_MAX)
    question: str | None = Field(None, max_length=QUESTION_MAX)


class HintRead(BaseModel):
    hint: str
    hint_level: int = Field(ge=1, le=3)
    hints_used: int
    hints_remaining: int
    source: Literal["authored", "llm"]


class SkipResult(BaseModel):
    user_exercise: UserExerciseRead
    skips_remaining_this_week: int


class DifficultyRead(BaseModel):
    current: Difficulty
    recommended: Difficulty
    reason: str
    consecutive_successes: int
    consecutive_struggles: int
    average_grade: float | None
    average_hints: float | None


class DifficultyUpdate(BaseModel):
    difficulty: Difficulty


class GenerateRequest(BaseModel):
    topic: str | None = Field(None, min_length=1, max_length=TOPIC_MAX)
    difficulty: Difficulty | None = None
    exercise_type: ExerciseType | None = None
    language: str | None = Field(
        None, max_length=40, description="A graded language (GET /exercises/languages); python when omitted."
    )


class ExerciseWrite(BaseModel):
    """An exercise as an admin writes it: everything a student sees plus the solution, tests and hints.

    `examples` are visible tests in the hidden tests' format; when omitted the first two tests are shown."""

    slug: str = Field(min_length=1, max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    starter_code: str = Field(max_length=CODE_MAX)
    language: Literal["python"] = "python"
    difficulty: Difficulty
    exercise_type: ExerciseType
    topics: list[Topic] = Field(min_length=1, max_length=10)
    examples: list[CallTest | ProgramTest] | None = Field(None, max_length=5)
    solution: str = Field(min_length=1, max_length=CODE_MAX)
    tests: list[CallTest | ProgramTest] = Field(min_length=1, max_length=100)
    hints: list[HintText] = Field(min_length=3, max_length=3)

    def stored(self) -> dict[str, Any]:
        tests = [test.model_dump(exclude_none=True) for test in self.tests]
        examples = [test.model_dump(exclude_none=True) for test in self.examples] if self.examples else tests[:2]
        return self.model_dump(exclude={"tests", "examples"}) | {"tests": tests, "examples": examples}


class ExercisePage(Page[ExerciseSummary]):
    pass


class HistoryPage(Page[HistoryItem]):
    model_config = ConfigDict(title="ExerciseHistoryPage")


class SubmissionPage(Page[SubmissionRead]):
    pass
