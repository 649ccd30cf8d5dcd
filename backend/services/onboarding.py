"""Onboarding: five questions, a server-side draft to resume on any device, and the submission that
applies the answers to the profile. Resubmitting later updates the profile the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User

FIELDS = ("programming_language", "skill_level", "career_goals", "learning_style", "time_commitment")

# value → (label, description). Keys must be the values the request bodies accept (schemas/users.py; a test
# in tests/api/test_onboarding.py compares them).
OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "programming_language": {
        "python": ("Python", "Readable and versatile: scripting, data, the web and beginners' favourite."),
        "javascript": ("JavaScript", "The language of the web browser, and of servers with Node.js."),
        "typescript": ("TypeScript", "JavaScript with static types, for larger front- and back-end code."),
        "java": ("Java", "Enterprise back ends and Android; strongly typed and object-oriented."),
        "c": ("C", "Close to the machine: systems programming, embedded devices, how computers work."),
        "cpp": ("C++", "High-performance code: games, engines, competitive programming."),
        "csharp": ("C#", ".NET applications, Windows software and Unity games."),
        "go": ("Go", "Simple, fast services and command-line tools with easy concurrency."),
        "rust": ("Rust", "Memory-safe systems programming without a garbage collector."),
        "ruby": ("Ruby", "Expressive and friendly; Ruby on Rails web applications."),
        "kotlin": ("Kotlin", "Modern Android and JVM development."),
        "swift": ("Swift", "Apps for iPhone, iPad and Mac."),
        "php": ("PHP", "Server-side web development: WordPress, Laravel and much of the web."),
    },
    "skill_level": {
        "beginner": ("Beginner", "New to programming or to this language: variables, loops, functions."),
        "intermediate": ("Intermediate", "Comfortable with the basics; building small projects on your own."),
        "advanced": ("Advanced", "Fluent: data structures, algorithms and larger codebases."),
        "expert": ("Expert", "Professional experience; here to sharpen and stretch yourself."),
    },
    "learning_style": {
        "hands_on": ("Hands-on", "Learn by doing: jump into exercises, read only what you need."),
        "visual": ("Visual", "Diagrams, worked examples and step-by-step walkthroughs."),
        "reading": ("Reading", "Thorough explanations of the concepts before practising."),
        "mixed": ("A mix", "A bit of everything, depending on the topic."),
    },
    "time_commitment": {
        "15_minutes": ("15 minutes a day", "A quick daily exercise to keep the habit."),
        "30_minutes": ("30 minutes a day", "An exercise and time to review it."),
        "1_hour": ("1 hour a day", "Steady progress with exercises, hints and the tutor."),
        "2_hours_plus": ("2 hours or more a day", "Intensive learning, e.g. preparing for interviews."),
    },
}
QUESTIONS: list[dict[str, Any]] = [
    {
        "field": "programming_language",
        "type": "select",
        "question": "Which programming language do you want to practise?",
    },
    {"field": "skill_level", "type": "select", "question": "How would you describe your programming experience?"},
    {
        "field": "career_goals",
        "type": "text",
        "question": "What do you want to achieve with programming? (e.g. a first job, a project, an exam)",
    },
    {"field": "learning_style", "type": "select", "question": "How do you like to learn?"},
    {"field": "time_commitment", "type": "select", "question": "How much time can you practise?"},
]


@dataclass(frozen=True)
class Option:
    value: str  # what the request body sends
    label: str
    description: str


@dataclass(frozen=True)
class Question:
    id: int  # its place, from 1
    field: str
    type: str  # select (one of `options`) or text
    question: str
    options: list[Option]  # none for a text answer, whose length limit is the request body's
    required: bool = True


def questions() -> list[Question]:
    """The questions in order, each with its options."""
    return [
        Question(
            number,
            question["field"],
            question["type"],
            question["question"],
            [Option(value, *shown) for value, shown in OPTIONS.get(question["field"], {}).items()],
        )
        for number, question in enumerate(QUESTIONS, start=1)
    ]


def answers(user: User) -> dict[str, Any]:
    saved = user.onboarding_answers or {}
    return {field: saved[field] for field in FIELDS if saved.get(field) is not None}


@dataclass(frozen=True)
class Progress:
    """Where the user's onboarding stands: submitted or not, and the answers saved so far."""

    completed: bool
    answers: dict[str, Any]


def state(user: User) -> Progress:
    return Progress(user.onboarding_completed, answers(user))


async def save_draft(session: AsyncSession, user: User, changes: dict[str, Any]) -> Progress:
    """Merge `changes` into the saved answers (`None` removes one). The profile is not touched."""
    merged = {**answers(user), **changes}
    # A new dict, not an in-place edit: the JSON column only notices assignment.
    user.onboarding_answers = {field: value for field, value in merged.items() if value is not None}
    await session.flush()
    return state(user)


async def submit(session: AsyncSession, user: User, submitted: dict[str, Any]) -> User:
    """Apply all five answers to the profile and mark onboarding completed (again, on resubmission)."""
    for field in FIELDS:
        setattr(user, field, submitted[field])
    user.onboarding_answers = {field: submitted[field] for field in FIELDS}
    user.onboarding_completed = True
    await session.flush()
    return user
