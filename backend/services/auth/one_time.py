"""One-time tokens: the links of emails (verify an address, reset a password) and OAuth exchange codes.

Only a token's digest is stored; each is used at most once, and a late one is `token_expired`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.models import OneTimeToken, User
from backend.security import new_opaque_token, token_digest
from backend.services.auth.errors import OneTimeTokenExpired, OneTimeTokenInvalid

OAUTH_EXCHANGE_TTL = timedelta(seconds=60)


async def create_one_time_token(session: AsyncSession, user: User, purpose: str, ttl: timedelta) -> str:
    token = new_opaque_token()
    created = utcnow()
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


async def invalidate_tokens(session: AsyncSession, user_id: int, purpose: str) -> None:
    """Use up every outstanding `purpose` token of the user (they then answer `token_invalid`)."""
    await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose, OneTimeToken.used_at.is_(None))
        .values(used_at=utcnow())
    )


async def redeem(session: AsyncSession, token: str, purpose: str) -> OneTimeToken:
    """Use a one-time token exactly once: unknown or used is `token_invalid`, late is `token_expired`."""
    one_time = await session.scalar(
        select(OneTimeToken).where(OneTimeToken.token_hash == token_digest(token), OneTimeToken.purpose == purpose)
    )
    if one_time is None or one_time.used_at is not None:
        raise OneTimeTokenInvalid()
    moment = utcnow()
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


async def create_oauth_exchange_code(session: AsyncSession, user: User) -> str:
    return await create_one_time_token(session, user, "oauth_exchange", OAUTH_EXCHANGE_TTL)


async def redeem_oauth_exchange_code(session: AsyncSession, code: str) -> User:
    one_time = await redeem(session, code, "oauth_exchange")
    return await session.get_one(User, one_time.user_id)
