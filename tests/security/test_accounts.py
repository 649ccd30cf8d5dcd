"""Accounts under attack: parallel password guessing, replayed email links, account probing by timing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
from quart import Quart, Response
from quart.testing import QuartClient
from sqlalchemy import select, update

from backend.models import User
from backend.services.auth import accounts, one_time
from tests.conftest import AppFactory
from tests.helpers import PASSWORD, bearer, link_token, login, outbox, register, unique_email, wait_for_email
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
    verify = accounts.verify_password

    async def counting_verify(password: str, stored: str) -> bool:
        nonlocal hashes
        hashes += 1
        return await verify(password, stored)

    monkeypatch.setattr(accounts, "verify_password", counting_verify)
    responses = await asyncio.gather(
        *(client.post(f"{AUTH}/login", json={"email": email, "password": f"Wrong-password-{n}!"}) for n in range(40))
    )
    codes = sorted([problem_code(await response.get_json()) for response in responses])
    assert codes == ["account_locked"] * 35 + ["invalid_credentials"] * 5
    assert hashes == 5
    right = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert right.status_code == 429 and problem_code(await right.get_json()) == "account_locked"
    assert hashes == 5


async def reset_link(app: Quart, email: str, count: int) -> str:
    mails = [mail for mail in await wait_for_email(app, email, count=count + 1) if "reset" in mail.subject.lower()]
    assert len(mails) == count
    return link_token(mails[-1])


async def confirm(client: QuartClient, token: str, password: str) -> Response:
    return await client.post(f"{AUTH}/password-reset/confirm", json={"token": token, "new_password": password})


async def test_reset_links_die_when_a_newer_one_is_sent_or_a_reset_completes(app: Quart, client: QuartClient) -> None:
    email = (await register(client))["user"]["email"]
    await client.post(f"{AUTH}/password-reset", json={"email": email})
    first = await reset_link(app, email, 1)
    await client.post(f"{AUTH}/password-reset", json={"email": email})
    second = await reset_link(app, email, 2)
    stale = await confirm(client, first, "Brand-new-pass-42")
    assert stale.status_code == 400 and problem_code(await stale.get_json()) == "token_invalid"
    assert (await confirm(client, second, "Brand-new-pass-42")).status_code == 200
    await login(client, email, "Brand-new-pass-42")

    # A completed reset also kills links that were still outstanding (a race between two requests).
    await client.post(f"{AUTH}/password-reset", json={"email": email})
    third = await reset_link(app, email, 3)
    async with app.extensions["db_session_factory"]() as session:  # a link issued alongside, as a race would
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        parallel = await one_time.create_one_time_token(session, user, "password_reset", timedelta(hours=1))
        await session.commit()
    assert (await confirm(client, third, "Third-new-pass-42")).status_code == 200
    replay = await confirm(client, parallel, "Attacker-pass-42")
    assert replay.status_code == 400 and problem_code(await replay.get_json()) == "token_invalid"
    await login(client, email, "Third-new-pass-42")


async def test_changing_the_password_kills_outstanding_reset_links(app: Quart, client: QuartClient) -> None:
    """Whoever asked for a reset link (or read it in the mailbox) must not keep a way in for an hour after
    the owner changed the password, signed in, because something looked wrong."""
    tokens = await register(client)
    email = tokens["user"]["email"]
    await client.post(f"{AUTH}/password-reset", json={"email": email})
    outstanding = await reset_link(app, email, 1)
    change = {"current_password": PASSWORD, "new_password": "Owner-changed-it-42"}
    changed = await client.post(f"{AUTH}/password/change", json=change, headers=bearer(tokens))
    assert changed.status_code == 200
    taken = await confirm(client, outstanding, "Attacker-pass-42")
    assert taken.status_code == 400 and problem_code(await taken.get_json()) == "token_invalid"
    await login(client, email, "Owner-changed-it-42")


async def test_used_verification_link_answers_without_user_data(app: Quart, client: QuartClient) -> None:
    tokens = await register(client)
    [mail] = await wait_for_email(app, tokens["user"]["email"])
    first = await client.post(f"{AUTH}/verify-email", json={"token": link_token(mail)})
    assert (await first.get_json())["user"]["email_verified"] is True
    for _ in range(2):
        again = await client.post(f"{AUTH}/verify-email", json={"token": link_token(mail)})
        body = await again.get_json()
        assert again.status_code == 200 and set(body) == {"message"} and "already" in body["message"]


async def test_a_disabled_account_s_verification_link_answers_without_user_data(
    app: Quart, client: QuartClient
) -> None:
    """A disabled account is refused everywhere with 403 `account_disabled`; its verification link answered
    with the account's data (email, name, settings) to whoever held the link."""
    tokens = await register(client)
    email = tokens["user"]["email"]
    [mail] = await wait_for_email(app, email)
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(User).where(User.email == email).values(is_active=False))
        await session.commit()
    answer = await client.post(f"{AUTH}/verify-email", json={"token": link_token(mail)})
    assert answer.status_code == 403 and problem_code(await answer.get_json()) == "account_disabled"
    assert email not in json.dumps(await answer.get_json())


async def test_resend_verification_is_202_always_and_sends_three_emails_an_hour(
    app: Quart, client: QuartClient
) -> None:
    email = (await register(client))["user"]["email"]
    answers = [await client.post(f"{AUTH}/resend-verification", json={"email": email}) for _ in range(5)]
    answers += [await client.post(f"{AUTH}/resend-verification", json={"email": unique_email()}) for _ in range(5)]
    assert {answer.status_code for answer in answers} == {202}
    assert len({json.dumps(await answer.get_json()) for answer in answers}) == 1
    await asyncio.gather(*app.background_tasks)
    assert len([mail for mail in outbox(app) if mail.to == email]) == 3  # registration's included


async def test_password_reset_timing_does_not_tell_registered_from_unknown_addresses(make_app: AppFactory) -> None:
    """An attacker compares pairs of requests: before the fix a registered address was slower in 14 of 15.
    Now which of the two is slower is a coin toss (bounds: a fair coin leaves them 1 time in 200)."""
    app = await make_app(rate_limits_enabled=False)
    client = app.test_client()
    registered = [(await register(client))["user"]["email"] for _ in range(3)]

    async def timed(address: str) -> float:
        started = time.perf_counter()
        response = await client.post(f"{AUTH}/password-reset", json={"email": address})
        elapsed = time.perf_counter() - started
        assert response.status_code == 202
        await asyncio.gather(*app.background_tasks)  # the email's work must not slow the next request
        return elapsed

    pairs = 30
    registered_slower = 0
    for number in range(pairs):
        registered_slower += await timed(registered[number % 3]) > await timed(unique_email())
    assert 7 <= registered_slower <= 23, registered_slower
