"""What the tutor knows about an exercise conversation: the exercise, the student's latest submission,
the hints already given.

Read in the one query that also checks the conversation's ownership (no extra round trip before a
streamed reply's first byte). Only what a student may see goes into the context: the exercise's title,
description and visible examples, the authored hints up to the next one, and the submission's code,
status and per-test names and kinds of failure. The reference solution and the hidden tests' inputs and
expected values are never read here, so they cannot reach a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.content.shapes import visible_example
from backend.models import User
from backend.models.chat import Conversation
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.models.learner import LearnerProfile
from backend.services.prompts import ExerciseContext, FailedTest, SubmissionContext

GRADED = ("passed", "failed", "error", "timeout")
MAX_HINTS = 3
HIDDEN_RAISED = re.compile(r"^This hidden test raised ([A-Za-z_][A-Za-z0-9_]*)\.")
EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt))\b")
LINE = re.compile(r"\bline (\d{1,6})\b")


def failure_kind(message: str | None) -> str:
    """The kind of a failing test from the message a student sees: an exception class, `timeout`,
    `not run`, or `wrong result`."""
    text = (message or "").strip()
    for pattern in (HIDDEN_RAISED, EXCEPTION):
        match = pattern.match(text)
        if match:
            return match.group(1)
    if "timed out" in text or "ran out of time" in text:
        return "timeout"
    if "output limit" in text:
        return "output limit exceeded"
    if text.startswith("no result") or "exited before" in text:
        return "not run"
    return "wrong result"


def error_line(stderr: str | None, results: list[dict[str, Any]]) -> int | None:
    """The line Python complained about (a syntax error's, or the last traceback frame's), if it said."""
    texts = [stderr or "", *(str(row.get("message") or "") for row in results if not row.get("passed"))]
    for text in texts:
        found = LINE.findall(text)
        if found:
            return int(found[-1])
    return None


class SubmissionRow(NamedTuple):
    """What the tutor reads of a submission (its columns in `statement`, in this order)."""

    id: int
    status: str
    tests_passed: int
    tests_total: int
    code: str
    results: list[dict[str, Any]] | None
    stderr: str | None


SUBMISSION_COLUMNS = tuple(getattr(Submission, name) for name in SubmissionRow._fields)


def submission_context(submission: SubmissionRow) -> SubmissionContext:
    results = list(submission.results or [])
    failing = tuple(
        FailedTest(str(row.get("name") or "a test"), failure_kind(row.get("message")))
        for row in results
        if not row.get("passed")
    )
    return SubmissionContext(
        id=submission.id,
        status=submission.status,
        tests_passed=submission.tests_passed,
        tests_total=submission.tests_total,
        code=submission.code,
        failing=failing,
        error_line=error_line(submission.stderr, results) if submission.status != "passed" else None,
    )


def exercise_context(
    title: str, description: str, examples: list[dict[str, Any]], hints: list[str], hints_used: int,
    submission: SubmissionRow | None,
) -> ExerciseContext:  # fmt: skip
    usable = hints[:MAX_HINTS]
    given = max(0, min(hints_used, len(usable)))
    return ExerciseContext(
        title=title,
        description=description,
        examples=tuple(visible_example(example)._asdict() for example in examples),
        hints_given=tuple(usable[:given]),
        next_hint=usable[given] if given < len(usable) else None,
        submission=submission_context(submission) if submission is not None else None,
    )


class Loaded(NamedTuple):
    exercise: ExerciseContext | None
    learner_summary: str | None
    also: tuple[Any, ...]  # the values of the caller's `also` columns, in order


def statement(graded_languages: tuple[str, ...], also: Sequence[ColumnElement[Any]] = ()) -> Select[Any]:
    """The conversation's id if it is the user's, for an exercise conversation its context, and the learner
    model's summary of the student, in one query: the exercise (if the user may see it), their hint count,
    and the submission the conversation was started from, else their latest graded one. `also`: scalar
    columns the caller wants read by the same query (the chat's history and budget: one round trip before
    the tutor is asked). Values are bind parameters (`user_id`, `conversation_id`, and those of `also`),
    so a caller builds it once and runs it for everyone (building costs more than running it)."""
    user_id: BindParameter[int] = bindparam("user_id")
    latest = aliased(Submission)
    latest_id = (
        select(func.max(latest.id))
        .where(
            latest.user_id == user_id,
            latest.exercise_id == Conversation.exercise_id,
            or_(*(latest.status == literal(status) for status in GRADED)),  # no list parameter: `db.fetch`
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    # exercises.visible_to, with the user's id as a parameter and the graded languages fixed at build time
    visible = and_(
        or_(Exercise.visibility == "public", Exercise.author_id == user_id),
        or_(*(Exercise.language == literal(name) for name in graded_languages)),
    )
    return (
        select(
            Conversation.id,
            Exercise.title,
            Exercise.description,
            Exercise.examples,
            Exercise.hints,
            UserExercise.hints_used,
            *SUBMISSION_COLUMNS,
            LearnerProfile.summary,
            *also,
        )
        .outerjoin(Exercise, and_(Exercise.id == Conversation.exercise_id, visible))
        .outerjoin(UserExercise, and_(UserExercise.exercise_id == Exercise.id, UserExercise.user_id == user_id))
        .outerjoin(
            Submission,
            and_(
                Submission.id == func.coalesce(Conversation.submission_id, latest_id),
                Submission.user_id == user_id,
                Submission.exercise_id == Exercise.id,
            ),
        )
        .outerjoin(LearnerProfile, LearnerProfile.user_id == Conversation.user_id)
        .where(Conversation.id == bindparam("conversation_id"), Conversation.user_id == user_id)
    )


def loaded(row: Mapping[Any, Any] | None) -> Loaded | None:
    """What `statement` found (a row of `db.fetch`): None for a conversation that is not the user's."""
    if row is None:
        return None
    values = tuple(row.values())
    _, title, description, examples, hints, hints_used = values[:6]
    columns = len(SubmissionRow._fields)
    found = SubmissionRow(*values[6 : 6 + columns])
    summary, extra = values[6 + columns], values[7 + columns :]
    submission = found if found.id is not None else None
    if title is None:
        return Loaded(None, summary or None, tuple(extra))
    context = exercise_context(title, description, list(examples or []), list(hints or []), hints_used or 0, submission)
    return Loaded(context, summary or None, tuple(extra))


async def submission_for_conversation(session: AsyncSession, user: User, submission_id: int) -> Submission | None:
    """One of the user's submissions (to start a conversation from); None for anyone else's."""
    return await session.scalar(select(Submission).where(Submission.id == submission_id, Submission.user_id == user.id))
