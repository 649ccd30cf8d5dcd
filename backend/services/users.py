"""Profiles and account erasure."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.security import verify_password
from backend.services.auth import InvalidPassword

security_log = structlog.get_logger("backend.security")

# What PATCH /users/me may change; anything else (role, email, streaks...) is refused by the schema
# and ignored here too, as a second line of defence against mass assignment.
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "bio",
        "avatar_url",
        "programming_language",
        "skill_level",
        "career_goals",
        "learning_style",
        "time_commitment",
        "timezone",
    }
)


async def update_profile(session: AsyncSession, user: User, changes: dict[str, Any]) -> User:
    for field, value in changes.items():
        if field in EDITABLE_FIELDS:
            setattr(user, field, value)
    await session.flush()
    return user


async def erase_account(session: AsyncSession, user: User, *, password: str | None) -> None:
    """Delete the user and, through ON DELETE CASCADE, everything that belongs to them.

    Accounts with a password must confirm it; OAuth-only accounts (no password) need not. The user's
    sessions go with the row (cascade), and authentication reads both on every request: once this
    commits, the account's access and refresh tokens stop working at once, not when they expire."""
    if user.password_hash is not None and (not password or not await verify_password(password, user.password_hash)):
        raise InvalidPassword()
    user_id = user.id
    await session.execute(delete(User).where(User.id == user_id))
    session.expunge(user)
    security_log.info("user.erased", user_id=user_id)
