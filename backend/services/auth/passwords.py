"""Passwords: changing one while signed in, and resetting a forgotten one through an emailed link."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cache import Cache
from backend.config import Settings
from backend.integrations.email import Email
from backend.models import AuthSession, User
from backend.security import hash_password, token_digest, verify_password
from backend.services.auth.accounts import EMAILS_PER_ADDRESS_PER_HOUR, normalise_email
from backend.services.auth.errors import InvalidPassword
from backend.services.auth.one_time import create_one_time_token, invalidate_tokens, redeem
from backend.services.auth.sessions import IssuedTokens, issue_tokens, revoke_sessions

PASSWORD_RESET_TTL = timedelta(hours=1)

security_log = structlog.get_logger("backend.security")


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    current_password: str,
    new_password: str,
    current_session_id: int,
) -> IssuedTokens:
    if not user.password_hash or not await verify_password(current_password, user.password_hash):
        raise InvalidPassword()
    user.password_hash = await hash_password(new_password, settings.bcrypt_rounds)
    # A reset link still outstanding (asked for by whoever read the mailbox, or by the owner who then
    # remembered) must not outlive the password it was sent to replace.
    await invalidate_tokens(session, user.id, "password_reset")
    await revoke_sessions(session, user.id, keep_session_id=current_session_id, reason="password_changed")
    security_log.info("auth.password_changed", user_id=user.id)
    auth_session = await session.get_one(AuthSession, current_session_id)
    return await issue_tokens(session, settings, user, auth_session)


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
    await invalidate_tokens(session, user.id, "password_reset")  # only the newest link works
    token = await create_one_time_token(session, user, "password_reset", PASSWORD_RESET_TTL)
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


async def confirm_password_reset(session: AsyncSession, settings: Settings, *, token: str, new_password: str) -> User:
    one_time = await redeem(session, token, "password_reset")
    await invalidate_tokens(session, one_time.user_id, "password_reset")  # older links die with this one
    user = await session.get_one(User, one_time.user_id)
    user.password_hash = await hash_password(new_password, settings.bcrypt_rounds)
    await revoke_sessions(session, user.id, reason="password_reset")
    security_log.info("auth.password_reset", user_id=user.id)
    return user
