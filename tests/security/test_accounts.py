"""Accounts under attack: parallel password guessing, replayed email links, account probing by timing."""

from __future__ import annotations

import asyncio

import pytest
from quart.testing import QuartClient

from backend.services import auth as auth_service
from tests.conftest import AppFactory
from tests.helpers import PASSWORD, register, unique_email
from tests.security.support import problem_code

AUTH = "/api/v1/auth"


async def test_parallel_wrong_passwords_are_refused_before_any_hash_past_the_fifth(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app(rate_limits_enabled=False)  # the lockout alone, without the per-IP limit
    client = app.test_client()
    email = unique_email()
    await register(client, email)
    hashes = 0
    verify = auth_service.verify_password

    async def counting_verify(password: str, stored: str) -> bool:
        nonlocal hashes
        hashes += 1
        return await verify(password, stored)

    monkeypatch.setattr(auth_service, "verify_password", counting_verify)
    responses = await asyncio.gather(
        *(client.post(f"{AUTH}/login", json={"email": email, "password": f"Wrong-password-{n}!"}) for n in range(40))
    )
    codes = sorted([problem_code(await response.get_json()) for response in responses])
    assert codes == ["account_locked"] * 35 + ["invalid_credentials"] * 5
    assert hashes == 5
    right = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert right.status_code == 429 and problem_code(await right.get_json()) == "account_locked"
    assert hashes == 5
