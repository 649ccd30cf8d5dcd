"""The catalog as the read paths show it: a page of summaries, and exercises' public views.

Catalog rows change only through writes that move `updated_at` (admin edits, the catalog seed). A read
asks the database which exercises match and at which `updated_at` (so it still decides what a user sees
and whether a view is current) and takes each one's view from a per-process cache keyed by both,
sparing the decoding and shaping of the same rows on every request (docs/PERFORMANCE.md). Statements
are built once: building one costs more than running it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db import ReadStatement, fetch
from backend.integrations.sandbox.languages import graded
from backend.models import User
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.services.exercises import USER_EXERCISE_FIELDS, ExerciseNotFound, public_view

# What a page of the catalog shows (`ExerciseSummary`): descriptions, tests and solutions stay unread.
SUMMARY_COLUMNS = (
    Exercise.id,
    Exercise.slug,
    Exercise.title,
    Exercise.language,
    Exercise.difficulty,
    Exercise.exercise_type,
    Exercise.topics,
    Exercise.generated_by_ai,
)
SUMMARY_FIELDS = tuple(column.key for column in SUMMARY_COLUMNS)


class ViewCache:
    """Views of exercises built from their rows, kept while the row's `updated_at` is the one they were
    built from. Bounded: generated exercises are unbounded, the catalog is not."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._views: dict[int, tuple[datetime, dict[str, Any]]] = {}

    def get(self, exercise_id: int, updated_at: datetime) -> dict[str, Any] | None:
        found = self._views.get(exercise_id)
        return found[1] if found is not None and found[0] == updated_at else None

    def put(self, exercise_id: int, updated_at: datetime, view: dict[str, Any]) -> dict[str, Any]:
        if len(self._views) >= self.limit:
            self._views.clear()
        self._views[exercise_id] = (updated_at, view)
        return view


SUMMARIES, PUBLIC_VIEWS = ViewCache(), ViewCache()


@functools.lru_cache(maxsize=64)
def _matching(graded_languages: tuple[str, ...], filters: frozenset[str], paged: bool) -> ReadStatement:
    """The ids and versions of the exercises a user may list, with the count of all that match, built once
    per filter combination (building a statement costs more than running it); values are bind parameters."""
    conditions = [
        or_(Exercise.visibility == "public", Exercise.author_id == bindparam("user_id")),
        or_(*(Exercise.language == literal(name) for name in graded_languages)),
    ]
    conditions += [getattr(Exercise, name) == bindparam(name) for name in sorted(filters)]
    statement = select(Exercise.id, Exercise.updated_at, func.count().over().label("total")).where(*conditions)
    statement = statement.order_by(Exercise.id)
    return ReadStatement(statement.limit(bindparam("limit")).offset(bindparam("offset")) if paged else statement)


async def _summaries(connection: AsyncConnection, rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """The summary of each (id, updated_at) row, in order: cached, the missing ones read in one query."""
    found = {row["id"]: view for row in rows if (view := SUMMARIES.get(row["id"], row["updated_at"])) is not None}
    missing = [row["id"] for row in rows if row["id"] not in found]
    if missing:
        statement = select(*SUMMARY_COLUMNS, Exercise.updated_at).where(Exercise.id.in_(missing))
        for row in await connection.execute(statement):
            view = {name: getattr(row, name) for name in SUMMARY_FIELDS}
            found[row.id] = SUMMARIES.put(row.id, row.updated_at, view)
    return [found[row["id"]] for row in rows if row["id"] in found]  # one deleted in between is left out


async def list_exercises(
    connection: AsyncConnection,
    user: User,
    *,
    language: str | None,
    difficulty: str | None,
    topic: str | None,
    exercise_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of summaries (dicts of the summary's fields) and the total that match."""
    values: dict[str, Any] = {"user_id": user.id, "limit": limit, "offset": offset}
    filters = {"language": language.lower() if language else None, "difficulty": difficulty}
    filters["exercise_type"] = exercise_type
    values |= {name: value for name, value in filters.items() if value is not None}
    chosen = frozenset(name for name, value in filters.items() if value is not None)
    graded_languages = tuple(graded())
    if topic is None:
        # The page and the total in one query: the window counts every match before LIMIT applies.
        page = await fetch(connection, _matching(graded_languages, chosen, True), values)
        if page or offset == 0:
            return await _summaries(connection, page), page[0]["total"] if page else 0
        # A page past the end has no row to carry the count.
        return [], len(await fetch(connection, _matching(graded_languages, chosen, False), values))
    # Topics are a short JSON list: filtering here keeps one query shape on SQLite and PostgreSQL.
    wanted = topic.strip().lower()
    every = await fetch(connection, _matching(graded_languages, chosen, False), values)
    matching = [view for view in await _summaries(connection, every) if wanted in map(str.lower, view["topics"])]
    return matching[offset : offset + limit], len(matching)


async def cached_public_view(connection: AsyncConnection, exercise_id: int, updated_at: datetime) -> dict[str, Any]:
    """`public_view` of the exercise whose row has this `updated_at`, read and shaped once per process."""
    view = PUBLIC_VIEWS.get(exercise_id, updated_at)
    if view is None:
        row = (await connection.execute(select(Exercise.__table__).where(Exercise.id == exercise_id))).one()
        view = PUBLIC_VIEWS.put(exercise_id, row.updated_at, public_view(row))
    return view


# What a submission shows (`SubmissionRead`); its results were stored as the student may see them
# (services/submissions/shown.py), and the code is not part of the view.
SUBMISSION_COLUMNS = (
    Submission.id,
    Submission.status,
    Submission.grade,
    Submission.tests_passed,
    Submission.tests_total,
    Submission.results,
    Submission.stdout,
    Submission.stderr,
    Submission.feedback,
    Submission.strengths,
    Submission.improvements,
    Submission.rubric,
    Submission.created_at,
)


def _visible(graded_languages: tuple[str, ...]) -> Any:
    return and_(
        Exercise.id == bindparam("exercise_id"),
        or_(Exercise.visibility == "public", Exercise.author_id == bindparam("user_id")),
        or_(*(Exercise.language == literal(name) for name in graded_languages)),
    )


@functools.lru_cache(maxsize=8)
def _submission_statements(graded_languages: tuple[str, ...]) -> tuple[ReadStatement, ReadStatement]:
    """The page, and the count alone (for a page past the end), of the user's submissions of an exercise
    they may see. Outer-joined from the exercise: an exercise without submissions still gives a row (with
    no submission and a count of 0), one they may not see gives none. Built once per set of graded languages."""
    mine = and_(Submission.exercise_id == Exercise.id, Submission.user_id == bindparam("user_id"))
    page = (
        select(*SUBMISSION_COLUMNS, func.count(Submission.id).over().label("total"))
        .select_from(Exercise)
        .outerjoin(Submission, mine)
        .where(_visible(graded_languages))
        .order_by(Submission.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = (
        select(Exercise.id, func.count(Submission.id).label("total"))
        .select_from(Exercise)
        .outerjoin(Submission, mine)
        .where(_visible(graded_languages))
        .group_by(Exercise.id)
    )
    return ReadStatement(page), ReadStatement(count)


async def submission_page(
    connection: AsyncConnection, user: User, exercise_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The user's submissions of an exercise, newest first (dicts of `SubmissionRead`'s fields), and how many
    there are; 404 for an exercise that is not theirs to see. One query, two for a page past the end."""
    page, count = _submission_statements(tuple(graded()))
    values = {"user_id": user.id, "exercise_id": exercise_id, "limit": limit, "offset": offset}
    rows = await fetch(connection, page, values)
    if not rows:  # not visible, or past the end: the count tells which
        found = await fetch(connection, count, values)
        if not found:
            raise ExerciseNotFound()
        return [], found[0]["total"]
    items = [dict(row) for row in rows if row["id"] is not None]
    return items, rows[0]["total"]


HISTORY_COLUMNS = (
    *(getattr(UserExercise, name) for name in USER_EXERCISE_FIELDS),
    Exercise.title,
    Exercise.difficulty,
    Exercise.language,
)
# Filters of the history: on the user's row (status) or on the exercise's (difficulty, language).
HISTORY_FILTERS = {"status": UserExercise.status, "difficulty": Exercise.difficulty, "language": Exercise.language}


@functools.lru_cache(maxsize=16)
def _history_statement(filters: frozenset[str], paged: bool) -> ReadStatement:
    """The user's exercises with their titles, most recent first, with the count of all that match; built
    once per filter combination (values are bind parameters)."""
    conditions = [UserExercise.user_id == bindparam("user_id")]
    conditions += [HISTORY_FILTERS[name] == bindparam(name) for name in sorted(filters)]
    statement = (
        select(*HISTORY_COLUMNS, func.count().over().label("total"))
        .join(Exercise, Exercise.id == UserExercise.exercise_id)
        .where(*conditions)
        .order_by(func.coalesce(UserExercise.started_at, UserExercise.created_at).desc(), UserExercise.id.desc())
    )
    return ReadStatement(statement.limit(bindparam("limit")).offset(bindparam("offset")) if paged else statement)


async def history(
    connection: AsyncConnection,
    user: User,
    *,
    status: str | None,
    difficulty: str | None,
    language: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the user's exercises (dicts of `HistoryItem`'s fields) and how many match: one query, two
    for a page past the end."""
    filters = {"status": status, "difficulty": difficulty, "language": language.lower() if language else None}
    chosen = frozenset(name for name, value in filters.items() if value is not None)
    values: dict[str, Any] = {"user_id": user.id, "limit": limit, "offset": offset}
    values |= {name: filters[name] for name in chosen}
    rows = await fetch(connection, _history_statement(chosen, True), values)
    if not rows and offset:  # a page past the end has no row to carry the count
        return [], len(await fetch(connection, _history_statement(chosen, False), values))
    return [dict(row) for row in rows], rows[0]["total"] if rows else 0
