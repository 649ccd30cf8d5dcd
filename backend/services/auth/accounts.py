"""Accounts: registration, signing in with a password (and its lockout), administrators, and verified
email addresses."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cache import Cache
from backend.config import Settings
from backend.db import utcnow
from backend.errors import BadRequest
from backend.integrations.email import Email
from backend.models import OneTimeToken, User
from backend.security import DummyHash, hash_password, token_digest, verify_password
from backend.services.auth.errors import AccountDisabled, AccountLocked, EmailTaken, InvalidCredentials
from backend.services.auth.one_time import create_one_time_token, redeem
from backend.services.auth.sessions import Client, IssuedTokens, start_session

MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 15 * 60
VERIFY_EMAIL_TTL = timedelta(hours=24)
EMAILS_PER_ADDRESS_PER_HOUR = 3

log = structlog.get_logger(__name__)
security_log = structlog.get_logger("backend.security")


def normalise_email(email: str) -> str:
    return email.strip().lower()


# --- registration and login ------------------------------------------------------------------------


async def register(
    session: AsyncSession, settings: Settings, cache: Cache, *, email: str, password: str, name: str, client: Client
) -> tuple[User, IssuedTokens, Email]:
    email = normalise_email(email)
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    user = User(email=email, name=name, password_hash=await hash_password(password, settings.bcrypt_rounds))
    user.last_login_at = utcnow()
    session.add(user)
    await session.flush()
    tokens = await start_session(session, settings, user, client)
    await cache.incr(_verification_counter(email), 3600)  # the registration email counts toward 3/hour
    verification = await _verification_email(session, settings, user)
    log.info("auth.registered", user_id=user.id)
    return user, tokens, verification


async def login(
    session: AsyncSession, settings: Settings, cache: Cache, *, email: str, password: str, client: Client
) -> tuple[User, IssuedTokens]:
    email = normalise_email(email)
    # Failures are counted per address, whether or not an account has it, so lockout reveals nothing.
    # Each attempt is counted *before* its password is checked (one atomic increment, undone by a success):
    # parallel guesses cannot all pass a check-then-act test, and the ones past the limit cost no hash.
    address = token_digest(email)
    locked_until = await cache.get(f"login:locked:{address}")
    if locked_until is not None and float(locked_until) > time.time():
        raise AccountLocked(headers={"Retry-After": str(max(1, int(float(locked_until) - time.time())))})
    attempts = await cache.incr(f"login:failures:{address}", LOCKOUT_SECONDS)
    if attempts > MAX_FAILED_LOGINS:
        security_log.warning("auth.login_refused_locked", ip=client.ip, attempts=attempts)
        raise AccountLocked(headers={"Retry-After": str(LOCKOUT_SECONDS)})

    user = await session.scalar(select(User).where(User.email == email))
    stored_hash = user.password_hash if user is not None and user.password_hash else None
    # Unknown emails and OAuth-only accounts are checked against a dummy hash: same answer, same time.
    is_valid = await verify_password(password, stored_hash or DummyHash.get(settings.bcrypt_rounds))
    if user is None or stored_hash is None or not is_valid:
        security_log.warning("auth.login_failed", user_id=user.id if user else None, ip=client.ip)
        if attempts >= MAX_FAILED_LOGINS:
            await cache.set(f"login:locked:{address}", str(time.time() + LOCKOUT_SECONDS), ttl=LOCKOUT_SECONDS)
            security_log.warning("auth.account_locked", user_id=user.id if user else None, ip=client.ip)
        raise InvalidCredentials()
    if not user.is_active:
        raise AccountDisabled()

    await cache.delete(f"login:failures:{address}")
    user.last_login_at = utcnow()
    tokens = await start_session(session, settings, user, client)
    log.info("auth.logged_in", user_id=user.id, session_id=tokens.session_id)
    return user, tokens


async def ensure_admin(
    session: AsyncSession, settings: Settings, *, email: str, name: str, password: str | None
) -> bool:
    """Make `email` an administrator: promote the account, or create it (a password is then required).
    Returns whether an account was created."""
    email = normalise_email(email)
    user = await session.scalar(select(User).where(User.email == email))
    created = user is None
    if user is None:
        if password is None:
            raise BadRequest("A password is needed to create a new administrator account.")
        user = User(
            email=email,
            name=name,
            email_verified=True,
            password_hash=await hash_password(password, settings.bcrypt_rounds),
        )
        session.add(user)
    elif password is not None:
        user.password_hash = await hash_password(password, settings.bcrypt_rounds)
    user.role = "admin"
    await session.flush()
    security_log.info("auth.admin_granted", user_id=user.id)
    return created


# --- email verification ----------------------------------------------------------------------------


def _verification_counter(email: str) -> str:
    return f"email:verify:{token_digest(email)}"


async def _verification_email(session: AsyncSession, settings: Settings, user: User) -> Email:
    token = await create_one_time_token(session, user, "verify_email", VERIFY_EMAIL_TTL)
    return Email(
        to=user.email,
        subject="Confirm your email for CodeMentor",
        body=(
            f"Hi {user.name},\n\nWelcome to CodeMentor! Confirm your email address here "
            f"(the link works for 24 hours):\n\n{settings.frontend_url}/verify-email?token={token}\n"
        ),
    )


async def resend_verification(session: AsyncSession, settings: Settings, cache: Cache, *, email: str) -> Email | None:
    email = normalise_email(email)
    user = await session.scalar(select(User).where(User.email == email))
    if user is None or user.email_verified:
        return None
    if await cache.incr(_verification_counter(email), 3600) > EMAILS_PER_ADDRESS_PER_HOUR:
        return None
    return await _verification_email(session, settings, user)


async def verify_email(session: AsyncSession, *, token: str) -> User | None:
    """Mark the address verified and return its user; None for a link used before (clicked twice): a
    used link proves nothing about who holds it now, so it gets no user data. 403 for a disabled account."""
    one_time = await session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_hash == token_digest(token), OneTimeToken.purpose == "verify_email"
        )
    )
    if one_time is not None and one_time.used_at is not None:
        verified = await session.scalar(select(User.email_verified).where(User.id == one_time.user_id))
        if verified:
            return None
    one_time = await redeem(session, token, "verify_email")
    user = await session.get_one(User, one_time.user_id)
    if not user.is_active:  # refused like everywhere else, and never with the account's data
        raise AccountDisabled()
    user.email_verified = True
    return user
