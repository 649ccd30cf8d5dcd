"""Hostile input: SQL injection strings, HTML in plain-text fields, oversized fields, undecodable bodies.

SQL injection strings go into every query parameter of the OpenAPI document (so new ones are covered)
and into the text fields of bodies; they must come back as the same characters, stored as data, and no
answer may be a 5xx. Plain-text fields lose their HTML; code keeps every character. (PATCH /users/me's
stripping is tested field by field in tests/api/test_users.py; the 1 MiB body limit in test_errors.py.)
"""

from __future__ import annotations

from quart import Quart
from quart.testing import QuartClient

from tests.api.test_exercises import add_exercise
from tests.helpers import PASSWORD, bearer, register, unique_email
from tests.security.support import new_account, problem_code

INJECTIONS = (
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(5) --",
    "%' UNION SELECT password_hash, email FROM users --",
    "\\'; DELETE FROM auth_sessions WHERE '1'='1",
)
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CODE_WITH_MARKUP = 'def render():\n    return "<script>alert(\'x\')</script>" if 1 < 2 else "&amp;"\n'


async def test_sql_injection_in_every_query_parameter_is_data(app: Quart, client: QuartClient) -> None:
    account = await new_account(client)
    spec = await (await client.get("/openapi.json")).get_json()
    checked = 0
    for path, operations in spec["paths"].items():
        if "{" in path or "get" not in operations:
            continue
        names = [p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"]
        for name in names:
            for payload in INJECTIONS:
                response = await client.get(path, query_string={name: payload}, headers=account.headers)
                assert response.status_code < 500, (path, name, payload, await response.get_data(as_text=True))
            checked += 1
    assert checked >= 10
    me = await client.get("/api/v1/users/me", headers=account.headers)  # the users table and the session live
    assert me.status_code == 200


async def test_sql_injection_in_text_fields_is_stored_verbatim(app: Quart, client: QuartClient) -> None:
    for number, payload in enumerate(INJECTIONS):
        email = unique_email()
        registered = await client.post(  # each from its own address: registration is limited per IP
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "name": payload},
            scope_base={"client": (f"10.9.0.{number}", 1000)},
        )
        tokens = await registered.get_json()
        headers = bearer(tokens)
        assert tokens["user"]["name"] == payload
        profile = await client.patch(
            "/api/v1/users/me", json={"bio": payload, "career_goals": payload}, headers=headers
        )
        assert (await profile.get_json())["bio"] == payload
        conversation = await client.post("/api/v1/chat/conversations", json={"title": payload}, headers=headers)
        assert (await conversation.get_json())["title"] == payload
        message = await client.post(
            f"/api/v1/chat/conversations/{(await conversation.get_json())['id']}/messages",
            json={"content": payload},
            headers=headers,
        )
        assert (await message.get_json())["user_message"]["content"] == payload
        address = {"client": (f"10.9.1.{number}", 1000)}
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": payload, "password": payload}, scope_base=address
        )
        assert wrong.status_code in (401, 422)
        right = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}, scope_base=address)
        assert right.status_code == 200


async def test_code_keeps_every_character_including_markup(app: Quart, client: QuartClient) -> None:
    account = await new_account(client)
    exercise_id = await add_exercise(app)
    submitted = await client.post(
        f"/api/v1/exercises/{exercise_id}/submit", json={"code": CODE_WITH_MARKUP}, headers=account.headers
    )
    assert submitted.status_code == 200
    export = await (await client.get("/api/v1/users/me/export", headers=account.headers)).get_json()
    assert [item["code"] for item in export["submissions"]] == [CODE_WITH_MARKUP]
    conversation = await client.post("/api/v1/chat/conversations", json={}, headers=account.headers)
    message = await client.post(
        f"/api/v1/chat/conversations/{(await conversation.get_json())['id']}/messages",
        json={"content": f"Why does this fail?\n```python\n{CODE_WITH_MARKUP}```"},
        headers=account.headers,
    )
    assert CODE_WITH_MARKUP in (await message.get_json())["user_message"]["content"]  # code in a message is code


async def test_html_is_stripped_from_profile_text(client: QuartClient) -> None:
    account = await new_account(client)
    response = await client.patch(
        "/api/v1/users/me", json={"name": f"Ada{SCRIPT}", "bio": f"<b>Hi</b>{SCRIPT}"}, headers=account.headers
    )
    body = await response.get_json()
    assert body["name"] == "Ada" and body["bio"] == "Hi"


async def test_html_is_stripped_from_name_at_registration(client: QuartClient) -> None:
    tokens = await register(client, unique_email(), name=f"Ada{SCRIPT}")
    assert tokens["user"]["name"] == "Ada"


async def test_html_is_stripped_from_conversation_titles(client: QuartClient) -> None:
    account = await new_account(client)
    response = await client.post(
        "/api/v1/chat/conversations", json={"title": f"Loops{SCRIPT}"}, headers=account.headers
    )
    assert (await response.get_json())["title"] == "Loops"


ENCODED_MARKUP = (
    "&lt;img src=x onerror=alert(1)&gt;",
    "&amp;lt;img src=x onerror=alert(1)&amp;gt;",  # encoded twice
    "&#60;svg onload=alert(1)&#x3e;",
    "&lt;scr<b>ipt&gt;alert(1)&lt;/script&gt;",
)


async def test_entity_encoded_markup_never_comes_out_live(client: QuartClient) -> None:
    account = await new_account(client)
    for markup in ENCODED_MARKUP:
        profile = await client.patch(
            "/api/v1/users/me", json={"name": f"Ada{markup}", "bio": f"Hi {markup}"}, headers=account.headers
        )
        conversation = await client.post(
            "/api/v1/chat/conversations", json={"title": f"Loops{markup}"}, headers=account.headers
        )
        stored = await profile.get_json(), await conversation.get_json()
        texts = [stored[0]["name"], stored[0]["bio"], stored[1]["title"]]
        assert all("<" not in text and "onerror" not in text and "onload" not in text for text in texts), texts
    untitled = await client.post("/api/v1/chat/conversations", json={}, headers=account.headers)
    conversation_id = (await untitled.get_json())["id"]
    await client.post(  # an untitled conversation is named after its first message
        f"/api/v1/chat/conversations/{conversation_id}/messages",
        json={"content": f"{ENCODED_MARKUP[0]} why?"},
        headers=account.headers,
    )
    title = (
        await (await client.get(f"/api/v1/chat/conversations/{conversation_id}", headers=account.headers)).get_json()
    )["title"]
    assert title == "why?"
    plain = await client.patch("/api/v1/users/me", json={"bio": "a < b && c > d"}, headers=account.headers)
    assert (await plain.get_json())["bio"] == "a < b && c > d"  # plain text keeps its characters


async def test_fields_over_their_limit_are_422(app: Quart, client: QuartClient) -> None:
    account = await new_account(client)
    exercise_id = await add_exercise(app)
    conversation = await (await client.post("/api/v1/chat/conversations", json={}, headers=account.headers)).get_json()
    for method, path, body, field in [
        ("POST", f"/api/v1/exercises/{exercise_id}/submit", {"code": "x" * 50_001}, "code"),
        ("POST", f"/api/v1/chat/conversations/{conversation['id']}/messages", {"content": "x" * 5001}, "content"),
        ("PATCH", "/api/v1/users/me", {"name": "x" * 101}, "name"),
        ("POST", "/api/v1/chat/conversations", {"title": "x" * 201}, "title"),
        ("POST", "/api/v1/auth/register", {"email": unique_email(), "password": "Aa1!" * 40, "name": "A"}, "password"),
    ]:
        response = await client.open(path, method=method, json=body, headers=account.headers)
        problem = await response.get_json()
        assert response.status_code == 422, (path, problem)
        assert problem_code(problem) == "validation_error" and problem["errors"][0]["field"] == field
        assert "x" * 100 not in str(problem)  # the input is never echoed


async def test_body_that_is_not_utf8_is_400_invalid_json(client: QuartClient) -> None:
    account = await new_account(client)
    response = await client.post(
        "/api/v1/chat/conversations",
        data=b"\xe9\xff{",
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and problem_code(await response.get_json()) == "invalid_json"


async def test_nul_characters_are_422_naming_the_field_on_every_stack(app: Quart, client: QuartClient) -> None:
    """PostgreSQL text cannot hold U+0000: refused up front, never a database error (a 500)."""
    account = await new_account(client)
    exercise_id = await add_exercise(app)
    conversation = await (await client.post("/api/v1/chat/conversations", json={}, headers=account.headers)).get_json()
    for method, path, body, field in [
        ("POST", f"/api/v1/chat/conversations/{conversation['id']}/messages", {"content": "hi\x00there"}, "content"),
        ("POST", "/api/v1/chat/message", {"message": "\x00"}, "message"),
        ("POST", f"/api/v1/exercises/{exercise_id}/submit", {"code": "x = '\x00'"}, "code"),
        ("PUT", "/api/v1/users/onboarding", {"career_goals": "a\x00b"}, "career_goals"),
    ]:
        response = await client.open(path, method=method, json=body, headers=account.headers)
        problem = await response.get_json()
        assert response.status_code == 422, (path, problem)
        assert problem["errors"] == [{"field": field, "message": "Must not contain the NUL character (U+0000)"}]
    listed = await client.get("/api/v1/exercises", query_string={"language": "py\x00"}, headers=account.headers)
    assert listed.status_code == 422 and (await listed.get_json())["errors"][0]["field"] == "language"


async def test_json_nested_too_deep_is_400_not_a_crash(embedded_client: QuartClient) -> None:
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        response = await embedded_client.post(
            "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400 and problem_code(await response.get_json()) == "invalid_json"
    deep_nul = '{"email": ' + "[" * 900 + '"\\u0000"' + "]" * 900 + "}"  # as deep as the parser allows
    response = await embedded_client.post(
        "/api/v1/auth/login", data=deep_nul, headers={"Content-Type": "application/json"}
    )
    problem = await response.get_json()
    assert response.status_code == 422 and problem["errors"][0]["field"] == "email" + ".0" * 900
