"""A user's conversations, messages and LLM usage, for the account export (GET /users/me/export)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import User
from backend.models.chat import Conversation, LLMUsage, Message


async def export_conversations(session: AsyncSession, user: User) -> list[dict[str, object]]:
    """Every conversation of `user` with its messages, oldest first (for GET /users/me/export)."""
    conversations = list(
        await session.scalars(select(Conversation).where(Conversation.user_id == user.id).order_by(Conversation.id))
    )
    messages = await session.scalars(
        select(Message)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(Conversation.user_id == user.id)
        .order_by(Message.id)
    )
    by_conversation: dict[int, list[dict[str, object]]] = {conversation.id: [] for conversation in conversations}
    for message in messages:
        by_conversation[message.conversation_id].append(
            {
                "id": message.id,
                "role": message.role,
                "content": message.content,
                "status": message.status,
                "model": message.model,
                "tokens_used": message.tokens_used,
                "created_at": message.created_at.isoformat(),
            }
        )
    return [
        {
            "id": conversation.id,
            "title": conversation.title,
            "context_type": conversation.context_type,
            "exercise_id": conversation.exercise_id,
            "submission_id": conversation.submission_id,
            "created_at": conversation.created_at.isoformat(),
            "messages": by_conversation[conversation.id],
        }
        for conversation in conversations
    ]


async def export_llm_usage(session: AsyncSession, user: User) -> list[dict[str, object]]:
    rows = await session.scalars(select(LLMUsage).where(LLMUsage.user_id == user.id).order_by(LLMUsage.day))
    return [
        {
            "day": row.day.isoformat(),
            "requests": row.requests,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
        }
        for row in rows
    ]
