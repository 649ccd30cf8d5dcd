"""Emails reach a real SMTP server (aiosmtpd on 127.0.0.1): verification and reset links arrive."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from quart import Quart

from backend.app import create_app
from backend.config import Settings
from tests.helpers import PASSWORD, unique_email


class Sink:
    """An SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
async def smtp_app(stack_settings: Settings, smtp_sink: tuple[Sink, int]) -> AsyncIterator[Quart]:
    settings = stack_settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_sink[1],
            "smtp_starttls": False,
            "email_from": "CodeMentor <hello@codementor.test>",
        }
    )
    app = create_app(settings)
    async with app.test_app():
        yield app


async def received(sink: Sink, to: str, count: int) -> list[Message]:
    for _ in range(150):
        messages = [message for message in sink.messages if message["To"] == to]
        if len(messages) >= count:
            return messages
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} email(s) to {to} never arrived")


def token_in(message: Message) -> str:
    body = message.get_payload(decode=True).decode()
    return body.split("?token=", 1)[1].split()[0]


async def test_verification_and_reset_emails_arrive_over_smtp(smtp_app: Quart, smtp_sink: tuple[Sink, int]) -> None:
    sink, _ = smtp_sink
    client = smtp_app.test_client()
    email = unique_email()
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Grace"})
    [verification] = await received(sink, email, 1)
    assert verification["From"] == "CodeMentor <hello@codementor.test>"
    assert "Confirm your email" in verification["Subject"]
    verified = await client.post("/api/v1/auth/verify-email", json={"token": token_in(verification)})
    assert verified.status_code == 200 and (await verified.get_json())["user"]["email_verified"] is True

    await client.post("/api/v1/auth/password-reset", json={"email": email})
    reset = (await received(sink, email, 2))[1]
    assert "http://localhost:5173/reset-password?token=" in reset.get_payload(decode=True).decode()
    confirmed = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token_in(reset), "new_password": "Fresh-password-77"}
    )
    assert confirmed.status_code == 200


async def test_unreachable_smtp_server_does_not_fail_registration(stack_settings: Settings) -> None:
    app = create_app(
        stack_settings.model_copy(
            update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": 1, "smtp_starttls": False}
        )
    )
    async with app.test_app():
        response = await app.test_client().post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD, "name": "Grace"}
        )
        assert response.status_code == 201  # the account exists; the email failure is logged, not the user's
