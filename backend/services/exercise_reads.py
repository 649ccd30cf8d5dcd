"""The catalog as the read paths show it: a page of summaries, and exercises as students see them.

Catalog rows change only through writes that move `updated_at` (admin edits, the catalog seed). A read
asks the database which exercises match and at which `updated_at` (so it still decides what a user sees
and whether a view is current) and takes each one's view from a per-process cache keyed by both,
sparing the decoding and shaping of the same rows on every request (docs/PERFORMANCE.md). The views are
the API's read schemas: a `ViewCache` is given the schema that shapes a row, and keeps what it built.
Statements are built once: building one costs more than running it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import and_, bindparam, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db import ReadStatement, fetch
from backend.integrations.sandbox.languages import graded
from backend.models import User
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.services.exercises import ExerciseNotFound


class ExerciseView(Protocol):
    """What the read path needs of a view: its topics (`?topic=` filters on them)."""

    @property
    def topics(self) -> list[str]: ...


View = TypeVar("View", bound=ExerciseView)

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


class ViewCache(Generic[View]):
    """Views of exercises, each built by `shape` from the exercise's row (a read schema's `model_validate`:
    the API layer owns the schemas) and kept while the row's `updated_at` is the one it was built from.
    Bounded: generated exercises are unbounded, the catalog is not."""

    def __init__(self, shape: Callable[[Any], View], limit: int = 4096) -> None:
        self.shape, self.limit = shape, limit
        self._views: dict[int, tuple[datetime, View]] = {}

    def get(self, exercise_id: int, updated_at: datetime) -> View | None:
        found = self._views.get(exercise_id)
        return found[1] if found is not None and found[0] == updated_at else None

    def put(self, row: Any) -> View:
        """The view of `row` (with its `id` and `updated_at`), shaped and kept."""
        if len(self._views) >= self.limit:
            self._views.clear()
        view = self.shape(row)
        self._views[row.id] = (row.updated_at, view)
        return view


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


async def _summaries(
    connection: AsyncConnection, summaries: ViewCache[View], rows: Sequence[Mapping[Any, Any]]
) -> list[View]:
    """The summary of each (id, updated_at) row, in order: cached, the missing ones read in one query."""
    found = {row["id"]: view for row in rows if (view := summaries.get(row["id"], row["updated_at"])) is not None}
    missing = [row["id"] for row in rows if row["id"] not in found]
    if missing:
        statement = select(*SUMMARY_COLUMNS, Exercise.updated_at).where(Exercise.id.in_(missing))
        for row in await connection.execute(statement):
            found[row.id] = summaries.put(row)
    return [found[row["id"]] for row in rows if row["id"] in found]  # one deleted in between is left out


async def list_exercises(
    connection: AsyncConnection,
    user: User,
    summaries: ViewCache[View],
    *,
    language: str | None,
    difficulty: str | None,
    topic: str | None,
    exercise_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[View], int]:
    """A page of summaries (`summaries`' views of the catalog's rows) and the total that match."""
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
            return await _summaries(connection, summaries, page), page[0]["total"] if page else 0
        # A page past the end has no row to carry the count.
        return [], len(await fetch(connection, _matching(graded_languages, chosen, False), values))
    # Topics are a short JSON list: filtering here keeps one query shape on SQLite and PostgreSQL.
    wanted = topic.strip().lower()
    every = await fetch(connection, _matching(graded_languages, chosen, False), values)
    views = await _summaries(connection, summaries, every)
    matching = [view for view in views if wanted in map(str.lower, view.topics)]
    return matching[offset : offset + limit], len(matching)


async def cached_view(
    connection: AsyncConnection, views: ViewCache[View], exercise_id: int, updated_at: datetime
) -> View:
    """The view of the exercise whose row has this `updated_at`, read and shaped once per process."""
    view = views.get(exercise_id, updated_at)
    if view is None:
        view = views.put((await connection.execute(select(Exercise.__table__).where(Exercise.id == exercise_id))).one())
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


# What a history item shows (`HistoryItem`): the user's row and a few of its exercise's columns.
HISTORY_COLUMNS = (
    UserExercise.id,
    UserExercise.exercise_id,
    UserExercise.status,
    UserExercise.assigned_for,
    UserExercise.hints_used,
    UserExercise.submissions_count,
    UserExercise.best_grade,
    UserExercise.time_spent_seconds,
    UserExercise.started_at,
    UserExercise.completed_at,
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
