"""The exercise catalog, daily assignments, hints and graded submissions."""

from __future__ import annotations

from dataclasses import asdict

from quart import Blueprint, current_app
from quart_schema import tag_blueprint, validate_querystring, validate_request, validate_response

from backend.api.guards import current_user, require_role, require_user, user_llm
from backend.api.openapi import no_content, problem_responses
from backend.db import get_session, read_connection, read_only, writable_session
from backend.integrations.llm import LLM
from backend.integrations.sandbox import Sandbox, languages
from backend.middleware.rate_limit import rate_limit
from backend.schemas.common import PageQuery
from backend.schemas.exercises import (
    Daily,
    DifficultyRead,
    DifficultyUpdate,
    ExercisePage,
    ExerciseQuery,
    ExerciseRead,
    ExerciseSummary,
    ExerciseWrite,
    GenerateRequest,
    HintRead,
    HintRequest,
    HistoryPage,
    HistoryQuery,
    LanguageList,
    LanguageQuery,
    LanguageRead,
    SkipResult,
    SubmissionCreate,
    SubmissionPage,
    SubmitResult,
    UserExerciseRead,
)
from backend.services import daily as daily_service
from backend.services import difficulty as difficulty_service
from backend.services import exercise_reads
from backend.services import exercises as exercises_service
from backend.services import generation as generation_service
from backend.services import hints as hints_service
from backend.services import submissions as submissions_service

bp = Blueprint("exercises", __name__)
tag_blueprint(bp, ["exercises"])


def current_sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def configured_llm() -> LLM | None:
    """The user's budgeted LLM (api/guards.py), or None when only the offline tutor is configured."""
    return submissions_service.real_llm(user_llm())


# The read schemas of exercises, each built once per version of its row in this process: the read paths
# of the catalog and the daily exercise take them from here (services/exercise_reads.py).
SUMMARIES = exercise_reads.ViewCache(ExerciseSummary.model_validate)
EXERCISES = exercise_reads.ViewCache(ExerciseRead.model_validate)


# --- the catalog -----------------------------------------------------------------------------------


@bp.get("")
@require_user
@read_only
@validate_querystring(ExerciseQuery)
@validate_response(ExercisePage)
async def list_exercises(query_args: ExerciseQuery) -> ExercisePage:
    """Browse the exercises you may see: the catalog plus the ones generated for you."""
    async with read_connection() as connection:
        items, total = await exercise_reads.list_exercises(
            connection,
            current_user(),
            SUMMARIES,
            language=query_args.language,
            difficulty=query_args.difficulty,
            topic=query_args.topic,
            exercise_type=query_args.exercise_type,
            limit=query_args.limit,
            offset=query_args.offset,
        )
    return ExercisePage.of(items, total, query_args)


@bp.get("/languages")
@require_user
@read_only
@validate_response(LanguageList)
async def list_exercise_languages() -> LanguageList:
    """The languages exercises are graded in on this server, with the version of each toolchain.

    A language whose toolchain is not installed is not listed, and none of its exercises is offered."""
    offered = languages.offered(current_sandbox())
    return LanguageList(items=[LanguageRead.model_validate(language) for language in offered.values()])


@bp.get("/daily")
@require_user
@read_only
@validate_response(Daily)
@problem_responses(404)
async def get_daily_exercise() -> Daily:
    """Today's exercise: at most one per local day, an open earlier one first.

    Chosen by your language, your adaptive difficulty and the topics you have not done yet."""
    async with read_connection() as connection:
        found = await daily_service.current(connection, current_user(), EXERCISES)
    if found is None:  # the day's first request chooses and assigns, in a transaction
        return Daily.of(await daily_service.daily(await writable_session(), current_user()))
    return Daily.of(found)


@bp.get("/history")
@require_user
@read_only
@validate_querystring(HistoryQuery)
@validate_response(HistoryPage)
async def list_exercise_history(query_args: HistoryQuery) -> HistoryPage:
    """Your exercises (assigned, started, completed, skipped), most recent first."""
    async with read_connection() as connection:
        items, total = await exercise_reads.history(
            connection,
            current_user(),
            status=query_args.status,
            difficulty=query_args.difficulty,
            language=query_args.language,
            limit=query_args.limit,
            offset=query_args.offset,
        )
    return HistoryPage.of(items, total, query_args)


@bp.get("/difficulty")
@require_user
@read_only
@validate_response(DifficultyRead)
async def get_difficulty() -> DifficultyRead:
    """Your adaptive difficulty, what it recommends next, and why."""
    state = await difficulty_service.state(get_session(), current_user())
    return DifficultyRead.model_validate(asdict(state))


@bp.put("/difficulty")
@require_user
@validate_request(DifficultyUpdate)
@validate_response(DifficultyRead)
async def update_difficulty(data: DifficultyUpdate) -> DifficultyRead:
    """Choose your difficulty by hand, within your skill level's bounds (outside them 422)."""
    state = await difficulty_service.override(get_session(), current_user(), data.difficulty)
    return DifficultyRead.model_validate(asdict(state))


@bp.post("/generate")
@require_user
@rate_limit("generate")
@validate_request(GenerateRequest)
@validate_response(ExerciseRead, 201)
@problem_responses(429, 502)
async def generate_exercise(data: GenerateRequest) -> tuple[ExerciseRead, int]:
    """Have the AI write an exercise for you (3 per hour).

    Accepted only when its reference solution passes its own tests in the sandbox and its starter code
    does not; visible to you alone. 503 `llm_not_configured` without an AI model; 502 `llm_error` when
    the model's exercise fails those checks (try again)."""
    exercise = await generation_service.generate(
        get_session(),
        current_sandbox(),
        configured_llm(),
        current_user(),
        topic=data.topic,
        difficulty=data.difficulty,
        exercise_type=data.exercise_type,
        language=data.language,
    )
    return ExerciseRead.model_validate(exercise), 201


@bp.get("/<int:exercise_id>")
@require_user
@read_only
@validate_querystring(LanguageQuery)
@validate_response(ExerciseRead)
async def get_exercise(exercise_id: int, query_args: LanguageQuery) -> ExerciseRead:
    """One exercise, without its solution or hidden tests.

    `?language=javascript` answers with the same catalog exercise in that language (404 if it has none)."""
    session, user = get_session(), current_user()
    exercise = await exercises_service.get_visible(session, user, exercise_id)
    if query_args.language:
        exercise = await exercises_service.in_language(session, user, exercise, query_args.language)
    return ExerciseRead.model_validate(exercise)


# --- working on an exercise ------------------------------------------------------------------------


@bp.post("/<int:exercise_id>/submit")
@require_user
@rate_limit("submit")
@validate_request(SubmissionCreate)
@validate_response(SubmitResult)
@problem_responses(429)
async def submit_solution(exercise_id: int, data: SubmissionCreate) -> SubmitResult:
    """Run your code against the hidden tests and grade it.

    A failing run is a 200 with `status: failed` (a syntax error `error` with its line, a time-out
    `timeout`). Passing every test completes the exercise. The submission is stored before it runs:
    503 `sandbox_unavailable` keeps it, marked `error`."""
    outcome = await submissions_service.submit(
        get_session(),
        current_sandbox(),
        configured_llm(),
        current_user(),
        exercise_id,
        data.code,
        data.time_spent_seconds,
    )
    return SubmitResult.model_validate(outcome)


@bp.get("/<int:exercise_id>/submissions")
@require_user
@read_only
@validate_querystring(PageQuery)
@validate_response(SubmissionPage)
async def list_exercise_submissions(exercise_id: int, query_args: PageQuery) -> SubmissionPage:
    """Your submissions for one exercise, newest first."""
    async with read_connection() as connection:
        items, total = await exercise_reads.submission_page(
            connection, current_user(), exercise_id, limit=query_args.limit, offset=query_args.offset
        )
    return SubmissionPage.of(items, total, query_args)


@bp.post("/<int:exercise_id>/hint")
@require_user
@validate_request(HintRequest)
@validate_response(HintRead)
@problem_responses(409)
async def request_exercise_hint(exercise_id: int, data: HintRequest) -> HintRead:
    """The next of the exercise's three hints, tailored to your code when an AI model is configured.

    Never the solution. A fourth request is 409 `conflict`."""
    hint = await hints_service.hint(
        get_session(),
        configured_llm(),
        current_user(),
        exercise_id,
        current_code=data.current_code,
        question=data.question,
    )
    return HintRead.model_validate(asdict(hint))


@bp.post("/<int:exercise_id>/skip")
@require_user
@validate_response(SkipResult)
@problem_responses(409)
async def skip_exercise(exercise_id: int) -> SkipResult:
    """Skip an exercise you have open: 2 per 7 days, then 409 `conflict` (also on a completed one)."""
    row, remaining = await daily_service.skip(get_session(), current_user(), exercise_id)
    return SkipResult(user_exercise=UserExerciseRead.model_validate(row), skips_remaining_this_week=remaining)


# --- admin -----------------------------------------------------------------------------------------


@bp.post("")
@require_role("admin")
@validate_request(ExerciseWrite)
@validate_response(ExerciseRead, 201)
@problem_responses(409)
async def create_exercise(data: ExerciseWrite) -> tuple[ExerciseRead, int]:
    """Add an exercise to the catalog (admins only; anyone else 403 `forbidden`)."""
    return ExerciseRead.model_validate(await exercises_service.create_exercise(get_session(), data.stored())), 201


@bp.put("/<int:exercise_id>")
@require_role("admin")
@validate_request(ExerciseWrite)
@validate_response(ExerciseRead)
@problem_responses(409)
async def replace_exercise(exercise_id: int, data: ExerciseWrite) -> ExerciseRead:
    """Replace an exercise (admins only; anyone else 403 `forbidden`)."""
    exercise = await exercises_service.update_exercise(get_session(), exercise_id, data.stored())
    return ExerciseRead.model_validate(exercise)


@bp.delete("/<int:exercise_id>")
@require_role("admin")
@no_content
async def delete_exercise(exercise_id: int) -> tuple[str, int]:
    """Delete an exercise with its assignments and submissions (admins only; anyone else 403)."""
    await exercises_service.delete_exercise(get_session(), exercise_id)
    return "", 204
