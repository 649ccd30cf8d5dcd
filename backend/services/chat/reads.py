"""The chat's two lists as the SPA reads them: a page of conversations, and a page of one's messages.

Each is one prebuilt Core statement run on the request's read connection (`db.fetch`), not the ORM: the
rows go straight into the response schemas, the way the exercise history and the submission list are
read (docs/PERFORMANCE.md). Statements are built once: building one costs more than running it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db import ReadStatement, fetch
from backend.models import User
from backend.models.chat import Conversation, Message
from backend.services.chat.conversations import ConversationNotFound

CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.title,
    Conversation.context_type,
    Conversation.exercise_id,
    Conversation.submission_id,
    Conversation.message_count,
    Conversation.created_at,
    Conversation.updated_at,
    Conversation.last_message_at,
)
MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.role,
    Message.content,
    Message.model,
    Message.tokens_used,
    Message.status,
    Message.created_at,
)


@functools.cache
def _conversation_statement(paged: bool) -> ReadStatement:
    """The user's conversations, most recent activity first (the last message, else the creation), with
    the count of them all; unpaged, only for that count when a page lies past the end."""
    statement = (
        select(*CONVERSATION_COLUMNS, func.count().over().label("total"))
        .where(Conversation.user_id == bindparam("user_id"))
        .order_by(func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(), Conversation.id.desc())
    )
    return ReadStatement(statement.limit(bindparam("limit")).offset(bindparam("offset")) if paged else statement)


async def conversation_page(
    connection: AsyncConnection, user: User, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the user's conversations (dicts of `ConversationRead`'s fields) and how many they have: one
    query, two for a page past the end."""
    values = {"user_id": user.id, "limit": limit, "offset": offset}
    rows = await fetch(connection, _conversation_statement(True), values)
    if not rows and offset:  # a page past the end has no row to carry the count
        return [], len(await fetch(connection, _conversation_statement(False), values))
    return [dict(row) for row in rows], rows[0]["total"] if rows else 0


@functools.cache
def _message_statement(before: bool) -> ReadStatement:
    """The newest messages of a conversation of the user's (older than `before_id`, when given), newest
    first, outer-joined from the conversation: an empty conversation still gives a row (with no message),
    someone else's gives none."""
    joined = Message.conversation_id == Conversation.id
    if before:
        joined = and_(joined, Message.id < bindparam("before_id"))
    statement = (
        select(*MESSAGE_COLUMNS)
        .select_from(Conversation)
        .outerjoin(Message, joined)
        .where(Conversation.id == bindparam("conversation_id"), Conversation.user_id == bindparam("user_id"))
        .order_by(Message.id.desc())
        .limit(bindparam("limit"))
    )
    return ReadStatement(statement)


async def message_page(
    connection: AsyncConnection, user: User, conversation_id: int, *, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], bool]:
    """The newest `limit` messages older than `before_id` (or the newest overall), oldest first, and whether
    older ones exist; 404 for a conversation that is not the user's. One query."""
    values = {"user_id": user.id, "conversation_id": conversation_id, "limit": limit + 1, "before_id": before_id}
    rows = await fetch(connection, _message_statement(before_id is not None), values)
    if not rows:
        raise ConversationNotFound()
    messages = [dict(row) for row in rows if row["id"] is not None]
    return messages[:limit][::-1], len(messages) > limit
