"""The learner model: what the tutor remembers about a student across exercises.

Updated by `record_graded` in the short transaction that writes a submission's grade, so it can never
disagree with the grades. Per topic it keeps counts and a mastery in [0, 1]:

    mastery = average grade of completions / 100 × completion rate (completed / attempted exercises)
              × (1 − 0.08 × hints per completion) × (1 − min(0.3, 0.1 × failed submissions per exercise))
              × time factor (1 up to 20 min per completion, down to 0.8 for very long ones)

The same counters are kept per language of the exercises (`LearnerTopic.languages`), so a topic shows
how it goes in each language practised (the mastery per language comes from that language's counts
alone), and every mistake names its exercise's language.

Mistakes are classified by kind from what the sandbox and the linters saw (edge cases on empty input,
off-by-one results, wrong types, exceptions by class, timeouts, syntax errors, style findings), judged
on the server, where the hidden tests are known; what is stored and shown names a test, never its input
or expected value. A short summary (budgeted in tokens) is refreshed with each grade, so the chat, hint
and review prompts read one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.integrations.llm.tokens import count_tokens
from backend.integrations.sandbox import RunResult
from backend.models import User
from backend.models.exercises import Exercise, UserExercise
from backend.models.learner import LearnerMistake, LearnerProfile, LearnerTopic
from backend.services import exercises as exercises_service
from backend.services.learner.mistakes import mistake_label, run_mistakes

STRONG_MASTERY, WEAK_MASTERY = 0.7, 0.5
RECURRING = 2  # a mistake kind seen in this many submissions is recurring
MAX_MISTAKES_PER_SUBMISSION = 6
RECENT_MISTAKES = 10
SUGGESTED_TOPICS = 5
SUMMARY_TOKEN_BUDGET = 120
TOPIC_CHARS = 60

# --- mastery and the summary -----------------------------------------------------------------------


# What a topic counts, in all languages (LearnerTopic's columns) and per language (`LearnerTopic.languages`).
COUNTERS = (
    "attempts", "failures", "exercises_attempted", "exercises_completed", "grade_total", "hints_used",
    "time_spent_seconds",
)  # fmt: skip


def mastery_from(counts: Mapping[str, float]) -> float:
    attempted, completed = counts.get("exercises_attempted", 0), counts.get("exercises_completed", 0)
    if not attempted or not completed:
        return 0.0
    average_grade = counts.get("grade_total", 0.0) / completed / 100
    completion_rate = min(1.0, completed / attempted)
    hints = 1 - 0.08 * (counts.get("hints_used", 0) / completed)
    retries = 1 - min(0.3, 0.1 * (counts.get("failures", 0) / attempted))
    minutes = counts.get("time_spent_seconds", 0) / completed / 60
    time_factor = 1.0 if minutes <= 20 else max(0.8, 1 - (minutes - 20) / 200)
    return round(max(0.0, min(1.0, average_grade * completion_rate * hints * retries * time_factor)), 3)


def mastery_of(topic: LearnerTopic) -> float:
    return mastery_from({name: getattr(topic, name) for name in COUNTERS})


def strengths(topics: Iterable[LearnerTopic]) -> list[LearnerTopic]:
    chosen = [t for t in topics if t.exercises_completed and t.mastery >= STRONG_MASTERY]
    return sorted(chosen, key=lambda t: (-t.mastery, t.topic))


def weaknesses(topics: Iterable[LearnerTopic]) -> list[LearnerTopic]:
    chosen = [t for t in topics if t.attempts and t.mastery < WEAK_MASTERY]
    return sorted(chosen, key=lambda t: (t.mastery, -t.failures, t.topic))


def recurring(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, n) for k, n in counts.items() if n >= RECURRING), key=lambda item: (-item[1], item[0]))


def build_summary(topics: Sequence[LearnerTopic], counts: dict[str, int], budget: int = SUMMARY_TOKEN_BUDGET) -> str:
    """One or two sentences for the prompts, dropping the least important items until they fit `budget`."""
    strong = [t.topic for t in strengths(topics)[:3]]
    weak = [f"{t.topic} (mastery {t.mastery:.2f})" for t in weaknesses(topics)[:3]]
    mistakes = [f"{mistake_label(kind)} (in {n} submissions)" for kind, n in recurring(counts)[:4]]
    while True:
        parts = []
        if weak:
            parts.append("Weak topics: " + ", ".join(weak) + ".")
        if mistakes:
            parts.append("Recurring mistakes: " + ", ".join(mistakes) + ".")
        if strong:
            parts.append("Strong topics: " + ", ".join(strong) + ".")
        text = " ".join(parts)
        if count_tokens(text) <= budget or not (strong or weak or mistakes):
            return text
        for items in (strong, mistakes, weak):  # the strengths matter least to a tutor helping now
            if items:
                items.pop()
                break


# --- writes (in the grading transaction) -----------------------------------------------------------


def _topics(exercise: Exercise) -> list[str]:
    seen: dict[str, None] = {}
    for topic in exercise.topics or []:
        name = str(topic).strip().lower()[:TOPIC_CHARS]
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _count(topic: LearnerTopic, language: str, counted: Mapping[str, float]) -> None:
    """Add one graded submission's counts to the topic, in all languages and in `language`."""
    for name, value in counted.items():
        setattr(topic, name, getattr(topic, name) + value)
    topic.mastery = mastery_of(topic)
    languages = dict(topic.languages or {})  # a new dict: the JSON column sees the change
    mine = {name: languages.get(language, {}).get(name, 0) + value for name, value in counted.items()}
    languages[language] = mine
    topic.languages = languages


async def _profile_and_topics(session: AsyncSession, user_id: int) -> tuple[LearnerProfile, list[LearnerTopic]]:
    """The student's profile and every topic of theirs, in one statement (the profile repeated on each
    topic's row): the exercise's topics are updated, all of them make the summary. Both are written
    together, so a student without a profile has no topics yet (checked anyway, for rows made otherwise)."""
    rows = (
        await session.execute(
            select(LearnerProfile, LearnerTopic)
            .outerjoin(LearnerTopic, LearnerTopic.user_id == LearnerProfile.user_id)
            .where(LearnerProfile.user_id == user_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    if rows:
        return rows[0][0], [topic for _, topic in rows if topic is not None]
    profile = LearnerProfile(user_id=user_id, mistake_counts={}, summary="")
    session.add(profile)
    topics = await session.scalars(select(LearnerTopic).where(LearnerTopic.user_id == user_id))
    return profile, list(topics)


async def record_graded(
    session: AsyncSession,
    user: User,
    *,
    exercise: Exercise,
    row: UserExercise,
    submission_id: int,
    run: RunResult,
    style_issues: Sequence[tuple[str, str]],
    completed: bool,
    grade: float,
) -> None:
    """Fold one graded submission into the learner model. `row` is the user's exercise row, already
    counting this submission (and completed, when `completed`); the caller holds the user's row lock."""
    now = utcnow()
    topics = _topics(exercise)
    profile, known = await _profile_and_topics(session, user.id)
    existing = {topic.topic: topic for topic in known}
    counted = {
        "attempts": 1,
        "failures": int(run.status != "passed"),
        "exercises_attempted": int(row.submissions_count == 1),  # the row is per exercise, in one language
        "exercises_completed": int(completed),
        "grade_total": min(max(grade, 0.0), 100.0) if completed else 0.0,
        "hints_used": row.hints_used if completed else 0,
        "time_spent_seconds": row.time_spent_seconds if completed else 0,
    }
    for name in topics:
        topic = existing.get(name)
        if topic is None:
            topic = LearnerTopic(
                user_id=user.id, topic=name, attempts=0, failures=0, exercises_attempted=0, exercises_completed=0,
                grade_total=0.0, hints_used=0, time_spent_seconds=0, mastery=0.0, languages={},
            )  # fmt: skip
            session.add(topic)
            known.append(topic)
        _count(topic, exercise.language, counted)
        topic.last_practiced_at = now

    mistakes = run_mistakes(run) if run.status != "passed" else {}
    for kind, detail in style_issues:
        mistakes.setdefault(kind, detail)
    for kind, detail in list(mistakes.items())[:MAX_MISTAKES_PER_SUBMISSION]:
        session.add(
            LearnerMistake(
                user_id=user.id, exercise_id=exercise.id, submission_id=submission_id, kind=kind,
                detail=detail[:300], topics=topics, language=exercise.language, created_at=now,
            )
        )  # fmt: skip
    counts = dict(profile.mistake_counts or {})
    for kind in list(mistakes)[:MAX_MISTAKES_PER_SUBMISSION]:
        counts[kind] = counts.get(kind, 0) + 1
    profile.mistake_counts = counts
    profile.summary = build_summary(known, counts)
    profile.updated_at = now


# --- reads -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recurring:
    kind: str
    count: int  # submissions it was seen in


@dataclass(frozen=True)
class LearningProfile:
    """What `GET /users/me/learning-profile` shows, as rows: the learner schema shapes them."""

    goals: User  # what the student said they want, in onboarding
    topics: list[LearnerTopic]
    strengths: list[LearnerTopic]
    weaknesses: list[LearnerTopic]
    recurring_mistakes: list[Recurring]
    recent_mistakes: list[LearnerMistake]
    suggested_next_topics: list[str]
    summary: str
    updated_at: datetime | None


async def learning_profile(session: AsyncSession, user: User) -> LearningProfile:
    """`GET /users/me/learning-profile`. Suggested next: the weak topics, weakest first, then topics of
    exercises the student may see and has not tried yet."""
    topics = list(
        await session.scalars(select(LearnerTopic).where(LearnerTopic.user_id == user.id).order_by(LearnerTopic.topic))
    )
    profile = await session.get(LearnerProfile, user.id)
    recent = list(
        await session.scalars(
            select(LearnerMistake)
            .where(LearnerMistake.user_id == user.id)
            .order_by(LearnerMistake.id.desc())
            .limit(RECENT_MISTAKES)
        )
    )
    counts = dict(profile.mistake_counts or {}) if profile else {}
    weak = weaknesses(topics)
    tried = {topic.topic for topic in topics}
    suggested = [topic.topic for topic in weak]
    catalog_topics = {
        str(topic).strip().lower()[:TOPIC_CHARS]
        for topics in await session.scalars(select(Exercise.topics).where(exercises_service.visible_to(user)))
        for topic in topics or []
    }
    for name in sorted(catalog_topics - tried):
        if name:
            suggested.append(name)
    return LearningProfile(
        goals=user,
        topics=topics,
        strengths=strengths(topics),
        weaknesses=weak,
        recurring_mistakes=[Recurring(kind, count) for kind, count in recurring(counts)],
        recent_mistakes=recent,
        suggested_next_topics=suggested[:SUGGESTED_TOPICS],
        summary=profile.summary if profile else "",
        updated_at=profile.updated_at if profile else None,
    )


async def summary_of(session: AsyncSession, user_id: int) -> str | None:
    return await session.scalar(select(LearnerProfile.summary).where(LearnerProfile.user_id == user_id)) or None


async def weakness_hints(session: AsyncSession, user_id: int) -> list[str]:
    """The student's weak topics and recurring mistakes as short phrases (for the review prompt)."""
    topics = list(await session.scalars(select(LearnerTopic).where(LearnerTopic.user_id == user_id)))
    counts = await session.scalar(select(LearnerProfile.mistake_counts).where(LearnerProfile.user_id == user_id))
    phrases = [mistake_label(kind) for kind, _ in recurring(dict(counts or {}))[:4]]
    return phrases + [f"the topic {t.topic}" for t in weaknesses(topics)[:3]]


async def weak_topics(session: AsyncSession, user_id: int) -> set[str]:
    topics = await session.scalars(select(LearnerTopic).where(LearnerTopic.user_id == user_id))
    return {topic.topic for topic in weaknesses(topics)}


async def blocked_topics(session: AsyncSession, user_id: int, day: date) -> set[str]:
    """Topics assigned on both of the two previous days: a third day in a row is not allowed."""
    rows = (
        await session.execute(
            select(UserExercise.assigned_for, Exercise.topics)
            .join(Exercise, Exercise.id == UserExercise.exercise_id)
            .where(
                UserExercise.user_id == user_id,
                UserExercise.assigned_for.in_((day - timedelta(days=1), day - timedelta(days=2))),
            )
        )
    ).all()
    by_day: dict[date, set[str]] = {}
    for assigned_for, topics in rows:
        if assigned_for is not None:  # always, given the filter; the column itself is nullable
            by_day.setdefault(assigned_for, set()).update(str(t).strip().lower() for t in topics or [])
    if len(by_day) < 2:
        return set()
    first, second = by_day.values()
    return first & second


@dataclass(frozen=True)
class LearnerExport:
    """Everything the learner model holds about a user (the export's `learning_profile`), as rows."""

    topics: list[LearnerTopic]
    mistakes: list[LearnerMistake]
    mistake_counts: dict[str, int]
    summary: str


async def export_learning_profile(session: AsyncSession, user: User) -> LearnerExport:
    """Everything the learner model holds about `user` (GET /users/me/export, key `learning_profile`)."""
    topics = await session.scalars(
        select(LearnerTopic).where(LearnerTopic.user_id == user.id).order_by(LearnerTopic.topic)
    )
    mistakes = await session.scalars(
        select(LearnerMistake).where(LearnerMistake.user_id == user.id).order_by(LearnerMistake.id)
    )
    profile = await session.get(LearnerProfile, user.id)
    return LearnerExport(
        topics=list(topics),
        mistakes=list(mistakes),
        mistake_counts=dict(profile.mistake_counts or {}) if profile else {},
        summary=profile.summary if profile else "",
    )
