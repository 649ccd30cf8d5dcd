"""Exercises through the real app on both stacks: the real sandbox, and a fake OpenAI server for the LLM.

Exercises are written into the database by the tests themselves (no reliance on the seeded catalog).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import select, update

from backend.models import User
from backend.models.chat import LLMUsage
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.schemas.exercises import ExerciseRead
from backend.services import difficulty as difficulty_service
from backend.services import grading
from backend.services.achievements import seed_achievements
from tests.api.test_chat import llm_settings
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeOpenAI
from tests.helpers import PASSWORD, bearer, register

EXERCISES = "/api/v1/exercises"
SOLUTION = "def add_numbers(first, second):\n    return first + second\n"
STARTER = "def add_numbers(first, second):\n    pass\n"
PARTIAL = "def add_numbers(first, second):\n    return first + second if first >= 0 else 0\n"
WRONG = "def add_numbers(first, second):\n    return str(first) + str(second)\n"
SYNTAX_ERROR = "def add_numbers(first, second):\n    return first +\n"
ENDLESS = "def add_numbers(first, second):\n    while True:\n        pass\n"
VISIBLE = [
    {"name": "small", "call": "add_numbers(1, 2)", "expected": "3"},
    {"name": "zero", "call": "add_numbers(0, 0)", "expected": "0"},
]
HIDDEN = [
    {"name": "large", "call": "add_numbers(1000, 2345)", "expected": "3345"},
    {"name": "negative first", "call": "add_numbers(-7, 3)", "expected": "-4"},
    {"name": "negative both", "call": "add_numbers(-5, -6)", "expected": "-11"},
    {"name": "floats", "call": "add_numbers(0.5, 0.25)", "expected": "0.75"},
]
HIDDEN_CALLS = [test["call"] for test in HIDDEN]
HINTS = ["Python has an operator for this.", "Use `+` on the two arguments.", "Return the sum of both."]


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def fake_llm(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


async def add_exercise(app: Quart, **overrides: Any) -> int:
    values: dict[str, Any] = {
        # A fresh suffix per call: id() of a dict freed in a loop comes back, and slugs are unique.
        "slug": f"add-numbers-{overrides.get('slug_suffix', '')}{uuid.uuid4().hex[:12]}",
        "title": "Add two numbers",
        "description": "Write `add_numbers(first, second)` returning their sum.",
        "starter_code": STARTER,
        "language": "python",
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "examples": VISIBLE,
        "tests": VISIBLE + HIDDEN,
        "hints": HINTS,
        "solution": SOLUTION,
        "visibility": "public",
        "generated_by_ai": False,
    }
    overrides.pop("slug_suffix", None)
    values.update(overrides)
    async with app.extensions["db_session_factory"]() as session:
        exercise = Exercise(**values)
        session.add(exercise)
        await session.commit()
        return exercise.id


async def sign_in(client: QuartClient, **profile: Any) -> tuple[dict[str, str], int]:
    payload = await register(client)
    headers = bearer(payload)
    if profile:
        response = await client.patch("/api/v1/users/me", json=profile, headers=headers)
        assert response.status_code == 200, await response.get_json()
    return headers, payload["user"]["id"]


async def submit(client: QuartClient, headers: dict[str, str], exercise_id: int, code: str) -> dict[str, Any]:
    response = await client.post(f"{EXERCISES}/{exercise_id}/submit", json={"code": code}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    return body


def assert_no_secrets(body: Any) -> None:
    text = json.dumps(body)
    assert "return first + second" not in text
    for call in HIDDEN_CALLS:
        assert call not in text


def test_exercise_read_built_from_an_exercise_has_no_solution_hints_or_hidden_tests() -> None:
    """The rule holds in the schema itself: every read path (fresh or cached) shapes exercises through it."""
    exercise = Exercise(
        id=1, slug="add", title="Add", description="Add.", starter_code=STARTER, language="python",
        difficulty="easy", exercise_type="algorithm", topics=["math"], examples=HIDDEN[:1], tests=HIDDEN,
        hints=HINTS, solution=SOLUTION, generated_by_ai=False, created_at=datetime.now(UTC),
    )  # fmt: skip
    read = ExerciseRead.model_validate(exercise)
    assert {"solution", "tests", "hints"}.isdisjoint(ExerciseRead.model_fields)
    assert read.hints_available == 3 and read.examples[0].input == HIDDEN[0]["call"]
    body = read.model_dump_json()
    assert SOLUTION.splitlines()[1].strip() not in body and not any(hint in body for hint in HINTS)
    assert not any(call in body for call in HIDDEN_CALLS[1:])


# --- browsing --------------------------------------------------------------------------------------


async def test_list_exercises_filters_and_hides_solutions(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    easy = await add_exercise(app, topics=["math", "Strings"])
    hard = await add_exercise(app, difficulty="hard", exercise_type="debugging")
    response = await client.get(f"{EXERCISES}?difficulty=easy", headers=headers)
    body = await response.get_json()
    assert response.status_code == 200
    assert [item["id"] for item in body["items"]] == [easy]
    assert body["total"] == 1 and body["limit"] == 20 and body["offset"] == 0
    by_topic = await (await client.get(f"{EXERCISES}?topic=strings", headers=headers)).get_json()
    assert [item["id"] for item in by_topic["items"]] == [easy]
    by_type = await (await client.get(f"{EXERCISES}?exercise_type=debugging", headers=headers)).get_json()
    assert [item["id"] for item in by_type["items"]] == [hard]
    assert_no_secrets(body)

    detail = await (await client.get(f"{EXERCISES}/{easy}", headers=headers)).get_json()
    assert detail["examples"] == [
        {"input": "add_numbers(1, 2)", "expected_output": "3"},
        {"input": "add_numbers(0, 0)", "expected_output": "0"},
    ]
    assert detail["hints_available"] == 3 and detail["starter_code"] == STARTER
    assert "solution" not in detail and "tests" not in detail and "hints" not in detail
    assert_no_secrets(detail)


async def test_get_exercise_generated_for_someone_else_is_not_found(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    _, other_id = await sign_in(client)
    foreign = await add_exercise(app, author_id=other_id, visibility="private", generated_by_ai=True)
    response = await client.get(f"{EXERCISES}/{foreign}", headers=headers)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not_found"
    listed = await (await client.get(EXERCISES, headers=headers)).get_json()
    assert foreign not in [item["id"] for item in listed["items"]]
    submitted = await client.post(f"{EXERCISES}/{foreign}/submit", json={"code": SOLUTION}, headers=headers)
    assert submitted.status_code == 404


# --- grading ---------------------------------------------------------------------------------------


async def test_submit_right_solution_completes_and_records_progress(app: Quart, client: QuartClient) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await seed_achievements(session)
        await session.commit()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    body = await submit(client, headers, exercise_id, SOLUTION)
    submission = body["submission"]
    assert submission["status"] == "passed"
    assert submission["tests_passed"] == submission["tests_total"] == 6
    assert submission["grade"] == 100
    assert submission["rubric"] == {"correctness": 1.0, "quality": 1.0, "efficiency": 1.0, "style": 1.0}
    assert submission["feedback"] and submission["strengths"]
    assert body["user_exercise"]["status"] == "completed" and body["user_exercise"]["best_grade"] == 100
    assert body["streak"] == {"current": 1, "longest": 1, "extended": True}
    assert "first_exercise" in [a["slug"] for a in body["achievements_unlocked"]]
    assert body["difficulty_change"] is None
    assert_no_secrets(body)

    progress = await (await client.get("/api/v1/users/me/progress", headers=headers)).get_json()
    assert progress["exercises_completed"] == 1
    async with app.extensions["db_session_factory"]() as session:
        reference = await session.scalar(select(Exercise.reference_duration_ms).where(Exercise.id == exercise_id))
    assert reference is not None and reference > 0

    again = await submit(client, headers, exercise_id, SOLUTION)  # practice after completion counts once
    assert again["achievements_unlocked"] == [] and again["streak"]["extended"] is False
    progress = await (await client.get("/api/v1/users/me/progress", headers=headers)).get_json()
    assert progress["exercises_completed"] == 1


async def test_submit_wrong_solution_scores_zero_and_stays_open(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    body = await submit(client, headers, exercise_id, WRONG)
    submission = body["submission"]
    assert submission["status"] == "failed" and submission["grade"] == 0
    assert submission["tests_passed"] == 0
    assert submission["improvements"]
    assert body["user_exercise"]["status"] == "in_progress"
    failing = [result for result in submission["results"] if not result["passed"]]
    assert failing and all(result["message"] for result in failing)


async def test_submit_partial_solution_scores_share_of_tests(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    submission = (await submit(client, headers, exercise_id, PARTIAL))["submission"]
    assert submission["status"] == "failed"
    assert (submission["tests_passed"], submission["tests_total"]) == (4, 6)
    assert submission["rubric"]["correctness"] == round(4 / 6, 3)
    assert 0 < submission["grade"] <= round(100 * 4 / 6)


async def test_submit_syntax_error_is_error_status_with_line(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    submission = (await submit(client, headers, exercise_id, SYNTAX_ERROR))["submission"]
    assert submission["status"] == "error" and submission["grade"] == 0
    assert "line 2" in submission["feedback"]


async def test_submit_endless_loop_times_out(make_app: AppFactory) -> None:
    app = await make_app(sandbox_timeout_seconds=1.5)
    client = app.test_client()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    submission = (await submit(client, headers, exercise_id, ENDLESS))["submission"]
    assert submission["status"] == "timeout" and submission["grade"] == 0


async def test_submit_sandbox_unavailable_keeps_submission_as_error(make_app: AppFactory) -> None:
    app = await make_app(sandbox_backend="piston", piston_url="http://127.0.0.1:9")
    client = app.test_client()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    response = await client.post(f"{EXERCISES}/{exercise_id}/submit", json={"code": SOLUTION}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 503 and body["code"] == "sandbox_unavailable"
    listed = await (await client.get(f"{EXERCISES}/{exercise_id}/submissions", headers=headers)).get_json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "error"


async def test_submissions_left_running_by_a_dead_process_end_as_error_at_start(make_app: AppFactory) -> None:
    first = await make_app()
    client = first.test_client()
    headers, user_id = await sign_in(client)
    exercise_id = await add_exercise(first)
    await submit(client, headers, exercise_id, "x = 1")  # opens the user's exercise
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with first.extensions["db_session_factory"]() as session:
        row_id = await session.scalar(select(UserExercise.id).where(UserExercise.user_id == user_id))
        for created_at in (long_ago, datetime.now(UTC)):  # an orphan, and one still being graded
            orphan = Submission(user_id=user_id, exercise_id=exercise_id, user_exercise_id=row_id, code="x = 1")
            orphan.status, orphan.created_at = "running", created_at
            orphan.results, orphan.strengths, orphan.improvements = [], [], []
            session.add(orphan)
        await session.commit()

    second = await make_app()  # a restart: before_serving sweeps
    response = await second.test_client().get(f"{EXERCISES}/{exercise_id}/submissions", headers=headers)
    statuses = sorted(item["status"] for item in (await response.get_json())["items"])
    assert statuses == ["error", "failed", "running"]


async def test_concurrent_passing_submissions_complete_the_exercise_once(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    bodies = await asyncio.gather(*(submit(client, headers, exercise_id, SOLUTION) for _ in range(3)))
    assert all(body["submission"]["status"] == "passed" for body in bodies)
    assert sorted(body["user_exercise"]["submissions_count"] for body in bodies) == [1, 2, 3]
    assert [body["streak"]["extended"] for body in bodies].count(True) == 1  # one completion earned the day
    progress = await (await client.get("/api/v1/users/me/progress", headers=headers)).get_json()
    assert progress["exercises_completed"] == 1


async def test_list_submissions_and_history(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    await submit(client, headers, exercise_id, WRONG)
    url = f"{EXERCISES}/{exercise_id}/submit"
    response = await client.post(url, json={"code": SOLUTION, "time_spent_seconds": 90}, headers=headers)
    counted = (await response.get_json())["user_exercise"]  # the row as the grade's UPDATE ... RETURNING left it
    assert (counted["status"], counted["submissions_count"], counted["best_grade"]) == ("completed", 2, 100)
    assert counted["time_spent_seconds"] == 90
    listed = await (await client.get(f"{EXERCISES}/{exercise_id}/submissions?limit=1", headers=headers)).get_json()
    assert listed["total"] == 2 and listed["items"][0]["status"] == "passed"
    history = await (await client.get(f"{EXERCISES}/history?status=completed", headers=headers)).get_json()
    assert history["total"] == 1
    item = history["items"][0]
    assert item["exercise_id"] == exercise_id and item["submissions_count"] == 2
    assert (item["title"], item["difficulty"], item["language"]) == ("Add two numbers", "easy", "python")
    assert (await (await client.get(f"{EXERCISES}/history?status=skipped", headers=headers)).get_json())["total"] == 0
    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    assert len(export["submissions"]) == 2 and export["exercises"][0]["status"] == "completed"


async def test_submission_list_pages_only_your_own_and_hides_exercises_you_cannot_see(
    app: Quart, client: QuartClient
) -> None:
    headers, _ = await sign_in(client)
    other_headers, other_id = await sign_in(client)
    exercise_id = await add_exercise(app)
    url = f"{EXERCISES}/{exercise_id}/submissions"
    assert await (await client.get(url, headers=headers)).get_json() == {
        "items": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
    }
    first = (await submit(client, headers, exercise_id, WRONG))["submission"]
    second = (await submit(client, headers, exercise_id, SOLUTION))["submission"]
    await submit(client, other_headers, exercise_id, SOLUTION)  # someone else's: never listed

    page = await (await client.get(url, headers=headers)).get_json()
    assert page["total"] == 2 and page["items"] == [second, first]  # newest first, as the submit showed it
    later = await (await client.get(f"{url}?limit=1&offset=1", headers=headers)).get_json()
    assert later["items"] == [first] and later["total"] == 2
    past_the_end = await (await client.get(f"{url}?offset=5", headers=headers)).get_json()
    assert past_the_end["items"] == [] and past_the_end["total"] == 2

    private = await add_exercise(app, author_id=other_id, visibility="private", generated_by_ai=True)
    for target in (f"{EXERCISES}/{private}/submissions", f"{EXERCISES}/{private}/submissions?offset=5"):
        response = await client.get(target, headers=headers)
        assert response.status_code == 404 and (await response.get_json())["code"] == "not_found"
    assert (await client.get(f"{EXERCISES}/999999/submissions", headers=headers)).status_code == 404


async def test_history_lists_your_exercises_newest_first_filtered_and_paged(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    other_headers, _ = await sign_in(client)
    easy = await add_exercise(app)
    hard = await add_exercise(app, difficulty="hard", title="Add them, hard")
    await submit(client, headers, easy, SOLUTION)
    await submit(client, headers, hard, WRONG)
    await submit(client, other_headers, easy, SOLUTION)  # someone else's: never listed
    url = f"{EXERCISES}/history"

    page = await (await client.get(url, headers=headers)).get_json()
    assert page["total"] == 2 and [item["exercise_id"] for item in page["items"]] == [hard, easy]
    newest = page["items"][0]
    assert (newest["title"], newest["difficulty"], newest["language"]) == ("Add them, hard", "hard", "python")
    assert (newest["status"], newest["submissions_count"], newest["best_grade"]) == ("in_progress", 1, 0)
    hard_only = await (await client.get(f"{url}?difficulty=hard", headers=headers)).get_json()
    assert hard_only["total"] == 1 and hard_only["items"][0]["exercise_id"] == hard
    completed = await (await client.get(f"{url}?status=completed&language=PYTHON", headers=headers)).get_json()
    assert completed["total"] == 1 and completed["items"][0]["exercise_id"] == easy
    assert (await (await client.get(f"{url}?language=go", headers=headers)).get_json())["total"] == 0
    second = await (await client.get(f"{url}?limit=1&offset=1", headers=headers)).get_json()
    assert [item["exercise_id"] for item in second["items"]] == [easy] and second["total"] == 2
    past_the_end = await (await client.get(f"{url}?offset=9", headers=headers)).get_json()
    assert past_the_end["items"] == [] and past_the_end["total"] == 2


# --- daily -----------------------------------------------------------------------------------------


async def test_daily_is_stable_within_a_day_and_new_the_next_day(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client)
    for _ in range(3):
        await add_exercise(app)
    first = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert first["is_new"] is True and first["user_exercise"]["status"] == "pending"
    assert_no_secrets(first)
    second = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert second["is_new"] is False and second["exercise"]["id"] == first["exercise"]["id"]
    # Read without a transaction, the exercise from the per-process cache: the same view, nothing more.
    assert second["exercise"] == first["exercise"] and second["user_exercise"] == first["user_exercise"]
    assert_no_secrets(second)

    # Completed today: today's assignment stays the same one; the next local day brings a new one.
    await submit(client, headers, first["exercise"]["id"], SOLUTION)
    same_day = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert same_day["exercise"]["id"] == first["exercise"]["id"] and same_day["is_new"] is False
    assert same_day["user_exercise"]["status"] == "completed"
    await move_assignments_back(app, user_id)
    next_day = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert next_day["is_new"] is True and next_day["exercise"]["id"] != first["exercise"]["id"]


async def test_daily_open_earlier_assignment_is_served_first(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client)
    for _ in range(2):
        await add_exercise(app)
    first = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    await move_assignments_back(app, user_id)
    again = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert again["exercise"]["id"] == first["exercise"]["id"] and again["is_new"] is False
    await client.post(f"{EXERCISES}/{first['exercise']['id']}/skip", headers=headers)
    fresh = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert fresh["is_new"] is True and fresh["exercise"]["id"] != first["exercise"]["id"]


async def move_assignments_back(app: Quart, user_id: int) -> None:
    async with app.extensions["db_session_factory"]() as session:
        rows = await session.scalars(
            select(UserExercise).where(UserExercise.user_id == user_id, UserExercise.assigned_for.is_not(None))
        )
        for row in rows:
            assert row.assigned_for is not None
            row.assigned_for -= timedelta(days=1)
        await session.commit()


async def test_daily_concurrent_first_calls_make_one_assignment(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client)
    for _ in range(4):
        await add_exercise(app)
    responses = await asyncio.gather(*(client.get(f"{EXERCISES}/daily", headers=headers) for _ in range(6)))
    bodies = [await response.get_json() for response in responses]
    assert all(response.status_code == 200 for response in responses), bodies
    assert len({body["exercise"]["id"] for body in bodies}) == 1
    assert sum(body["is_new"] for body in bodies) == 1
    async with app.extensions["db_session_factory"]() as session:
        rows = list(await session.scalars(select(UserExercise).where(UserExercise.user_id == user_id)))
    assert len(rows) == 1


async def test_daily_prefers_adaptive_difficulty_and_new_topics(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client, skill_level="intermediate", programming_language="rust")
    await add_exercise(app, difficulty="easy")
    medium = await add_exercise(app, difficulty="medium", topics=["strings"])
    await add_exercise(app, difficulty="hard")
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert daily["exercise"]["id"] == medium  # intermediate starts at medium; rust falls back to python


# --- skipping and difficulty -----------------------------------------------------------------------


async def test_skip_is_limited_to_two_per_week(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    ids = [await add_exercise(app) for _ in range(4)]
    never_opened = await client.post(f"{EXERCISES}/{ids[0]}/skip", headers=headers)
    assert never_opened.status_code == 409
    for exercise_id, remaining in zip(ids[:2], (1, 0), strict=True):
        await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)  # opens it
        response = await client.post(f"{EXERCISES}/{exercise_id}/skip", headers=headers)
        body = await response.get_json()
        assert response.status_code == 200, body
        assert body["skips_remaining_this_week"] == remaining and body["user_exercise"]["status"] == "skipped"
    await client.post(f"{EXERCISES}/{ids[2]}/hint", json={}, headers=headers)
    third = await client.post(f"{EXERCISES}/{ids[2]}/skip", headers=headers)
    assert third.status_code == 409 and (await third.get_json())["code"] == "conflict"


async def test_skip_completed_exercise_is_conflict(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    await submit(client, headers, exercise_id, SOLUTION)
    response = await client.post(f"{EXERCISES}/{exercise_id}/skip", headers=headers)
    assert response.status_code == 409


async def test_difficulty_steps_up_after_three_successes_and_down_after_two_struggles(
    app: Quart, client: QuartClient
) -> None:
    headers, _ = await sign_in(client, skill_level="beginner")
    ids = [await add_exercise(app) for _ in range(8)]
    state = await (await client.get(f"{EXERCISES}/difficulty", headers=headers)).get_json()
    assert state["current"] == "easy" and state["consecutive_successes"] == 0

    changes = [(await submit(client, headers, exercise_id, SOLUTION))["difficulty_change"] for exercise_id in ids[:3]]
    assert changes[:2] == [None, None]
    assert changes[2]["from"] == "easy" and changes[2]["to"] == "medium" and changes[2]["message"]
    state = await (await client.get(f"{EXERCISES}/difficulty", headers=headers)).get_json()
    assert state["current"] == "medium" and state["consecutive_successes"] == 0

    # A beginner's range ends at medium: three more successes change nothing.
    for exercise_id in ids[3:6]:
        assert (await submit(client, headers, exercise_id, SOLUTION))["difficulty_change"] is None
    state = await (await client.get(f"{EXERCISES}/difficulty", headers=headers)).get_json()
    assert state["current"] == "medium" and state["consecutive_successes"] == 3

    for exercise_id in ids[6:8]:  # two struggles (skips)
        await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)
        assert (await client.post(f"{EXERCISES}/{exercise_id}/skip", headers=headers)).status_code == 200
    state = await (await client.get(f"{EXERCISES}/difficulty", headers=headers)).get_json()
    assert state["current"] == "easy" and state["consecutive_struggles"] == 0


async def test_update_difficulty_within_and_outside_bounds(client: QuartClient) -> None:
    headers, _ = await sign_in(client, skill_level="advanced")
    current = await (await client.get(f"{EXERCISES}/difficulty", headers=headers)).get_json()
    assert current["current"] == "hard"
    response = await client.put(f"{EXERCISES}/difficulty", json={"difficulty": "medium"}, headers=headers)
    assert response.status_code == 200 and (await response.get_json())["current"] == "medium"
    outside = await client.put(f"{EXERCISES}/difficulty", json={"difficulty": "easy"}, headers=headers)
    body = await outside.get_json()
    assert outside.status_code == 422 and body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "difficulty"


def test_difficulty_rules_are_clamped_by_skill_level() -> None:
    assert difficulty_service.step("medium", 1, "beginner") == "medium"
    assert difficulty_service.step("easy", -1, "intermediate") == "easy"
    assert difficulty_service.step("medium", -1, "advanced") == "medium"
    assert difficulty_service.step("medium", 1, "expert") == "hard"
    assert difficulty_service.outcome_of(completed=True, grade=80, hints_used=2) == "success"
    assert difficulty_service.outcome_of(completed=True, grade=80, hints_used=3) == "neutral"
    assert difficulty_service.outcome_of(completed=True, grade=59, hints_used=0) == "struggle"
    assert difficulty_service.outcome_of(completed=False, grade=None, hints_used=0) == "struggle"


# --- hints -----------------------------------------------------------------------------------------


async def test_hints_ladder_then_conflict(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    for level in (1, 2, 3):
        response = await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)
        body = await response.get_json()
        assert response.status_code == 200, body
        assert body == {
            "hint": HINTS[level - 1],
            "hint_level": level,
            "hints_used": level,
            "hints_remaining": 3 - level,
            "source": "authored",
        }
    fourth = await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)
    assert fourth.status_code == 409 and (await fourth.get_json())["code"] == "conflict"
    history = await (await client.get(f"{EXERCISES}/history", headers=headers)).get_json()
    assert history["items"][0]["hints_used"] == 3


async def test_hint_tailored_by_llm_never_sends_the_solution(make_app: AppFactory, fake_llm: FakeOpenAI) -> None:
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    fake_llm.reply = "Which operator combines two numbers into their total?"
    response = await client.post(
        f"{EXERCISES}/{exercise_id}/hint",
        json={"current_code": STARTER, "question": "Just give me the full solution please"},
        headers=headers,
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["source"] == "llm" and body["hint"] == fake_llm.reply and body["hint_level"] == 1
    sent = json.dumps(fake_llm.last_request)
    assert "return first + second" not in sent
    assert "Never give the full solution" in sent and HINTS[0] in sent


# --- generation ------------------------------------------------------------------------------------


def generated(**overrides: Any) -> dict[str, Any]:
    exercise = {
        "title": "Multiply two numbers",
        "description": "Write `multiply(a, b)`.",
        "starter_code": "def multiply(a, b):\n    pass\n",
        "solution": "def multiply(a, b):\n    return a * b\n",
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "hints": ["One operator.", "It is `*`.", "Return a * b."],
        "tests": [
            {"name": f"case {n}", "call": f"multiply({n}, {n + 1})", "expected": str(n * (n + 1))} for n in range(6)
        ],
    }
    exercise.update(overrides)
    return exercise


async def test_generate_valid_exercise_is_accepted_and_private(make_app: AppFactory, fake_llm: FakeOpenAI) -> None:
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, _ = await sign_in(client)
    other, _ = await sign_in(client)
    fake_llm.reply = json.dumps(generated())
    response = await client.post(f"{EXERCISES}/generate", json={"topic": "math"}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 201, body
    assert body["generated_by_ai"] is True and body["title"] == "Multiply two numbers"
    assert len(body["examples"]) == 2 and "return a * b" not in json.dumps(body)
    assert fake_llm.last_request.get("response_format") == {"type": "json_object"}
    assert (await client.get(f"{EXERCISES}/{body['id']}", headers=headers)).status_code == 200
    assert (await client.get(f"{EXERCISES}/{body['id']}", headers=other)).status_code == 404


async def test_generate_exercise_whose_solution_fails_is_rejected(make_app: AppFactory, fake_llm: FakeOpenAI) -> None:
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, _ = await sign_in(client)
    fake_llm.reply = json.dumps(generated(solution="def multiply(a, b):\n    return a + b\n"))
    response = await client.post(f"{EXERCISES}/generate", json={}, headers=headers)
    assert response.status_code == 502 and (await response.get_json())["code"] == "llm_error"
    fake_llm.reply = json.dumps(generated(starter_code="def multiply(a, b):\n    return a * b\n"))
    assert (await client.post(f"{EXERCISES}/generate", json={}, headers=headers)).status_code == 502
    fake_llm.reply = "not json at all"
    assert (await client.post(f"{EXERCISES}/generate", json={}, headers=headers)).status_code == 502
    assert (await client.post(f"{EXERCISES}/generate", json={}, headers=headers)).status_code == 429  # 3/hour
    async with app.extensions["db_session_factory"]() as session:
        assert list(await session.scalars(select(Exercise))) == []


async def test_generate_offline_is_llm_not_configured(client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    response = await client.post(f"{EXERCISES}/generate", json={"topic": "lists"}, headers=headers)
    assert response.status_code == 503 and (await response.get_json())["code"] == "llm_not_configured"


# --- admin -----------------------------------------------------------------------------------------


def admin_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "slug": "admin-add-numbers",
        "title": "Add two numbers",
        "description": "Sum them.",
        "starter_code": STARTER,
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "solution": SOLUTION,
        "tests": VISIBLE + HIDDEN,
        "hints": HINTS,
    }
    return body | overrides


async def test_admin_routes_are_forbidden_to_students(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    for method, path in (("post", EXERCISES), ("put", f"{EXERCISES}/{exercise_id}"), ("delete", f"{EXERCISES}/999")):
        response = await getattr(client, method)(path, json={"not": "valid"}, headers=headers)
        assert response.status_code == 403 and (await response.get_json())["code"] == "forbidden"


async def test_admin_creates_updates_and_deletes_exercise(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client)
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(User).where(User.id == user_id).values(role="admin"))
        await session.commit()
    created = await client.post(EXERCISES, json=admin_body(), headers=headers)
    body = await created.get_json()
    assert created.status_code == 201, body
    assert_no_secrets(body)
    assert body["examples"][0] == {"input": "add_numbers(1, 2)", "expected_output": "3"}
    duplicate = await client.post(EXERCISES, json=admin_body(), headers=headers)
    assert duplicate.status_code == 409
    replaced = await client.put(
        f"{EXERCISES}/{body['id']}", json=admin_body(title="Sum", difficulty="medium"), headers=headers
    )
    assert replaced.status_code == 200 and (await replaced.get_json())["difficulty"] == "medium"
    invalid = await client.put(f"{EXERCISES}/{body['id']}", json=admin_body(hints=["one"]), headers=headers)
    assert invalid.status_code == 422
    assert (await client.delete(f"{EXERCISES}/{body['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"{EXERCISES}/{body['id']}", headers=headers)).status_code == 404
    assert (await client.delete(f"{EXERCISES}/{body['id']}", headers=headers)).status_code == 404


async def test_catalog_reads_show_an_edit_at_once(app: Quart, client: QuartClient) -> None:
    # The list and the daily exercise keep each exercise's view per process while its row is unchanged
    # (docs/PERFORMANCE.md): an edit must show on the very next read.
    headers, user_id = await sign_in(client)
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(User).where(User.id == user_id).values(role="admin"))
        await session.commit()
    exercise_id = (await (await client.post(EXERCISES, json=admin_body(), headers=headers)).get_json())["id"]
    listed = await (await client.get(EXERCISES, headers=headers)).get_json()
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert [item["title"] for item in listed["items"]] == ["Add two numbers"]
    assert daily["exercise"]["id"] == exercise_id and daily["exercise"]["topics"] == ["math"]

    edit = admin_body(title="Sum", topics=["arithmetic"], description="Add them up.")
    assert (await client.put(f"{EXERCISES}/{exercise_id}", json=edit, headers=headers)).status_code == 200
    listed = await (await client.get(EXERCISES, headers=headers)).get_json()
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert [(item["title"], item["topics"]) for item in listed["items"]] == [("Sum", ["arithmetic"])]
    assert (daily["exercise"]["title"], daily["exercise"]["description"]) == ("Sum", "Add them up.")
    assert (await client.delete(f"{EXERCISES}/{exercise_id}", headers=headers)).status_code == 204
    assert (await (await client.get(EXERCISES, headers=headers)).get_json())["items"] == []


async def test_submissions_never_reveal_hidden_tests_or_solution(app: Quart, client: QuartClient) -> None:
    """Hidden tests report their name and outcome only; visible examples show everything."""
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    body = await submit(client, headers, exercise_id, WRONG)
    assert_no_secrets(body)
    assert [result["name"] for result in body["submission"]["results"]][2:] == [test["name"] for test in HIDDEN]
    async with app.extensions["db_session_factory"]() as session:
        stored = await session.scalar(select(Submission).where(Submission.exercise_id == exercise_id))
    assert stored is not None and stored.status == "failed"


async def test_submit_with_llm_takes_quality_and_feedback_from_it(make_app: AppFactory, fake_llm: FakeOpenAI) -> None:
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, user_id = await sign_in(client)
    exercise_id = await add_exercise(app)
    fake_llm.reply = json.dumps(
        {"quality": 0.5, "feedback": "Clear and short.", "strengths": ["Readable"], "improvements": ["Add a docstring"]}
    )
    submission = (await submit(client, headers, exercise_id, SOLUTION))["submission"]
    assert submission["status"] == "passed"
    # Efficiency is this run's time against the reference's: a loaded machine may cost a few points.
    rubric = submission["rubric"]
    assert rubric["quality"] == 0.5 and rubric["style"] == 1.0 and rubric["efficiency"] > 0
    assert submission["grade"] == round(100 * (0.40 + 0.30 * 0.5 + 0.15 * rubric["efficiency"] + 0.15))
    assert 80 <= submission["grade"] <= 85
    assert submission["feedback"] == "Clear and short."
    assert (submission["strengths"], submission["improvements"]) == (["Readable"], ["Add a docstring"])
    assert fake_llm.last_request.get("response_format") == {"type": "json_object"}
    async with app.extensions["db_session_factory"]() as session:  # the review's cost, written with the grade
        usage = await session.scalar(select(LLMUsage).where(LLMUsage.user_id == user_id))
        assert usage is not None and usage.requests == 1 and usage.prompt_tokens > 0 < usage.completion_tokens

    fake_llm.reply = "Nice work!"  # not the JSON asked for: the static measures stand in
    other = await add_exercise(app)
    fallback = (await submit(client, headers, other, SOLUTION))["submission"]
    assert fallback["rubric"]["quality"] == 1.0
    assert fallback["grade"] == round(100 * (0.40 + 0.30 + 0.15 * fallback["rubric"]["efficiency"] + 0.15))


async def test_delete_account_erases_submissions_and_generated_exercises(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client)
    exercise_id = await add_exercise(app)
    generated_id = await add_exercise(app, author_id=user_id, visibility="private", generated_by_ai=True)
    await submit(client, headers, exercise_id, WRONG)
    response = await client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 204
    async with app.extensions["db_session_factory"]() as session:
        assert list(await session.scalars(select(Submission).where(Submission.user_id == user_id))) == []
        assert list(await session.scalars(select(UserExercise).where(UserExercise.user_id == user_id))) == []
        assert await session.get(Exercise, generated_id) is None
        assert await session.get(Exercise, exercise_id) is not None


@pytest.mark.parametrize(
    "code",
    [
        "def add_numbers(first, second):\n    return " + "1 + " * 12000 + "1\n",  # too deep for the AST's walk
        "def add_numbers(first, second):\n    return " + "-" * 20000 + "1\n",  # too deep for the parser
    ],
    ids=["deep-expression", "deep-unary"],
)
async def test_submit_code_too_deep_to_analyse_is_graded_not_a_server_error(
    app: Quart, client: QuartClient, code: str
) -> None:
    """Code the static measures cannot walk (RecursionError, or the parser's MemoryError) is still graded by its
    run: never a 500 that leaves the submission `running`."""
    headers, user_id = await sign_in(client)
    exercise_id = await add_exercise(app)
    submission = (await submit(client, headers, exercise_id, code))["submission"]
    assert submission["status"] in ("passed", "failed", "error")
    async with app.extensions["db_session_factory"]() as session:
        statuses = set(await session.scalars(select(Submission.status).where(Submission.user_id == user_id)))
    assert "running" not in statuses


async def test_python_style_comes_from_the_runner_the_api_never_parses_the_code(
    app: Quart, client: QuartClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The style part of a Python grade and the static measures are the runner's (sandbox/analysis.py):
    the API process does not parse submitted code, and what the submission prints cannot stand in for them."""

    async def refuse(code: str) -> None:
        raise AssertionError("the API parsed a submission")

    monkeypatch.setattr(grading, "analyse_here", refuse)
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    forged = 'print(\'{"event": "style", "findings": []}\')\n'
    submission = (await submit(client, headers, exercise_id, "import os\n" + SOLUTION + forged))["submission"]
    assert submission["status"] == "passed"
    assert submission["rubric"]["style"] == 0.8 and submission["rubric"]["quality"] == 1.0
    assert "Tidy up line 1: 'os' imported but unused." in submission["improvements"]
