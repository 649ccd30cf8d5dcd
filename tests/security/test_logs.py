"""The logs of a whole session of use hold no password, token, secret, prompt or code.

A full flow runs against an app logging JSON at DEBUG (more than production's INFO): registration, a
failed and a good login, refresh, a profile edit, a chat with a real (fake) LLM provider behind an API
key, email verification, a password reset and change, logout. Every secret value that crossed the wire
is then looked for in everything written to the log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from backend.app import create_app
from tests.api.test_github import github_oauth, link, request_review, store_github_grant
from tests.api.test_reviews import wait_for_review
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.llm_servers import FakeOpenAI
from tests.fakes.oauth_providers import FakeGitHub
from tests.helpers import PASSWORD, bearer, link_token, register, unique_email, wait_for_email
from tests.servers import free_port

__all__ = ["github_oauth"]  # the fixture, shared with tests/api/test_github.py

NEW_PASSWORD = "Brand-new-Passw0rd!"
NEWER_PASSWORD = "Even-newer-Passw0rd?"
PROMPT = "My secret homework: def solve(): return 42  # please review"


@pytest.fixture
def fake_llm(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


async def test_logs_of_a_full_flow_contain_no_secret(
    sqlite_url: str, fake_llm: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database_url=sqlite_url,
        log_level="DEBUG",
        log_format="json",
        llm_provider="openai",
        llm_model=fake_llm.model,
        llm_base_url=fake_llm.sdk_base_url,
        llm_api_key=SecretStr(fake_llm.api_key),
    )
    app = create_app(settings)
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, NEWER_PASSWORD, TEST_SECRET_KEY, fake_llm.api_key, PROMPT]
    email = unique_email()

    def keep(payload: dict[str, Any]) -> dict[str, Any]:
        secrets.extend(payload[key] for key in ("access_token", "refresh_token", "csrf_token") if key in payload)
        return payload

    async with app.test_app():
        client = app.test_client()
        body = {"email": email, "password": PASSWORD, "name": "Log Reader"}
        keep(await (await client.post("/api/v1/auth/register", json=body)).get_json())
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD + "x"})
        tokens = keep(await (await client.post("/api/v1/auth/login", json=body)).get_json())
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        tokens = keep(await refreshed.get_json())
        await client.patch("/api/v1/users/me", json={"bio": "hello"}, headers=bearer(tokens))
        conversation = await (
            await client.post("/api/v1/chat/conversations", json={}, headers=bearer(tokens))
        ).get_json()
        sent = await client.post(
            f"/api/v1/chat/conversations/{conversation['id']}/messages",
            json={"content": PROMPT},
            headers=bearer(tokens),
        )
        assert sent.status_code == 201

        verification = link_token((await wait_for_email(app, email))[0])
        secrets.append(verification)
        assert (await client.post("/api/v1/auth/verify-email", json={"token": verification})).status_code == 200
        assert (await client.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 202
        reset = link_token((await wait_for_email(app, email, count=2))[-1])
        secrets.append(reset)
        confirm = {"token": reset, "new_password": NEW_PASSWORD}
        assert (await client.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 200
        tokens = keep(
            await (await client.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})).get_json()
        )
        change = {"current_password": NEW_PASSWORD, "new_password": NEWER_PASSWORD}
        tokens = keep(
            await (await client.post("/api/v1/auth/password/change", json=change, headers=bearer(tokens))).get_json()
        )
        assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 204

    output = capsys.readouterr().out
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) > 20 and any('"request.completed"' in line for line in lines)  # the log was captured
    for secret in secrets:
        assert secret and secret not in output, f"a secret of length {len(secret)} reached the log"
    assert "$2b$" not in output  # no password hash either


async def test_logs_of_a_github_review_and_its_publication_contain_no_code_or_token(
    sqlite_url: str, github_api: FakeGitHubAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub's answers carry the repository's code, and what is posted carries the review: PyGithub logs
    both at DEBUG (it masks only the Authorization header). Its package sets its logger to INFO when
    imported, which is all that kept them out; the app now holds it at WARNING like the other payload
    loggers, whatever level the library (a newer version, or its `enable_console_debug_logging`) chose."""
    github_api.reset()
    logging.getLogger("github").setLevel(logging.DEBUG)
    token = "gho_" + "Q9w8E7r6T5y4U3i2O1p0"
    code = "def private_helper_of_the_student(x):\n    return x * 4217\n"
    settings = make_settings(
        database_url=sqlite_url, log_level="DEBUG", log_format="json", github_api_url=github_api.base_url
    )
    app = create_app(settings)
    fake = github_api.add_repository("octo/private", private=True, readers={token})
    github_api.add_pull(fake, 5, "Helper", "ada", "helper", {"src/helper.py": code.encode()})
    async with app.test_app():
        client = app.test_client()
        tokens = await register(client)
        await store_github_grant(app, tokens["user"]["id"], token, "repo")
        repository = await link(client, bearer(tokens), "octo/private")
        queued = await (await request_review(client, bearer(tokens), repository["id"], pull_number=5)).get_json()
        review = await wait_for_review(client, bearer(tokens), queued["id"])
        assert review["status"] == "completed", review
        published = await client.post(f"/api/v1/github/reviews/{review['id']}/publish", headers=bearer(tokens))
        assert published.status_code == 200
    assert github_api.reviews  # posted

    output = capsys.readouterr().out
    assert '"review.published"' in output  # the log was captured
    secrets = [token, "private_helper_of_the_student", "x * 4217", "CodeMentor review"]
    secrets += [tokens[key] for key in ("access_token", "refresh_token", "csrf_token")]
    for secret in secrets:
        assert secret not in output, f"{secret[:12]}… reached the log"


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_a_logged_exception_carries_no_local_variable(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    """A traceback rendered with each frame's local variables put whatever the frames held into the log: the
    Settings (found from outside against `python -m backend`, when a registration's email could not be sent:
    its database_url and redis_url are plain strings, with their passwords in production), request bodies
    with passwords, the body of an email with its link. Tracebacks keep file, line and function only."""
    redis_password = "redis-password-" + uuid.uuid4().hex
    settings = make_settings(
        database_url=sqlite_url,
        log_format=log_format,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # nothing listens: the email fails after the answer, with a traceback
        redis_url=f"redis://:{redis_password}@127.0.0.1:{free_port()}/0",
    )
    app = create_app(settings)
    output = ""
    async with app.test_app():
        body = {"email": unique_email(), "password": PASSWORD, "name": "Log Reader"}
        assert (await app.test_client().post("/api/v1/auth/register", json=body)).status_code == 201
        for _ in range(100):
            output += capsys.readouterr().out
            if "ConnectionRefusedError" in output:
                break
            await asyncio.sleep(0.05)
    output += capsys.readouterr().out
    assert "ConnectionRefusedError" in output  # the failure was logged, with its traceback
    assert '"locals"' not in output and "│ settings" not in output
    for secret in (redis_password, PASSWORD, TEST_SECRET_KEY):
        assert secret not in output


async def test_logs_of_connecting_github_contain_no_code_state_verifier_or_token(
    sqlite_url: str, github_oauth: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """The connect flow at DEBUG: GitHub's code, the state, the PKCE verifier, the client secret and the
    token GitHub issued never reach the log, nor does the token when it is then used."""
    github_oauth.reset()
    settings = make_settings(
        database_url=sqlite_url,
        log_level="DEBUG",
        log_format="json",
        github_client_id=github_oauth.client_id,
        github_client_secret=SecretStr(github_oauth.client_secret),
        github_oauth_url=github_oauth.base_url,
        github_api_url=github_oauth.base_url,
    )
    app = create_app(settings)
    async with app.test_app():
        client = app.test_client()
        await register(client)
        authorize_url = (await client.get("/api/v1/github/connect")).headers["Location"]
        async with httpx.AsyncClient(timeout=5) as http:
            back = urlsplit((await http.get(authorize_url)).headers["location"])
        landing = await client.get(f"{back.path}?{back.query}")
        assert landing.headers["Location"].endswith("status=connected")
        assert (await (await client.get("/api/v1/github/connection")).get_json())["connected"] is True
    query = parse_qs(urlsplit(authorize_url).query)
    secrets = [query["state"][0], query["code_challenge"][0], parse_qs(back.query)["code"][0]]
    secrets += [github_oauth.client_secret, *github_oauth.issued_tokens]

    output = capsys.readouterr().out
    assert '"github.connected"' in output  # the log was captured
    for secret in secrets:
        assert secret and secret not in output, f"a secret of length {len(secret)} reached the log"
