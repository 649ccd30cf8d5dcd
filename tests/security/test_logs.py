"""The logs of a whole session of use hold no password, token, secret, prompt or code.

A full flow runs against an app logging JSON at DEBUG (more than production's INFO): registration, a
failed and a good login, refresh, a profile edit, a chat with a real (fake) LLM provider behind an API
key, email verification, a password reset and change, logout. Every secret value that crossed the wire
is then looked for in everything written to the log.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from backend.app import create_app
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.fakes.llm_servers import FakeOpenAI
from tests.helpers import PASSWORD, bearer, link_token, unique_email, wait_for_email

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
