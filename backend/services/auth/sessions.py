"""Sessions: starting one, rotating its refresh tokens, listing and ending them.

A session (`AuthSession`) is one signed-in device. It holds a family of refresh tokens: each refresh
rotates the token, and presenting a rotated one again means it was stolen, so the whole session dies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.db import utcnow
from backend.errors import NotFound, Unauthorized
from backend.models import AuthSession, RefreshToken, User
from backend.security import create_access_token, new_csrf_token, new_opaque_token, token_digest
from backend.services.auth.errors import AccountDisabled, TokenReused

security_log = structlog.get_logger("backend.security")


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


async def start_session(session: AsyncSession, settings: Settings, user: User, client: Client) -> IssuedTokens:
    started = utcnow()
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
    return await issue_tokens(session, settings, user, auth_session)


async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, auth_session: AuthSession
) -> IssuedTokens:
    """A new access token and the session's next refresh token."""
    refresh_token = new_opaque_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=token_digest(refresh_token)))
    await session.flush()
    return IssuedTokens(
        access_token=create_access_token(settings, user.id, auth_session.id),
        refresh_token=refresh_token,
        csrf_token=new_csrf_token(settings, auth_session.id),
        expires_in=settings.access_token_ttl_seconds,
        session_id=auth_session.id,
    )


async def refresh(
    session: AsyncSession, settings: Settings, *, refresh_token: str, client: Client
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
    moment = utcnow()
    if auth_session.revoked_at is not None or auth_session.expires_at <= moment:
        raise Unauthorized("The session has ended; sign in again.")

    # Claim the token atomically: of two concurrent refreshes with one token, exactly one wins.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=moment)
    )
    if cast(CursorResult[Any], claimed).rowcount != 1:
        await revoke_sessions(session, user.id, session_ids=[auth_session.id], reason="token_reused")
        security_log.warning("auth.refresh_token_reused", user_id=user.id, session_id=auth_session.id, ip=client.ip)
        raise TokenReused()
    if not user.is_active:
        await revoke_sessions(session, user.id, reason="account_disabled")
        raise AccountDisabled()

    auth_session.last_used_at = moment
    auth_session.ip = client.ip
    return user, await issue_tokens(session, settings, user, auth_session)


async def revoke_sessions(
    session: AsyncSession,
    user_id: int,
    *,
    reason: str,
    session_ids: list[int] | None = None,
    keep_session_id: int | None = None,
) -> list[int]:
    """End sessions of `user_id` (all, `session_ids`, or all but `keep_session_id`); returns their ids.

    The row is the revocation: `authentication` reads it on every request, so once the request commits,
    the sessions' access tokens stop working on the next request, on every worker."""
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    if session_ids is not None:
        statement = statement.where(AuthSession.id.in_(session_ids))
    if keep_session_id is not None:
        statement = statement.where(AuthSession.id != keep_session_id)
    return list(await session.scalars(statement))


async def list_sessions(session: AsyncSession, user: User) -> list[AuthSession]:
    return list(
        await session.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > utcnow())
            .order_by(AuthSession.last_used_at.desc(), AuthSession.id.desc())
        )
    )


async def end_session(session: AsyncSession, user: User, session_id: int) -> None:
    """Sign out one of the user's devices; someone else's session is indistinguishable from none."""
    revoked = await revoke_sessions(session, user.id, session_ids=[session_id], reason="ended")
    if not revoked:
        raise NotFound("Session not found.")
