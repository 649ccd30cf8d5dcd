"""Profile, account erasure and the data export through the real app, on both stacks."""

from __future__ import annotations

import json

import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import func, select, update

from backend.db import Base
from backend.models import AuthSession, OAuthAccount, RefreshToken, User
from tests.helpers import PASSWORD, bearer, login, register
from tests.services.support import complete, seed

USERS = "/api/v1/users"
USER_FIELDS = {
    "id", "email", "name", "avatar_url", "bio", "role", "email_verified", "programming_language", "skill_level",
    "career_goals", "learning_style", "time_commitment", "timezone", "onboarding_completed", "current_streak",
    "longest_streak", "exercises_completed", "created_at", "updated_at", "last_login_at",
}  # fmt: skip


async def signed_up(client: QuartClient) -> tuple[dict, dict[str, str]]:
    body = await register(client)
    return body["user"], bearer(body)


async def patch_me(client: QuartClient, headers: dict[str, str], body: dict) -> tuple[int, dict]:
    response = await client.patch(f"{USERS}/me", json=body, headers=headers)
    return response.status_code, await response.get_json()


# --- profile ---------------------------------------------------------------------------------------


async def test_get_me_returns_the_user(client: QuartClient) -> None:
    user, headers = await signed_up(client)
    response = await client.get(f"{USERS}/me", headers=headers)
    assert response.status_code == 200
    body = await response.get_json()
    assert set(body) == USER_FIELDS and body["id"] == user["id"]


async def test_get_me_without_a_token_is_401(client: QuartClient) -> None:
    response = await client.get(f"{USERS}/me")
    assert response.status_code == 401 and (await response.get_json())["code"] == "unauthorized"


async def test_patch_me_updates_fields_and_strips_html(client: QuartClient) -> None:
    _, headers = await signed_up(client)
    status, body = await patch_me(
        client,
        headers,
        {
            "name": "  <b>Ada</b> & co ",
            "bio": "<script>alert(1)</script><p>I like <i>maths</i> &amp; engines</p>",
            "career_goals": "<a href='https://evil.example'>Get hired</a>",
            "avatar_url": "https://example.com/ada.png",
            "programming_language": "rust",
            "skill_level": "intermediate",
            "learning_style": "visual",
            "time_commitment": "1_hour",
            "timezone": "America/Los_Angeles",
        },
    )
    assert status == 200, body
    assert body["name"] == "Ada & co"
    assert body["bio"] == "I like maths & engines"
    assert body["career_goals"] == "Get hired"
    assert (body["programming_language"], body["skill_level"], body["timezone"]) == (
        "rust",
        "intermediate",
        "America/Los_Angeles",
    )
    again = await (await client.get(f"{USERS}/me", headers=headers)).get_json()
    assert again["name"] == "Ada & co" and again["learning_style"] == "visual"


async def test_patch_me_with_null_clears_an_optional_field(client: QuartClient) -> None:
    _, headers = await signed_up(client)
    await patch_me(client, headers, {"bio": "Hello"})
    status, body = await patch_me(client, headers, {"bio": None})
    assert status == 200 and body["bio"] is None and body["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "<b></b>"),
        ("name", "x" * 101),
        ("name", None),
        ("bio", "x" * 1001),
        ("career_goals", "x" * 501),
        ("avatar_url", "http://example.com/a.png"),
        ("avatar_url", "javascript:alert(1)"),
        ("avatar_url", "https://example.com/" + "a" * 2048),
        ("programming_language", "cobol"),
        ("skill_level", "guru"),
        ("learning_style", "osmosis"),
        ("time_commitment", "forever"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../../etc/passwd"),
        ("timezone", None),
    ],
)
async def test_patch_me_rejects_invalid_field(client: QuartClient, field: str, value: object) -> None:
    _, headers = await signed_up(client)
    status, body = await patch_me(client, headers, {field: value})
    assert status == 422 and body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("email", "new@example.com"),
        ("email_verified", True),
        ("current_streak", 100),
        ("longest_streak", 100),
        ("exercises_completed", 500),
        ("onboarding_completed", True),
        ("password_hash", "x"),
        ("id", 1),
    ],
)
async def test_patch_me_refuses_server_owned_fields(client: QuartClient, field: str, value: object) -> None:
    user, headers = await signed_up(client)
    status, body = await patch_me(client, headers, {"name": "Grace", field: value})
    assert status == 422 and [error["field"] for error in body["errors"]] == [field]
    after = await (await client.get(f"{USERS}/me", headers=headers)).get_json()
    assert after["name"] == user["name"] and after["role"] == "student" and after["exercises_completed"] == 0


async def test_patch_me_with_cookies_needs_csrf(client: QuartClient) -> None:
    await register(client)  # the test client keeps the cookies
    response = await client.patch(f"{USERS}/me", json={"name": "Grace"})
    assert response.status_code == 403 and (await response.get_json())["code"] == "csrf_failed"


# --- erasure ---------------------------------------------------------------------------------------


async def rows_of(app: Quart, user_id: int) -> dict[str, int]:
    """How many rows of every table still point at the user (directly, or through their sessions)."""
    counts: dict[str, int] = {}
    async with app.extensions["db_session_factory"]() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "users":
                counts["users"] = await session.scalar(select(func.count()).where(User.id == user_id)) or 0
            elif "user_id" in table.c:
                counts[table.name] = (
                    await session.scalar(select(func.count()).select_from(table).where(table.c.user_id == user_id)) or 0
                )
        counts["refresh_tokens"] = (
            await session.scalar(
                select(func.count())
                .select_from(RefreshToken)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .where(AuthSession.user_id == user_id)
            )
            or 0
        )
    return counts


async def test_delete_me_erases_everything_and_ends_sessions(app: Quart, client: QuartClient) -> None:
    await seed(app)
    user, headers = await signed_up(client)
    other, other_headers = await signed_up(client)
    second_device = bearer(await login(client, user["email"]))
    await client.put(f"{USERS}/onboarding", json={"skill_level": "beginner"}, headers=headers)
    for account in (user, other):
        await complete(app, account["id"], hints_used=0)
    async with app.extensions["db_session_factory"]() as session:
        session.add(OAuthAccount(user_id=user["id"], provider="github", provider_user_id="42", login="ada"))
        await session.commit()
    before = await rows_of(app, user["id"])
    for table in ("users", "auth_sessions", "refresh_tokens", "user_progress", "daily_activity", "user_achievements"):
        assert before[table] > 0, table

    response = await client.delete(f"{USERS}/me", json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 204

    assert set((await rows_of(app, user["id"])).values()) == {0}
    for token in (headers, second_device):
        assert (await client.get(f"{USERS}/me", headers=token)).status_code == 401
    response = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 401 and (await response.get_json())["code"] == "invalid_credentials"
    # Someone else's data is untouched.
    assert (await client.get(f"{USERS}/me", headers=other_headers)).status_code == 200
    assert (await rows_of(app, other["id"]))["user_achievements"] > 0


@pytest.mark.parametrize("body", [{"password": "Wrong-horse-9-battery"}, {}])
async def test_delete_me_with_wrong_or_missing_password_is_400(client: QuartClient, body: dict) -> None:
    _, headers = await signed_up(client)
    response = await client.delete(f"{USERS}/me", json=body, headers=headers)
    assert response.status_code == 400 and (await response.get_json())["code"] == "invalid_password"
    assert (await client.get(f"{USERS}/me", headers=headers)).status_code == 200


async def test_delete_me_for_oauth_only_account_needs_no_password(app: Quart, client: QuartClient) -> None:
    user, headers = await signed_up(client)
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(User).where(User.id == user["id"]).values(password_hash=None))
        await session.commit()
    response = await client.delete(f"{USERS}/me", headers=headers)  # no body at all
    assert response.status_code == 204
    assert set((await rows_of(app, user["id"])).values()) == {0}


# --- export ----------------------------------------------------------------------------------------


async def test_export_has_every_section_and_no_secrets(app: Quart, client: QuartClient) -> None:
    await seed(app)
    user, headers = await signed_up(client)
    other, _ = await signed_up(client)
    await client.put(f"{USERS}/onboarding", json={"programming_language": "go"}, headers=headers)
    await complete(app, user["id"], topics=["maps"], grade=100)
    await complete(app, other["id"], topics=["secret-topic-of-other"])
    async with app.extensions["db_session_factory"]() as session:
        session.add(
            OAuthAccount(
                user_id=user["id"], provider="github", provider_user_id="7", access_token_encrypted="gAAAA-cipher"
            )
        )
        await session.commit()
        password_hash = await session.scalar(select(User.password_hash).where(User.id == user["id"]))
        token_hashes = list(await session.scalars(select(RefreshToken.token_hash)))

    response = await client.get(f"{USERS}/me/export", headers=headers)
    assert response.status_code == 200
    body = await response.get_json()
    required = {"profile", "onboarding", "exercises", "submissions", "conversations", "achievements"}
    assert required | {"repositories", "reviews"} <= set(body)
    assert body["profile"]["email"] == user["email"]
    assert set(body["profile"]) == set(user) | {"is_active"} and body["profile"]["is_active"] is True
    assert body["onboarding"] == {"completed": False, "answers": {"programming_language": "go"}}
    assert {a["slug"] for a in body["achievements"]} >= {"first_exercise", "perfect_score"}
    assert [c["topics"] for c in body["progress"]["completions"]] == [["maps"]]
    assert body["sessions"] and body["linked_accounts"][0]["provider"] == "github"
    text = json.dumps(body)
    for secret in [password_hash, "gAAAA-cipher", *token_hashes]:
        assert secret and secret not in text
    assert "password_hash" not in text and "token_hash" not in text
    assert other["email"] not in text and "secret-topic-of-other" not in text
