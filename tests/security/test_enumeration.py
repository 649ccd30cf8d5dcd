"""Account enumeration: login, password reset and resend-verification answer alike, in similar time,
whether or not the account exists. (Lockout after 5 failures, the per-IP limits, and the reset token's
single use and expiry are tested in tests/api/test_auth.py.)

Timing is compared as a ratio of medians of interleaved samples, with a wide tolerance: the point is to
catch a path that skips the password hash (≈50 ms at cost 10 against ≈1 ms), not to measure jitter.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.app import create_app
from tests.conftest import make_settings
from tests.helpers import register, unique_email

SAMPLES_PER_ACCOUNT = 4  # below the lockout (5 failures)
ACCOUNTS = 3
LOGIN_RATIO_BOUNDS = (0.5, 2.0)
EMAIL_FLOW_RATIO_BOUNDS = (1 / 3, 3.0)


@pytest.fixture
async def timing_app(sqlite_url: str) -> AsyncIterator[Quart]:
    # A real bcrypt cost, so skipping the hash would show; no rate limits, so every sample is a real attempt.
    application = create_app(make_settings(database_url=sqlite_url, bcrypt_rounds=10, rate_limits_enabled=False))
    async with application.test_app():
        yield application


async def timed(client: QuartClient, path: str, body: dict[str, Any]) -> tuple[float, int, Any]:
    started = time.perf_counter()
    response = await client.post(path, json=body)
    elapsed = time.perf_counter() - started
    return elapsed, response.status_code, await response.get_json()


def without_request_id(body: Any) -> Any:
    return {key: value for key, value in body.items() if key != "request_id"} if isinstance(body, dict) else body


async def compare(client: QuartClient, path: str, known: list[dict[str, Any]], unknown: list[dict[str, Any]]) -> float:
    """Interleave requests for existing and unknown accounts; answers must be identical. Returns the ratio
    of median times (unknown / known)."""
    known_times, unknown_times, answers = [], [], set()
    for known_body, unknown_body in zip(known, unknown, strict=True):
        for body, times in ((known_body, known_times), (unknown_body, unknown_times)):
            elapsed, status, answer = await timed(client, path, body)
            times.append(elapsed)
            answers.add((status, repr(without_request_id(answer))))
    assert len(answers) == 1, answers
    return statistics.median(unknown_times) / statistics.median(known_times)


async def test_login_answers_alike_for_unknown_email_and_wrong_password(timing_app: Quart) -> None:
    client = timing_app.test_client()
    emails = [(await register(client, unique_email()))["user"]["email"] for _ in range(ACCOUNTS)]
    known = [{"email": email, "password": "Wrong-password-123"} for email in emails for _ in range(SAMPLES_PER_ACCOUNT)]
    unknown = [{"email": unique_email(), "password": "Wrong-password-123"} for _ in known]
    ratio = await compare(client, "/api/v1/auth/login", known, unknown)
    assert LOGIN_RATIO_BOUNDS[0] < ratio < LOGIN_RATIO_BOUNDS[1], ratio


@pytest.mark.parametrize("path", ["/api/v1/auth/password-reset", "/api/v1/auth/resend-verification"])
async def test_email_flows_answer_alike_whether_or_not_the_account_exists(timing_app: Quart, path: str) -> None:
    client = timing_app.test_client()
    emails = [(await register(client, unique_email()))["user"]["email"] for _ in range(ACCOUNTS * 3)]
    known = [{"email": email} for email in emails]  # one each: 3 emails per address per hour
    unknown = [{"email": unique_email()} for _ in known]
    ratio = await compare(client, path, known, unknown)
    assert EMAIL_FLOW_RATIO_BOUNDS[0] < ratio < EMAIL_FLOW_RATIO_BOUNDS[1], ratio
