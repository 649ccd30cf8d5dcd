"""The learner model (the tutor's memory) through the real app and sandbox: what graded submissions
change in `GET /users/me/learning-profile`, the export, erasure, and the daily exercise's choice."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import func, select, update

from backend.models.exercises import UserExercise
from backend.models.learner import LearnerMistake, LearnerProfile, LearnerTopic
from tests.api.test_exercises import EXERCISES, WRONG, add_exercise, move_assignments_back, sign_in, submit
from tests.helpers import PASSWORD

PROFILE = "/api/v1/users/me/learning-profile"
LARGEST = {
    "title": "Largest item",
    "description": "Write `largest(items)`: the largest item, or None for an empty list.",
    "starter_code": "def largest(items):\n    pass\n",
    "topics": ["Lists"],
    "examples": [{"name": "small", "call": "largest([1, 3, 2])", "expected": "3"}],
    "tests": [
        {"name": "small", "call": "largest([1, 3, 2])", "expected": "3"},
        {"name": "no items", "call": "largest([])", "expected": "None"},
        {"name": "negatives", "call": "largest([-5, -2])", "expected": "-2"},
    ],
    "solution": "def largest(items):\n    return max(items) if items else None\n",
}
CRASHES_ON_EMPTY = "def largest(items):\n    return max(items)\n"
UNUSED_IMPORT = "import os\n\n\ndef largest(items):\n    return sorted(items)[-1]\n"
RIGHT = "def largest(items):\n    return max(items) if items else None\n"


async def profile_of(client: QuartClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(PROFILE, headers=headers)
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


async def test_learning_profile_follows_graded_submissions_export_and_erasure(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client, career_goals="Backend developer")
    empty = await profile_of(client, headers)
    assert empty["topics"] == [] and empty["recent_mistakes"] == [] and empty["summary"] == ""
    assert empty["goals"]["career_goals"] == "Backend developer"
    lists = await add_exercise(app, **LARGEST)
    await add_exercise(app, topics=["math"])  # an untried topic to suggest

    await submit(client, headers, lists, CRASHES_ON_EMPTY)
    await submit(client, headers, lists, UNUSED_IMPORT)
    weak = await profile_of(client, headers)
    [topic] = weak["topics"]
    assert topic["topic"] == "lists" and topic["attempts"] == 2 and topic["failures"] == 2
    assert topic["exercises_attempted"] == 1 and topic["exercises_completed"] == 0 and topic["mastery"] == 0
    assert [t["topic"] for t in weak["weaknesses"]] == ["lists"] and weak["strengths"] == []
    recurring = {"kind": "edge_case_empty", "label": "edge cases on empty input", "count": 2}
    assert weak["recurring_mistakes"][0] == recurring
    kinds = {mistake["kind"] for mistake in weak["recent_mistakes"]}
    assert {"edge_case_empty", "style:unused_code"} <= kinds
    assert all("largest([])" not in mistake["detail"] for mistake in weak["recent_mistakes"])  # a hidden input
    assert weak["suggested_next_topics"] == ["lists", "math"]
    assert "lists" in weak["summary"] and "edge cases on empty input" in weak["summary"]

    await submit(client, headers, lists, RIGHT)
    learned = await profile_of(client, headers)
    [topic] = learned["topics"]
    assert topic["exercises_completed"] == 1 and topic["average_grade"] > 0
    assert 0 < topic["mastery"] < topic["average_grade"] / 100  # two failed tries cost something
    assert learned["recurring_mistakes"][0]["count"] == 2  # a passing run adds no test mistakes

    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    assert export["learning_profile"]["topics"][0]["topic"] == "lists"
    assert export["learning_profile"]["mistake_counts"]["edge_case_empty"] == 2

    deleted = await client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=headers)
    assert deleted.status_code == 204
    async with app.extensions["db_session_factory"]() as session:
        for model in (LearnerTopic, LearnerMistake, LearnerProfile):
            assert await session.scalar(select(func.count()).select_from(model).where(model.user_id == user_id)) == 0


async def complete_assignments(app: Quart, user_id: int) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(UserExercise).where(UserExercise.user_id == user_id).values(status="completed"))
        await session.commit()


async def test_daily_prefers_a_weak_topic_but_never_three_days_running(app: Quart, client: QuartClient) -> None:
    headers, user_id = await sign_in(client, skill_level="beginner")
    strings = await add_exercise(app, topics=["strings"])  # fresh and first by id: chosen without the model
    weak_lists = [await add_exercise(app, **LARGEST, slug=f"largest-{n}") for n in range(3)]
    await submit(client, headers, weak_lists[0], CRASHES_ON_EMPTY)  # "lists" is now weak

    chosen = []
    for _ in range(3):
        daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
        chosen.append(daily["exercise"]["id"])
        await complete_assignments(app, user_id)
        await move_assignments_back(app, user_id)
    assert chosen[:2] == weak_lists[1:]  # the weak topic, two days running
    assert chosen[2] == strings  # a third day of "lists" is not allowed


async def test_a_submission_cannot_smuggle_hidden_inputs_out_through_its_exception_names(
    app: Quart, client: QuartClient
) -> None:
    """An exception class named after a hidden test's argument must not become a mistake kind, label or
    detail of the learning profile (nor anything the tutor is told): only builtin exception names are kept."""
    headers, _ = await sign_in(client)
    lists = await add_exercise(app, **LARGEST)
    smuggler = (
        "def largest(items):\n"
        "    digits = ''.join(str(abs(item)) for item in items) or 'empty'\n"
        "    raise type('Leak' + digits + 'Error', (Exception,), {})('x')\n"
    )
    await submit(client, headers, lists, smuggler)
    profile = await profile_of(client, headers)
    assert "Leak" not in str(profile), profile
    assert {mistake["kind"] for mistake in profile["recent_mistakes"]} & {"exception", "edge_case_empty"}


JS_TESTS = [
    {"name": "small", "function": "add_numbers", "args": "[1, 2]", "expected": "3"},
    {"name": "large", "function": "add_numbers", "args": "[1000, 2345]", "expected": "3345"},
]


async def test_topics_and_mistakes_are_also_counted_per_language(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    python = await add_exercise(app, topics=["Sums"])
    javascript = await add_exercise(
        app, language="javascript", topics=["sums"], examples=JS_TESTS[:1], tests=JS_TESTS,
        starter_code="function addNumbers(first, second) {}\n",
        solution="function addNumbers(first, second) {\n  return first + second;\n}\n",
    )  # fmt: skip
    await submit(client, headers, python, WRONG)
    passed = await submit(client, headers, javascript, "function addNumbers(a, b) {\n  return a + b;\n}\n")
    assert passed["submission"]["status"] == "passed"

    profile = await profile_of(client, headers)
    [topic] = profile["topics"]
    assert (topic["topic"], topic["attempts"], topic["failures"], topic["exercises_completed"]) == ("sums", 2, 1, 1)
    by_language = {part["language"]: part for part in topic["languages"]}
    assert list(by_language) == ["javascript", "python"]
    js, py = by_language["javascript"], by_language["python"]
    assert (js["attempts"], js["failures"], js["exercises_completed"], js["average_grade"]) == (1, 0, 1, 100.0)
    assert js["mastery"] == 1.0 and topic["mastery"] < 1.0  # the Python failure counts in the total only
    assert (py["attempts"], py["failures"], py["exercises_completed"], py["mastery"]) == (1, 1, 0, 0.0)
    assert profile["recent_mistakes"] and {m["language"] for m in profile["recent_mistakes"]} == {"python"}

    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    exported = export["learning_profile"]
    assert [part["language"] for part in exported["topics"][0]["languages"]] == ["javascript", "python"]
    assert {mistake["language"] for mistake in exported["mistakes"]} == {"python"}
