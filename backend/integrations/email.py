"""Sending email: `console` (development: printed, never logged), `smtp`, or `memory` (tests read an outbox)."""

from __future__ import annotations

import asyncio
import smtplib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import structlog

from backend.config import Settings

SMTP_TIMEOUT_SECONDS = 20

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


class EmailSender(ABC):
    backend: str

    @abstractmethod
    async def send(self, email: Email) -> None: ...


class ConsoleEmail(EmailSender):
    """Development: the message goes to stdout for the developer to click, not into the structured log
    (its links carry one-time tokens, and logs must never hold tokens)."""

    backend = "console"

    async def send(self, email: Email) -> None:
        print(f"\n--- email to {email.to}: {email.subject}\n{email.body}\n---", file=sys.stdout, flush=True)
        log.info("email.sent", backend=self.backend, subject=email.subject)


class MemoryEmail(EmailSender):
    backend = "memory"

    def __init__(self) -> None:
        self.outbox: list[Email] = []

    async def send(self, email: Email) -> None:
        self.outbox.append(email)


class SMTPEmail(EmailSender):
    backend = "smtp"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, email: Email) -> None:
        message = EmailMessage()
        message["From"] = self._settings.email_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = make_msgid(domain="codementor")
        message.set_content(email.body)
        await asyncio.to_thread(self._deliver, message)
        log.info("email.sent", backend=self.backend, subject=email.subject)

    def _deliver(self, message: EmailMessage) -> None:
        settings = self._settings
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)


def create_email_sender(settings: Settings) -> EmailSender:
    if settings.email_backend == "smtp":
        return SMTPEmail(settings)
    if settings.email_backend == "memory":
        return MemoryEmail()
    return ConsoleEmail()
