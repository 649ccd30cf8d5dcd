"""Plain factory functions for tests: accounts made through the real API."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from quart import Quart
from quart.testing import QuartClient

from backend.integrations.email import Email

PASSWORD = "Correct-horse-9-battery"
_numbers = itertools.count(1)


def unique_email() -> str:
    return f"student{next(_numbers)}@example.com"


async def register(
    client: QuartClient, email: str | None = None, password: str = PASSWORD, name: str = "Ada Lovelace"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email or unique_email(), "password": password, "name": name}
    )
    assert response.status_code == 201, await response.get_json()
    return await response.get_json()


async def login(client: QuartClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


def bearer(token_payload: dict[str, Any] | str) -> dict[str, str]:
    token = token_payload if isinstance(token_payload, str) else token_payload["access_token"]
    return {"Authorization": f"Bearer {token}"}


def outbox(app: Quart) -> list[Email]:
    return app.extensions["email"].outbox


async def wait_for_email(app: Quart, to: str, count: int = 1, seconds: float = 3) -> list[Email]:
    """Emails leave after the transaction commits, in the background: wait for them to arrive."""
    for _ in range(int(seconds / 0.02)):
        sent = [email for email in outbox(app) if email.to == to]
        if len(sent) >= count:
            return sent
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} email(s) to {to}, got {[e.subject for e in outbox(app)]}")


def link_token(email: Email) -> str:
    return email.body.split("?token=", 1)[1].split()[0]
