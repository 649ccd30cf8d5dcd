"""Shared helpers for the security suite: two users, and objects of one to attack with the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import Quart
from quart.testing import QuartClient
from werkzeug.routing import Rule

from backend.models.github import Repository, Review
from tests.api.test_exercises import add_exercise
from tests.helpers import bearer, login, register, unique_email

IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Account:
    tokens: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.tokens["user"]["id"])

    @property
    def email(self) -> str:
        return str(self.tokens["user"]["email"])

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens)


async def new_account(client: QuartClient) -> Account:
    return Account(await register(client, unique_email()))


async def owned_objects(app: Quart, client: QuartClient, owner: Account) -> dict[str, int]:
    """One object of `owner` for every kind of id a route takes: the argument name → the id."""
    second_login = await login(client, owner.email)
    sessions = await (await client.get("/api/v1/auth/sessions", headers=owner.headers)).get_json()
    [session_id] = [item["id"] for item in sessions["items"] if not item["current"]]
    assert second_login["access_token"]
    conversation = await client.post("/api/v1/chat/conversations", json={"title": "Private"}, headers=owner.headers)
    assert conversation.status_code == 201
    exercise_id = await add_exercise(
        app, slug_suffix="owned-", author_id=owner.id, visibility="private", generated_by_ai=True
    )
    async with app.extensions["db_session_factory"]() as session:
        repository = Repository(
            user_id=owner.id, full_name="owner/secret", url="https://github.com/owner/secret", private=True
        )
        session.add(repository)
        await session.flush()
        review = Review(user_id=owner.id, repository_id=repository.id, pull_number=1, status="completed", score=90)
        session.add(review)
        await session.commit()
        repository_id, review_id = repository.id, review.id
    return {
        "session_id": session_id,
        "conversation_id": (await conversation.get_json())["id"],
        "exercise_id": exercise_id,
        "repository_id": repository_id,
        "review_id": review_id,
    }


def routes(app: Quart) -> list[tuple[str, Rule]]:
    """Every (method, rule) the app serves, HEAD and OPTIONS aside."""
    return [
        (method, rule)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]


def problem_code(body: Any) -> str | None:
    return body.get("code") if isinstance(body, dict) else None
