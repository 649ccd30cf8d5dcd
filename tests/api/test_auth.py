"""Accounts and sessions through the real app, on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from quart import Quart
from quart.testing import QuartClient
from quart.wrappers import Response
from sqlalchemy import update
from sqlalchemy.sql import Executable

from backend.models import OneTimeToken, User
from tests.conftest import TEST_SECRET_KEY
from tests.helpers import PASSWORD, bearer, link_token, login, register, unique_email, wait_for_email

AUTH = "/api/v1/auth"


async def problem_code(response: Response) -> str:
    return (await response.get_json())["code"]


async def set_rows(app: Quart, statement: Executable) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(statement)
        await session.commit()


# --- registration and login ------------------------------------------------------------------------


async def test_register_returns_tokens_sets_cookies_and_sends_verification(app: Quart, client: QuartClient) -> None:
    email = unique_email()
    response = await client.post(
        f"{AUTH}/register", json={"email": email.upper(), "password": PASSWORD, "name": "  Ada  "}
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in", "csrf_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    user = body["user"]
    assert user["email"] == email and user["name"] == "Ada" and user["role"] == "student"
    assert user["email_verified"] is False and user["current_streak"] == 0 and user["timezone"] == "UTC"
    assert user["created_at"].endswith(("Z", "+00:00"))

    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert "HttpOnly" in cookies["access_token"] and "SameSite=Lax" in cookies["access_token"]
    assert "Path=/api/v1/auth" in cookies["refresh_token"] and "HttpOnly" in cookies["refresh_token"]
    assert "HttpOnly" not in cookies["csrf_token"]
    assert "Secure" not in cookies["access_token"]  # test behaves like development

    [verification] = await wait_for_email(app, email)
    assert "http://localhost:5173/verify-email?token=" in verification.body


async def test_register_same_email_in_other_case_is_409(client: QuartClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(f"{AUTH}/register", json={"email": email.title(), "password": PASSWORD, "name": "B"})
    assert response.status_code == 409 and await problem_code(response) == "email_taken"


@pytest.mark.parametrize(
    "password", ["Short-1a", "alllowercase-123", "ALLUPPER-1234", "NoDigits-here!", "NoSymbols1234", "Aa1!" * 33]
)
async def test_register_weak_password_is_422(client: QuartClient, password: str) -> None:
    response = await client.post(f"{AUTH}/register", json={"email": unique_email(), "password": password, "name": "A"})
    body = await response.get_json()
    assert response.status_code == 422 and body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == ["password"]
    assert password not in str(body)


async def test_register_invalid_email_and_name_are_422(client: QuartClient) -> None:
    response = await client.post(f"{AUTH}/register", json={"email": "not-an-email", "password": PASSWORD, "name": ""})
    fields = {error["field"] for error in (await response.get_json())["errors"]}
    assert response.status_code == 422 and fields == {"email", "name"}


async def test_long_password_counts_in_full_past_bcrypt_72_bytes(client: QuartClient) -> None:
    password = "Aa1!" + "x" * 96  # 100 characters
    email = unique_email()
    await register(client, email, password=password)
    await login(client, email, password)
    truncated = await client.post(f"{AUTH}/login", json={"email": email, "password": password[:72]})
    assert truncated.status_code == 401


async def test_login_wrong_password_unknown_email_answer_alike(client: QuartClient) -> None:
    email = unique_email()
    await register(client, email)
    wrong = await client.post(f"{AUTH}/login", json={"email": email, "password": "Wrong-password-1"})
    unknown = await client.post(f"{AUTH}/login", json={"email": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    wrong_body, unknown_body = await wrong.get_json(), await unknown.get_json()
    assert wrong_body["code"] == unknown_body["code"] == "invalid_credentials"
    assert wrong_body["detail"] == unknown_body["detail"]


async def test_five_failures_lock_the_account_even_for_the_right_password(client: QuartClient) -> None:
    email = unique_email()
    await register(client, email)
    for _ in range(5):
        response = await client.post(f"{AUTH}/login", json={"email": email, "password": "Wrong-password-1"})
        assert response.status_code == 401
    locked = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429 and await problem_code(locked) == "account_locked"
    assert 800 < int(locked.headers["Retry-After"]) <= 900


async def test_login_is_limited_per_ip(client: QuartClient) -> None:
    statuses = [
        (await client.post(f"{AUTH}/login", json={"email": unique_email(), "password": PASSWORD})).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


async def test_register_is_limited_per_ip(client: QuartClient) -> None:
    for _ in range(5):
        await register(client)
    response = await client.post(f"{AUTH}/register", json={"email": unique_email(), "password": PASSWORD, "name": "A"})
    assert response.status_code == 429 and "Retry-After" in response.headers


async def test_disabled_account_cannot_sign_in_or_use_its_tokens(app: Quart, client: QuartClient) -> None:
    email = unique_email()
    tokens = await register(client, email)
    await set_rows(app, update(User).where(User.email == email).values(is_active=False))
    assert await problem_code(await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})) == (
        "account_disabled"
    )
    me = await client.get(f"{AUTH}/me", headers=bearer(tokens))
    assert me.status_code == 403 and await problem_code(me) == "account_disabled"


# --- tokens ----------------------------------------------------------------------------------------


async def test_me_needs_a_token(client: QuartClient) -> None:
    response = await client.get(f"{AUTH}/me")
    assert response.status_code == 401 and await problem_code(response) == "unauthorized"
    tokens = await register(client)
    me = await client.get(f"{AUTH}/me", headers=bearer(tokens))
    assert me.status_code == 200 and (await me.get_json())["id"] == tokens["user"]["id"]


def forged(claims: dict, key: str = TEST_SECRET_KEY, algorithm: str = "HS256") -> str:
    now = datetime.now(UTC)
    base = {
        "sub": "1",
        "sid": 1,
        "jti": "x",
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "iss": "codementor",
        "aud": "codementor-api",
    }
    return jwt.encode({**base, **claims}, key, algorithm=algorithm)


async def test_tampered_tokens_are_401(client: QuartClient) -> None:
    tokens = await register(client)
    user_id, real = str(tokens["user"]["id"]), tokens["access_token"]
    header, payload, signature = real.split(".")
    session_id = jwt.decode(real, options={"verify_signature": False})["sid"]
    mine = {"sub": user_id, "sid": session_id}
    now = datetime.now(UTC)
    attempts = {
        "alg none": jwt.encode({**jwt.decode(real, options={"verify_signature": False})}, None, algorithm="none"),
        "wrong key": forged(mine, key="another-key-that-is-long-enough-for-hs256-xx"),
        "nbf in the future": forged({**mine, "nbf": now + timedelta(minutes=10)}),
        "wrong audience": forged({**mine, "aud": "someone-else"}),
        "wrong issuer": forged({**mine, "iss": "evil"}),
        "not an access token": forged({**mine, "type": "refresh"}),
        "refresh token as access": tokens["refresh_token"],
        "signature swapped": f"{header}.{payload}.{signature[::-1]}",
        "other user's sub": forged({**mine, "sub": str(int(user_id) + 1000)}),
    }
    for name, token in attempts.items():
        response = await client.get(f"{AUTH}/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert await problem_code(response) == "unauthorized", name


async def test_expired_token_is_401_token_expired(client: QuartClient) -> None:
    tokens = await register(client)
    sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    past = datetime.now(UTC) - timedelta(hours=1)
    token = forged(
        {"sub": str(tokens["user"]["id"]), "sid": sid, "iat": past, "nbf": past, "exp": past + timedelta(minutes=15)}
    )
    response = await client.get(f"{AUTH}/me", headers=bearer(token))
    assert response.status_code == 401 and await problem_code(response) == "token_expired"


async def test_refresh_rotates_and_reuse_kills_the_session(client: QuartClient) -> None:
    tokens = await register(client)
    rotated = await client.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    fresh = await rotated.get_json()
    assert fresh["refresh_token"] != tokens["refresh_token"] and fresh["access_token"] != tokens["access_token"]
    assert (await client.get(f"{AUTH}/me", headers=bearer(fresh))).status_code == 200

    reused = await client.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401 and await problem_code(reused) == "token_reused"
    # The whole session is dead: the newest refresh token and its access token too.
    after = await client.post(f"{AUTH}/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert after.status_code == 401
    assert (await client.get(f"{AUTH}/me", headers=bearer(fresh))).status_code == 401


async def test_refresh_from_cookie_and_unknown_token(client: QuartClient) -> None:
    await register(client)  # the test client keeps the cookies
    assert (await client.post(f"{AUTH}/refresh")).status_code == 200
    unknown = await client.post(f"{AUTH}/refresh", json={"refresh_token": "made-up"})
    assert unknown.status_code == 401 and await problem_code(unknown) == "unauthorized"


async def test_concurrent_refreshes_with_one_token_let_exactly_one_win(client: QuartClient) -> None:
    tokens = await register(client)
    responses = await asyncio.gather(
        *(client.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(5))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) <= 1 and statuses.count(401) >= 4


async def test_logout_revokes_the_access_token_at_once(client: QuartClient) -> None:
    tokens = await register(client)
    other = await login(client, tokens["user"]["email"])
    assert (await client.post(f"{AUTH}/logout", headers=bearer(tokens))).status_code == 204
    assert (await client.get(f"{AUTH}/me", headers=bearer(tokens))).status_code == 401
    assert (await client.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    assert (await client.get(f"{AUTH}/me", headers=bearer(other))).status_code == 200  # other device unaffected


async def test_logout_all_ends_every_session(client: QuartClient) -> None:
    first = await register(client)
    second = await login(client, first["user"]["email"])
    assert (await client.post(f"{AUTH}/logout-all", headers=bearer(second))).status_code == 204
    for tokens in (first, second):
        assert (await client.get(f"{AUTH}/me", headers=bearer(tokens))).status_code == 401


# --- cookies and CSRF ------------------------------------------------------------------------------


async def test_cookie_auth_needs_csrf_on_unsafe_methods(client: QuartClient) -> None:
    tokens = await register(client)  # the test client now holds the cookies
    assert (await client.get(f"{AUTH}/me")).status_code == 200  # safe method: no CSRF needed
    refused = await client.post(f"{AUTH}/logout")
    assert refused.status_code == 403 and await problem_code(refused) == "csrf_failed"
    wrong = await client.post(f"{AUTH}/logout", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    ok = await client.post(f"{AUTH}/logout", headers={"X-CSRF-Token": tokens["csrf_token"]})
    assert ok.status_code == 204
    cleared = {c.split("=", 1)[0] for c in ok.headers.getlist("Set-Cookie") if "Expires=Thu, 01 Jan 1970" in c}
    assert cleared == {"access_token", "refresh_token", "csrf_token"}


async def test_bearer_needs_no_csrf_and_wins_over_cookies(client: QuartClient) -> None:
    mine = await register(client)
    other = await register(client)  # the client's cookies now belong to `other`
    me = await client.get(f"{AUTH}/me", headers=bearer(mine))
    assert (await me.get_json())["id"] == mine["user"]["id"]
    assert (await client.post(f"{AUTH}/logout", headers=bearer(mine))).status_code == 204
    assert (await client.get(f"{AUTH}/me", headers=bearer(other))).status_code == 200


# --- sessions --------------------------------------------------------------------------------------


async def test_sessions_list_marks_current_and_delete_ends_one(client: QuartClient) -> None:
    first = await register(client)
    second = await login(client, first["user"]["email"])
    listed = await (await client.get(f"{AUTH}/sessions", headers=bearer(second))).get_json()
    assert len(listed["items"]) == 2
    [current] = [item for item in listed["items"] if item["current"]]
    [other] = [item for item in listed["items"] if not item["current"]]
    assert (await client.delete(f"{AUTH}/sessions/{other['id']}", headers=bearer(second))).status_code == 204
    assert (await client.get(f"{AUTH}/me", headers=bearer(first))).status_code == 401
    assert (await client.get(f"{AUTH}/me", headers=bearer(second))).status_code == 200
    assert current["id"] != other["id"]


async def test_another_users_session_is_404(client: QuartClient) -> None:
    alice, bob = await register(client), await register(client)
    bobs = await (await client.get(f"{AUTH}/sessions", headers=bearer(bob))).get_json()
    response = await client.delete(f"{AUTH}/sessions/{bobs['items'][0]['id']}", headers=bearer(alice))
    assert response.status_code == 404 and await problem_code(response) == "not_found"
    assert (await client.get(f"{AUTH}/me", headers=bearer(bob))).status_code == 200


# --- passwords -------------------------------------------------------------------------------------


async def test_password_change_keeps_this_session_and_ends_the_others(client: QuartClient) -> None:
    first = await register(client)
    email = first["user"]["email"]
    second = await login(client, email)
    wrong = await client.post(
        f"{AUTH}/password/change",
        headers=bearer(second),
        json={"current_password": "Wrong-password-1", "new_password": "New-password-123"},
    )
    assert wrong.status_code == 400 and await problem_code(wrong) == "invalid_password"
    changed = await client.post(
        f"{AUTH}/password/change",
        headers=bearer(second),
        json={"current_password": PASSWORD, "new_password": "New-password-123"},
    )
    assert changed.status_code == 200
    assert (await client.get(f"{AUTH}/me", headers=bearer(first))).status_code == 401
    assert (await client.get(f"{AUTH}/me", headers=bearer(await changed.get_json()))).status_code == 200
    await login(client, email, "New-password-123")
    assert (await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})).status_code == 401


async def test_password_reset_flow_single_use_and_revokes_sessions(app: Quart, client: QuartClient) -> None:
    tokens = await register(client)
    email = tokens["user"]["email"]
    known = await client.post(f"{AUTH}/password-reset", json={"email": email})
    unknown = await client.post(f"{AUTH}/password-reset", json={"email": unique_email()})
    assert known.status_code == unknown.status_code == 202
    assert await known.get_json() == await unknown.get_json()

    reset = next(mail for mail in await wait_for_email(app, email, count=2) if "reset" in mail.subject.lower())
    assert "http://localhost:5173/reset-password?token=" in reset.body
    token = link_token(reset)
    confirmed = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token, "new_password": "Brand-new-pass-42"}
    )
    assert confirmed.status_code == 200
    assert (await client.get(f"{AUTH}/me", headers=bearer(tokens))).status_code == 401
    await login(client, email, "Brand-new-pass-42")
    again = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token, "new_password": "Another-pass-42"}
    )
    assert again.status_code == 400 and await problem_code(again) == "token_invalid"


async def test_expired_reset_token_is_400_token_expired(app: Quart, client: QuartClient) -> None:
    email = (await register(client))["user"]["email"]
    await client.post(f"{AUTH}/password-reset", json={"email": email})
    reset = next(mail for mail in await wait_for_email(app, email, count=2) if "reset" in mail.subject.lower())
    await set_rows(
        app,
        update(OneTimeToken)
        .where(OneTimeToken.purpose == "password_reset")
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )
    response = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": link_token(reset), "new_password": "Brand-new-pass-42"}
    )
    assert response.status_code == 400 and await problem_code(response) == "token_expired"


# --- email verification ----------------------------------------------------------------------------


async def test_verify_email_with_the_emailed_token(app: Quart, client: QuartClient) -> None:
    tokens = await register(client)
    [mail] = await wait_for_email(app, tokens["user"]["email"])
    first = await client.post(f"{AUTH}/verify-email", json={"token": link_token(mail)})
    assert first.status_code == 200
    body = await first.get_json()
    assert body["user"]["email_verified"] is True and body["message"]
    again = await client.post(f"{AUTH}/verify-email", json={"token": link_token(mail)})
    assert again.status_code == 200 and "already" in (await again.get_json())["message"]
    bogus = await client.post(f"{AUTH}/verify-email", json={"token": "nope"})
    assert bogus.status_code == 400 and await problem_code(bogus) == "token_invalid"


async def test_auth_routes_are_documented_with_security(client: QuartClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    me = spec["paths"]["/api/v1/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert spec["paths"]["/api/v1/auth/login"]["post"]["security"] == []  # public, and says so
    assert "requestBody" in spec["paths"]["/api/v1/auth/register"]["post"]


async def test_require_role_forbids_other_roles_before_anything_else(probe_client: QuartClient) -> None:
    student = await register(probe_client)
    anonymous = await probe_client.app.test_client().post("/_probe/admin-only")
    assert anonymous.status_code == 401
    refused = await probe_client.post("/_probe/admin-only", headers=bearer(student), json={"anything": 1})
    assert refused.status_code == 403 and await problem_code(refused) == "forbidden"
    await set_rows(probe_client.app, update(User).where(User.id == student["user"]["id"]).values(role="mentor"))
    allowed = await probe_client.post("/_probe/admin-only", headers=bearer(student))
    assert allowed.status_code == 200
