"""Broken object level authorization and mass assignment.

The BOLA test enumerates the app's url_map: every route that takes an id is attacked with another
user's object and must answer 404 `not_found` (never 403, never 200), leaving the object untouched. A new
route with an id argument nobody listed here fails `test_every_id_route_is_attacked`, so it cannot ship
without this check. (tests/api/test_chat.py, test_auth.py and test_github.py hold per-domain versions.)
"""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from backend.models.chat import Conversation
from backend.models.exercises import Exercise
from tests.api.test_exercises import add_exercise
from tests.security.support import new_account, owned_objects, problem_code, routes

# Id arguments that name a user's own object; `owned_objects` makes one of each.
OWNED_ID_ARGUMENTS = frozenset({"session_id", "conversation_id", "exercise_id", "repository_id", "review_id"})
# Routes with arguments that name no user's object, each with the reason.
NOT_OWNED = {
    "docs.get_docs_asset": "a static Swagger UI file",
    "oauth.start_oauth": "a provider name",
    "oauth.finish_oauth": "a provider name",
}
# Admin-only routes manage every exercise: a student is refused with 403 before any lookup.
ADMIN_ONLY = frozenset({"exercises.replace_exercise", "exercises.delete_exercise"})
# Smallest valid body for routes that validate one, so validation cannot answer before the ownership check.
BODIES: dict[str, dict[str, Any]] = {
    "chat.rename_conversation": {"title": "Taken over"},
    "chat.post_message": {"content": "hello"},
    "chat.stream_message": {"content": "hello"},
    "exercises.request_exercise_hint": {},
    "exercises.submit_solution": {"code": "x = 1"},
    "github.update_repository": {"auto_review": True},
    "github.request_review": {"pull_number": 1},
}
SERVER_OWNED = {
    "role": "admin",
    "email_verified": True,
    "current_streak": 99,
    "longest_streak": 99,
    "exercises_completed": 99,
    "is_active": True,
    "id": 1,
    "user_id": 1,
    "onboarding_completed": True,
}


def id_routes(app: Quart) -> list[tuple[str, str, str]]:
    return [
        (method, rule.rule, rule.endpoint)
        for method, rule in routes(app)
        if rule.arguments and rule.endpoint not in NOT_OWNED
    ]


async def test_every_id_route_is_attacked(app: Quart) -> None:
    found = id_routes(app)
    assert len(found) >= 19
    for method, rule, endpoint in found:
        arguments = {argument for argument in app.url_map._rules_by_endpoint[endpoint][0].arguments}
        assert arguments <= OWNED_ID_ARGUMENTS, f"{method} {rule}: add its id kind to owned_objects and this test"
        if method in ("POST", "PUT", "PATCH") and endpoint not in ADMIN_ONLY and endpoint not in BODIES:
            assert endpoint.endswith(("skip_exercise", "publish_review")), f"{method} {rule}: add a body to BODIES"


async def test_another_users_object_is_404_on_every_id_route(app: Quart, client: QuartClient) -> None:
    owner, attacker = await new_account(client), await new_account(client)
    objects = await owned_objects(app, client, owner)
    for method, rule, endpoint in id_routes(app):
        path = rule
        for argument, value in objects.items():
            path = path.replace(f"<int:{argument}>", str(value))
        response = await client.open(path, method=method, json=BODIES.get(endpoint), headers=attacker.headers)
        body = await response.get_json()
        if endpoint in ADMIN_ONLY:
            assert response.status_code == 403, (method, path, body)
            continue
        assert response.status_code == 404, (method, path, body)
        assert problem_code(body) == "not_found", (method, path, body)

    # Nothing of the owner's changed: the conversation keeps its title, the session lives, the repository stays.
    conversation = await client.get(f"/api/v1/chat/conversations/{objects['conversation_id']}", headers=owner.headers)
    assert (await conversation.get_json())["title"] == "Private"
    sessions = await (await client.get("/api/v1/auth/sessions", headers=owner.headers)).get_json()
    assert objects["session_id"] in [item["id"] for item in sessions["items"]]
    repositories = await (await client.get("/api/v1/github/repositories", headers=owner.headers)).get_json()
    assert [item["auto_review"] for item in repositories["items"]] == [False]
    exercise = await client.get(f"/api/v1/exercises/{objects['exercise_id']}", headers=owner.headers)
    assert exercise.status_code == 200


async def test_server_owned_fields_cannot_be_set_through_any_body(client: QuartClient) -> None:
    """PATCH /users/me is covered field by field in tests/api/test_users.py; these are the other bodies."""
    email = "mass-assignment@example.com"
    register = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "Correct-horse-9-battery", "name": "Mallory", **SERVER_OWNED},
    )
    assert register.status_code in (201, 422), await register.get_json()
    if register.status_code == 422:  # refusing outright is fine too; then register normally
        register = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": "Correct-horse-9-battery", "name": "Mallory"}
        )
    tokens = await register.get_json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    answers = {"programming_language": "python", "skill_level": "beginner"}  # onboarding refuses extras (422)
    for method, path, body in [
        ("PUT", "/api/v1/users/onboarding", {**SERVER_OWNED}),
        ("POST", "/api/v1/users/onboarding", {**answers, **SERVER_OWNED}),
        ("POST", "/api/v1/chat/conversations", {"title": "Mine", **SERVER_OWNED}),
        ("PUT", "/api/v1/exercises/difficulty", {"difficulty": "easy", **SERVER_OWNED}),
    ]:
        response = await client.open(path, method=method, json=body, headers=headers)
        assert response.status_code in (200, 201, 422), (method, path, await response.get_json())
    me = await (await client.get("/api/v1/users/me", headers=headers)).get_json()
    assert me["role"] == "student" and me["email_verified"] is False
    assert me["current_streak"] == me["longest_streak"] == me["exercises_completed"] == 0
    assert me["id"] == tokens["user"]["id"]


async def test_conversation_about_a_missing_or_private_exercise_is_404_and_the_database_agrees(
    app: Quart, client: QuartClient
) -> None:
    owner, intruder = await new_account(client), await new_account(client)
    private = await add_exercise(app, slug_suffix="fk-", author_id=owner.id, visibility="private", generated_by_ai=True)
    for exercise_id in (private + 1000, private):
        response = await client.post(
            "/api/v1/chat/conversations", json={"exercise_id": exercise_id}, headers=intruder.headers
        )
        assert response.status_code == 404 and problem_code(await response.get_json()) == "not_found"
    async with app.extensions["db_session_factory"]() as session:  # the foreign key refuses it too
        session.add(Conversation(user_id=intruder.id, exercise_id=private + 1000, context_type="exercise"))
        with pytest.raises(IntegrityError):
            await session.commit()
    mine = await client.post("/api/v1/chat/conversations", json={"exercise_id": private}, headers=owner.headers)
    conversation_id = (await mine.get_json())["id"]
    async with app.extensions["db_session_factory"]() as session:  # the exercise goes, the conversation stays
        await session.execute(delete(Exercise).where(Exercise.id == private))
        await session.commit()
    kept = await client.get(f"/api/v1/chat/conversations/{conversation_id}", headers=owner.headers)
    assert kept.status_code == 200 and (await kept.get_json())["exercise_id"] is None
