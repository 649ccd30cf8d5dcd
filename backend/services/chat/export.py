"""A user's conversations, messages and LLM usage, for the account export (GET /users/me/export)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from backend.models import User
from backend.models.chat import Conversation, LLMUsage


async def export_conversations(session: AsyncSession, user: User) -> Sequence[Conversation]:
    """Every conversation of `user` with its messages loaded, oldest first (for GET /users/me/export)."""
    conversations = await session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user.id)
        .order_by(Conversation.id)
        .options(selectinload(Conversation.messages))
    )
    return conversations.all()


async def export_llm_usage(session: AsyncSession, user: User) -> Sequence[LLMUsage]:
    return (await session.scalars(select(LLMUsage).where(LLMUsage.user_id == user.id).order_by(LLMUsage.day))).all()
