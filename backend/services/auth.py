"""Accounts and sessions: registration, login, refresh-token rotation, revocation, email tokens.

A session (`AuthSession`) is one signed-in device. It holds a family of refresh tokens: each refresh
rotates the token, and presenting a rotated one again means it was stolen, so the whole session dies.

Revocation is written to the database, the truth, and the session row is the revocation check: every
authenticated request reads it in the one query that also loads the user (`authenticate`), so a
revoked access token stops working on the very next request, on every worker, and a cache outage
cannot let it through (fail closed). It is deliberately not a cache lookup (docs/PERFORMANCE.md,
"Revocation"); if reads ever move to a replica, authentication must still read the primary.
`revoke_sessions` also writes a `session:<id>` marker to the cache, which nothing reads any more: it
goes when its callers stop passing the cache.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, RowMapping, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from backend.cache import Cache
from backend.config import Settings
from backend.db import UTCDateTime
from backend.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from backend.integrations.email import Email
from backend.models import AuthSession, OneTimeToken, RefreshToken, User
from backend.security import (
    AccessClaims,
    DummyHash,
    create_access_token,
    hash_password,
    new_csrf_token,
    new_opaque_token,
    token_digest,
    verify_password,
)

MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 15 * 60
VERIFY_EMAIL_TTL = timedelta(hours=24)
PASSWORD_RESET_TTL = timedelta(hours=1)
OAUTH_EXCHANGE_TTL = timedelta(seconds=60)
EMAILS_PER_ADDRESS_PER_HOUR = 3
REVOKED = "revoked"

log = structlog.get_logger(__name__)
security_log = structlog.get_logger("backend.security")


class EmailTaken(Conflict):
    code, detail = "email_taken", "An account with this email already exists."


class InvalidCredentials(Unauthorized):
    code, detail = "invalid_credentials", "The email or password is incorrect."


class AccountDisabled(Forbidden):
    code, detail = "account_disabled", "This account has been disabled."


class AccountLocked(RateLimited):
    code, detail = "account_locked", "Too many failed sign-ins; try again later."


class TokenReused(Unauthorized):
    code, detail = "token_reused", "This refresh token was already used; the session has been ended."
    keep_changes = True  # the revocation must stick although the answer is an error


class AccessTokenExpired(Unauthorized):
    code, detail = "token_expired", "The access token has expired; refresh it."


class InvalidPassword(BadRequest):
    code, detail = "invalid_password", "The current password is incorrect."


class OneTimeTokenInvalid(BadRequest):
    code, detail = "token_invalid", "This link or code is not valid."


class OneTimeTokenExpired(BadRequest):
    code, detail = "token_expired", "This link or code has expired."


@dataclass(frozen=True)
class Client:
    """Who is calling, as recorded on a session."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    csrf_token: str
    expires_in: int
    session_id: int


def now() -> datetime:
    return datetime.now(UTC)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def session_cache_key(session_id: int) -> str:
    return f"session:{session_id}"


# --- registration and login ------------------------------------------------------------------------


async def register(
    session: AsyncSession, settings: Settings, cache: Cache, *, email: str, password: str, name: str, client: Client
) -> tuple[User, IssuedTokens, Email]:
    email = normalise_email(email)
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    user = User(email=email, name=name, password_hash=await hash_password(password, settings.bcrypt_rounds))
    user.last_login_at = now()
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
    user.last_login_at = now()
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


async def start_session(session: AsyncSession, settings: Settings, user: User, client: Client) -> IssuedTokens:
    started = now()
    auth_session = AuthSession(
        user_id=user.id,
        ip=client.ip,
        user_agent=(client.user_agent or "")[:300] or None,
        created_at=started,
        last_used_at=started,
        expires_at=started + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    session.add(auth_session)
    await session.flush()
    return await _issue_tokens(session, settings, user, auth_session)


async def _issue_tokens(
    session: AsyncSession, settings: Settings, user: User, auth_session: AuthSession
) -> IssuedTokens:
    refresh_token = new_opaque_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=token_digest(refresh_token)))
    await session.flush()
    return IssuedTokens(
        access_token=create_access_token(settings, user.id, auth_session.id),
        refresh_token=refresh_token,
        csrf_token=new_csrf_token(),
        expires_in=settings.access_token_ttl_seconds,
        session_id=auth_session.id,
    )


# --- refresh, authentication and revocation --------------------------------------------------------


async def refresh(
    session: AsyncSession, settings: Settings, cache: Cache, *, refresh_token: str, client: Client
) -> tuple[User, IssuedTokens]:
    row = (
        await session.execute(
            select(RefreshToken, AuthSession, User)
            .join(AuthSession, RefreshToken.session_id == AuthSession.id)
            .join(User, AuthSession.user_id == User.id)
            .where(RefreshToken.token_hash == token_digest(refresh_token))
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("The refresh token is not valid.")
    token, auth_session, user = row
    moment = now()
    if auth_session.revoked_at is not None or auth_session.expires_at <= moment:
        raise Unauthorized("The session has ended; sign in again.")

    # Claim the token atomically: of two concurrent refreshes with one token, exactly one wins.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=moment)
    )
    if cast(CursorResult[Any], claimed).rowcount != 1:
        await revoke_sessions(session, settings, cache, user.id, session_ids=[auth_session.id], reason="token_reused")
        security_log.warning("auth.refresh_token_reused", user_id=user.id, session_id=auth_session.id, ip=client.ip)
        raise TokenReused()
    if not user.is_active:
        await revoke_sessions(session, settings, cache, user.id, reason="account_disabled")
        raise AccountDisabled()

    auth_session.last_used_at = moment
    auth_session.ip = client.ip
    return user, await _issue_tokens(session, settings, user, auth_session)


# The user behind an access token, if its session is alive: one Core statement built once (building a
# select per request costs more than running it), every column of `users`, no ORM session.
ALIVE_SESSION_USER = (
    select(*User.__table__.columns)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now", type_=UTCDateTime()),
    )
)


def detached_user(row: Mapping[str, Any] | RowMapping) -> User:
    """A `User` from a row of every column, as if loaded and then detached: adding it to a session later
    makes it persistent without a query, and changes to it are then flushed as usual."""
    user = User.__mapper__.class_manager.new_instance()
    user.__dict__.update(row)
    make_transient_to_detached(user)
    return user


async def authenticate(engine: AsyncEngine, claims: AccessClaims) -> User:
    """The user behind a verified access token, if its session is still alive (not revoked, not expired).

    `engine` should not wrap the read in a transaction (AUTOCOMMIT on PostgreSQL): one round trip."""
    values = {"user_id": claims.user_id, "session_id": claims.session_id, "now": now()}
    async with engine.connect() as connection:
        row = (await connection.execute(ALIVE_SESSION_USER, values)).mappings().first()
    if row is None:
        raise Unauthorized("The session has ended; sign in again.")
    user = detached_user(row)
    if not user.is_active:
        raise AccountDisabled()
    return user


async def revoke_sessions(
    session: AsyncSession,
    settings: Settings,
    cache: Cache,
    user_id: int,
    *,
    reason: str,
    session_ids: list[int] | None = None,
    keep_session_id: int | None = None,
) -> list[int]:
    """End sessions of `user_id` (all, `session_ids`, or all but `keep_session_id`); returns their ids."""
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    if session_ids is not None:
        statement = statement.where(AuthSession.id.in_(session_ids))
    if keep_session_id is not None:
        statement = statement.where(AuthSession.id != keep_session_id)
    revoked = list(await session.scalars(statement))
    # An access token lives at most its TTL: remembering the revocation that long is enough.
    ttl = settings.access_token_ttl_seconds + 60
    for session_id in revoked:
        await cache.set(session_cache_key(session_id), REVOKED, ttl=ttl)
    return revoked


async def list_sessions(session: AsyncSession, user: User) -> list[AuthSession]:
    return list(
        await session.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now())
            .order_by(AuthSession.last_used_at.desc(), AuthSession.id.desc())
        )
    )


async def end_session(session: AsyncSession, settings: Settings, cache: Cache, user: User, session_id: int) -> None:
    """Sign out one of the user's devices; someone else's session is indistinguishable from none."""
    revoked = await revoke_sessions(session, settings, cache, user.id, session_ids=[session_id], reason="ended")
    if not revoked:
        raise NotFound("Session not found.")


# --- passwords -------------------------------------------------------------------------------------


async def change_password(
    session: AsyncSession,
    settings: Settings,
    cache: Cache,
    user: User,
    *,
    current_password: str,
    new_password: str,
    current_session_id: int,
) -> IssuedTokens:
    if not user.password_hash or not await verify_password(current_password, user.password_hash):
        raise InvalidPassword()
    user.password_hash = await hash_password(new_password, settings.bcrypt_rounds)
    await revoke_sessions(
        session, settings, cache, user.id, keep_session_id=current_session_id, reason="password_changed"
    )
    security_log.info("auth.password_changed", user_id=user.id)
    auth_session = await session.get_one(AuthSession, current_session_id)
    return await _issue_tokens(session, settings, user, auth_session)


async def request_password_reset(
    session: AsyncSession, settings: Settings, cache: Cache, *, email: str
) -> Email | None:
    """The reset email, or None (no such account, or 3 already sent this hour): the caller answers alike."""
    email = normalise_email(email)
    user = await session.scalar(select(User).where(User.email == email, User.is_active.is_(True)))
    if user is None:
        return None
    if await cache.incr(f"email:reset:{token_digest(email)}", 3600) > EMAILS_PER_ADDRESS_PER_HOUR:
        return None
    await _invalidate_tokens(session, user.id, "password_reset")  # only the newest link works
    token = await _create_one_time_token(session, user, "password_reset", PASSWORD_RESET_TTL)
    security_log.info("auth.password_reset_requested", user_id=user.id)
    return Email(
        to=user.email,
        subject="Reset your CodeMentor password",
        body=(
            f"Hi {user.name},\n\nSomeone asked to reset the password of your CodeMentor account. "
            f"If it was you, choose a new one here (the link works once, for one hour):\n\n"
            f"{settings.frontend_url}/reset-password?token={token}\n\n"
            "If it was not you, ignore this email: your password stays as it is.\n"
        ),
    )


async def confirm_password_reset(
    session: AsyncSession, settings: Settings, cache: Cache, *, token: str, new_password: str
) -> User:
    one_time = await _redeem(session, token, "password_reset")
    await _invalidate_tokens(session, one_time.user_id, "password_reset")  # older links die with this one
    user = await session.get_one(User, one_time.user_id)
    user.password_hash = await hash_password(new_password, settings.bcrypt_rounds)
    await revoke_sessions(session, settings, cache, user.id, reason="password_reset")
    security_log.info("auth.password_reset", user_id=user.id)
    return user


# --- email verification ----------------------------------------------------------------------------


def _verification_counter(email: str) -> str:
    return f"email:verify:{token_digest(email)}"


async def _verification_email(session: AsyncSession, settings: Settings, user: User) -> Email:
    token = await _create_one_time_token(session, user, "verify_email", VERIFY_EMAIL_TTL)
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
    used link proves nothing about who holds it now, so it gets no user data."""
    one_time = await session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_hash == token_digest(token), OneTimeToken.purpose == "verify_email"
        )
    )
    if one_time is not None and one_time.used_at is not None:
        verified = await session.scalar(select(User.email_verified).where(User.id == one_time.user_id))
        if verified:
            return None
    one_time = await _redeem(session, token, "verify_email")
    user = await session.get_one(User, one_time.user_id)
    user.email_verified = True
    return user


# --- one-time tokens -------------------------------------------------------------------------------


async def _create_one_time_token(session: AsyncSession, user: User, purpose: str, ttl: timedelta) -> str:
    token = new_opaque_token()
    created = now()
    session.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_digest(token),
            created_at=created,
            expires_at=created + ttl,
        )
    )
    await session.flush()
    return token


async def _invalidate_tokens(session: AsyncSession, user_id: int, purpose: str) -> None:
    """Use up every outstanding `purpose` token of the user (they then answer `token_invalid`)."""
    await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose, OneTimeToken.used_at.is_(None))
        .values(used_at=now())
    )


async def create_oauth_exchange_code(session: AsyncSession, user: User) -> str:
    return await _create_one_time_token(session, user, "oauth_exchange", OAUTH_EXCHANGE_TTL)


async def redeem_oauth_exchange_code(session: AsyncSession, code: str) -> User:
    one_time = await _redeem(session, code, "oauth_exchange")
    return await session.get_one(User, one_time.user_id)


async def _redeem(session: AsyncSession, token: str, purpose: str) -> OneTimeToken:
    """Use a one-time token exactly once: unknown or used is `token_invalid`, late is `token_expired`."""
    one_time = await session.scalar(
        select(OneTimeToken).where(OneTimeToken.token_hash == token_digest(token), OneTimeToken.purpose == purpose)
    )
    if one_time is None or one_time.used_at is not None:
        raise OneTimeTokenInvalid()
    moment = now()
    if one_time.expires_at <= moment:
        raise OneTimeTokenExpired()
    claimed = await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == one_time.id, OneTimeToken.used_at.is_(None))
        .values(used_at=moment)
    )
    if cast(CursorResult[Any], claimed).rowcount != 1:  # redeemed concurrently by another request
        raise OneTimeTokenInvalid()
    return one_time
