"""Onboarding through the real app: questions, a draft resumed on another device, submit, resubmit."""

from __future__ import annotations

from typing import get_args

from quart.testing import QuartClient

from backend.schemas.users import OnboardingSubmit
from tests.helpers import bearer, login, register

ONBOARDING = "/api/v1/users/onboarding"
ANSWERS = {
    "programming_language": "python",
    "skill_level": "beginner",
    "career_goals": "Build a <b>web app</b> for my club",
    "learning_style": "hands_on",
    "time_commitment": "30_minutes",
}


async def test_questions_cover_the_five_fields_with_options(client: QuartClient) -> None:
    headers = bearer(await register(client))
    response = await client.get(f"{ONBOARDING}/questions", headers=headers)
    assert response.status_code == 200
    body = await response.get_json()
    fields = [question["field"] for question in body["questions"]]
    assert fields == list(ANSWERS) and body["total_questions"] == 5
    by_field = {question["field"]: question for question in body["questions"]}
    assert by_field["career_goals"]["type"] == "text" and by_field["career_goals"]["max_length"] == 500
    for field in ("programming_language", "skill_level", "learning_style", "time_commitment"):
        question = by_field[field]
        assert question["type"] == "select" and question["required"] is True
        assert question["options"] and all(option["description"] for option in question["options"])
    values = {option["value"] for option in by_field["programming_language"]["options"]}
    assert {"python", "javascript", "rust", "cpp"} <= values


async def test_the_options_offered_are_exactly_the_answers_accepted(client: QuartClient) -> None:
    body = await (await client.get(f"{ONBOARDING}/questions", headers=bearer(await register(client)))).get_json()
    for question in body["questions"]:
        if question["type"] == "select":
            accepted = set(get_args(OnboardingSubmit.model_fields[question["field"]].annotation))
            assert {option["value"] for option in question["options"]} == accepted, question["field"]


async def test_draft_resumes_on_another_device_then_submit_and_resubmit(client: QuartClient) -> None:
    registered = await register(client)
    laptop = bearer(registered)
    state = await (await client.get(ONBOARDING, headers=laptop)).get_json()
    assert state == {"completed": False, "answers": {}}

    response = await client.put(ONBOARDING, json={"programming_language": "python"}, headers=laptop)
    assert response.status_code == 200
    response = await client.put(
        ONBOARDING, json={"skill_level": "beginner", "career_goals": "<i>Get a job</i>"}, headers=laptop
    )
    assert (await response.get_json()) == {
        "completed": False,
        "answers": {"programming_language": "python", "skill_level": "beginner", "career_goals": "Get a job"},
    }

    phone = bearer(await login(client, registered["user"]["email"]))  # another device, another session
    resumed = await (await client.get(ONBOARDING, headers=phone)).get_json()
    assert resumed["answers"]["career_goals"] == "Get a job" and resumed["completed"] is False
    profile = await (await client.get("/api/v1/users/me", headers=phone)).get_json()
    assert profile["programming_language"] is None  # a draft does not touch the profile

    response = await client.post(ONBOARDING, json=ANSWERS, headers=phone)
    assert response.status_code == 200
    user = await response.get_json()
    assert user["onboarding_completed"] is True
    assert (user["programming_language"], user["skill_level"], user["career_goals"]) == (
        "python",
        "beginner",
        "Build a web app for my club",
    )
    assert (await (await client.get(ONBOARDING, headers=laptop)).get_json())["completed"] is True

    response = await client.post(ONBOARDING, json=ANSWERS | {"skill_level": "advanced"}, headers=laptop)
    assert response.status_code == 200
    assert (await response.get_json())["skill_level"] == "advanced"
    state = await (await client.get(ONBOARDING, headers=phone)).get_json()
    assert state["completed"] is True and state["answers"]["skill_level"] == "advanced"
    progress = await (await client.get("/api/v1/users/me/progress", headers=phone)).get_json()
    assert progress["current_difficulty"] == "hard"  # the default follows the skill level


async def test_draft_null_removes_an_answer(client: QuartClient) -> None:
    headers = bearer(await register(client))
    await client.put(ONBOARDING, json={"programming_language": "go", "learning_style": "visual"}, headers=headers)
    response = await client.put(ONBOARDING, json={"learning_style": None}, headers=headers)
    assert (await response.get_json())["answers"] == {"programming_language": "go"}


async def test_submit_requires_all_five_answers(client: QuartClient) -> None:
    headers = bearer(await register(client))
    partial = {key: value for key, value in ANSWERS.items() if key != "time_commitment"}
    response = await client.post(ONBOARDING, json=partial, headers=headers)
    body = await response.get_json()
    assert response.status_code == 422 and [error["field"] for error in body["errors"]] == ["time_commitment"]
    me = await (await client.get("/api/v1/users/me", headers=headers)).get_json()
    assert me["onboarding_completed"] is False


async def test_invalid_or_unknown_answers_are_422(client: QuartClient) -> None:
    headers = bearer(await register(client))
    for body, field in (
        ({"programming_language": "cobol"}, "programming_language"),
        ({"career_goals": "x" * 501}, "career_goals"),
        ({"role": "admin"}, "role"),
    ):
        response = await client.put(ONBOARDING, json=body, headers=headers)
        assert response.status_code == 422
        assert [error["field"] for error in (await response.get_json())["errors"]] == [field]
    response = await client.post(ONBOARDING, json=ANSWERS | {"skill_level": "guru"}, headers=headers)
    assert response.status_code == 422
