"""Profiles, onboarding, progress and achievements of the signed-in user (`/api/v1/users`)."""

from __future__ import annotations

import csv
import io

from quart import Blueprint, Response
from quart_schema import (
    document_response,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from backend.api.auth import signed_out
from backend.api.github import revoke_at_github
from backend.api.guards import current_user, require_user, settings
from backend.api.openapi import alternative_content, no_content, problem_responses
from backend.db import get_session, read_connection, read_only
from backend.middleware.rate_limit import rate_limit
from backend.schemas.export import UserExport
from backend.schemas.learner import LearningProfileRead
from backend.schemas.users import (
    AccountDeleteRequest,
    AchievementList,
    History,
    HistoryQuery,
    OnboardingDraft,
    OnboardingQuestions,
    OnboardingState,
    OnboardingSubmit,
    ProgressExportQuery,
    ProgressRead,
    UserRead,
    UserUpdate,
)
from backend.services import achievements as achievements_service
from backend.services import export as export_service
from backend.services import github as github_service
from backend.services import learner as learner_service
from backend.services import onboarding as onboarding_service
from backend.services import progress as progress_service
from backend.services import progress_reads
from backend.services import users as users_service

bp = Blueprint("users", __name__)
tag_blueprint(bp, ["users"])

CSV_COLUMNS = ("date", "exercises_completed", "submissions", "time_spent_seconds", "average_grade")


# --- profile ---------------------------------------------------------------------------------------


@bp.get("/me")
@require_user
@validate_response(UserRead)
async def get_profile() -> UserRead:
    """Your profile."""
    return UserRead.model_validate(current_user())


@bp.patch("/me")
@require_user
@validate_request(UserUpdate)
@validate_response(UserRead)
async def update_profile(data: UserUpdate) -> UserRead:
    """Update your profile.

    Send any of the fields; `null` clears an optional one. HTML is stripped from name, bio and career
    goals. `timezone` is an IANA name. Other fields (role, email, streaks, counters) are a 422."""
    user = await users_service.update_profile(get_session(), current_user(), data.changes())
    return UserRead.model_validate(user)


@bp.delete("/me")
@require_user
@rate_limit("account_delete")
@validate_request(AccountDeleteRequest)
@no_content
@problem_responses(400, 429)
async def delete_account(data: AccountDeleteRequest) -> tuple[str, int]:
    """Delete your account and everything stored about you.

    Confirm with `password` (omit it for an account that signs in only through GitHub or Google).
    Every session ends at once, and a connected GitHub token is revoked at GitHub. 400 `invalid_password`
    for a wrong or missing password."""
    user, session = current_user(), get_session()
    github_token = await github_service.user_token(session, settings(), user, repo=False)  # to revoke
    user_id = user.id
    await users_service.erase_account(session, user, password=data.password)
    await revoke_at_github(github_token, user_id)
    signed_out()
    return "", 204


@bp.get("/me/export")
@require_user
@validate_response(UserExport)
async def export_account() -> UserExport:
    """Everything stored about you, as one JSON document."""
    return UserExport.model_validate(await export_service.export_user(get_session(), current_user()))


# --- onboarding ------------------------------------------------------------------------------------


@bp.get("/onboarding/questions")
@require_user
@validate_response(OnboardingQuestions)
async def get_onboarding_questions() -> OnboardingQuestions:
    """The onboarding questions, with the options of each."""
    return OnboardingQuestions.of(onboarding_service.questions())


@bp.get("/onboarding")
@require_user
@validate_response(OnboardingState)
async def get_onboarding() -> OnboardingState:
    """Your onboarding answers saved so far, to resume on any device."""
    return OnboardingState.model_validate(onboarding_service.state(current_user()))


@bp.put("/onboarding")
@require_user
@validate_request(OnboardingDraft)
@validate_response(OnboardingState)
async def save_onboarding_draft(data: OnboardingDraft) -> OnboardingState:
    """Save some onboarding answers as a draft.

    The answers sent are merged into the saved ones (`null` removes one); the profile is not changed
    until the answers are submitted."""
    return OnboardingState.model_validate(
        await onboarding_service.save_draft(get_session(), current_user(), data.changes())
    )


@bp.post("/onboarding")
@require_user
@validate_request(OnboardingSubmit)
@validate_response(UserRead)
async def submit_onboarding(data: OnboardingSubmit) -> UserRead:
    """Submit all five onboarding answers.

    Applies them to your profile and completes onboarding; submitting again updates them."""
    user = await onboarding_service.submit(get_session(), current_user(), data.model_dump())
    return UserRead.model_validate(user)


# --- progress and achievements ---------------------------------------------------------------------


@bp.get("/me/progress")
@require_user
@read_only
@validate_response(ProgressRead)
async def get_progress() -> ProgressRead:
    """Your progress: counters, streaks, grades, difficulty, points, skill level per topic and per language."""
    async with read_connection() as connection:
        summary = await progress_reads.summary(connection, current_user())
    return ProgressRead.model_validate(summary)


@bp.get("/me/learning-profile")
@require_user
@validate_response(LearningProfileRead)
async def get_learning_profile() -> LearningProfileRead:
    """What the tutor remembers about you: mastery per topic, strengths, weaknesses, mistakes, next topics."""
    return LearningProfileRead.model_validate(await learner_service.learning_profile(get_session(), current_user()))


@bp.get("/me/progress/history")
@require_user
@read_only
@validate_querystring(HistoryQuery)
@validate_response(History)
async def get_progress_history(query_args: HistoryQuery) -> History:
    """Your activity per day for the last `days` days, oldest first.

    One row per calendar day in your time zone, today included; days without activity have zeros
    (and a null `average_grade`), ready for a heat-map."""
    async with read_connection() as connection:
        days = await progress_reads.history(connection, current_user(), query_args.days)
    return History.of(days)


@bp.get("/me/achievements")
@require_user
@read_only
@validate_response(AchievementList)
async def list_achievements() -> AchievementList:
    """Every achievement, with your progress towards it and whether and when you unlocked it."""
    return AchievementList.of(await achievements_service.list_for_user(get_session(), current_user()))


@bp.get("/me/progress/export")
@require_user
@validate_querystring(ProgressExportQuery)
@document_response(History)
@problem_responses(422)
async def export_progress(query_args: ProgressExportQuery) -> Response:
    """Download your whole progress history as JSON (a file).

    One row per day from your first activity to today. For CSV use `export_progress_csv` (this route
    also answers CSV to `?format=csv`, as it always has)."""
    return await _progress_file(query_args.format)


@bp.get("/me/progress/export.csv")
@require_user
@alternative_content(200, "text/csv", "A header row, then one row per day.")
async def export_progress_csv() -> Response:
    """Download your whole progress history as CSV (a file).

    One row per day from your first activity to today, with the columns date, exercises_completed,
    submissions, time_spent_seconds, average_grade."""
    return await _progress_file("csv")


async def _progress_file(file_format: str) -> Response:
    user = current_user()
    async with read_connection() as connection:
        days = await progress_reads.full_history(connection, user)
    response = _csv(days) if file_format == "csv" else _json(days)
    filename = f"codementor-progress-{progress_service.today(user).isoformat()}.{file_format}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv(days: list[progress_reads.Day]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([getattr(day, column) for column in CSV_COLUMNS] for day in days)
    return Response(buffer.getvalue(), content_type="text/csv; charset=utf-8")


def _json(days: list[progress_reads.Day]) -> Response:
    body = History.of(days).model_dump_json()
    return Response(body, content_type="application/json")
